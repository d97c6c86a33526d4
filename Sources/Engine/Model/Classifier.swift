import Foundation

/// One ranked class of a prediction.
public struct ClassScore: Codable, Sendable, Equatable {
    public var index: Int
    public var name: String
    public var probability: Float
    public var logit: Float
}

public enum LayerLookupError: Error, CustomStringConvertible {
    case unknown(String, nearest: [String])
    public var description: String {
        switch self {
        case let .unknown(name, nearest):
            return "unknown layer '\(name)'; nearest valid names: \(nearest.joined(separator: ", ")) (see `vizlab layers`)"
        }
    }
}

extension EfficientNetLite {
    /// The top `k` classes of each row of `logits` [N, 1000], by softmax probability.
    public func topK(_ logits: Tensor, k: Int, labels: ImageNetLabels = .shared) -> [[ClassScore]] {
        let probs = GradMode.withoutGrad { softmax(logits.detached()) }
        let width = logits.shape[1]
        return (0..<logits.shape[0]).map { row in
            let base = row * width
            let order = (0..<width).sorted { probs.data[base + $0] > probs.data[base + $1] }
            return order.prefix(max(0, min(k, width))).map { i in
                ClassScore(index: i, name: i < labels.count ? labels.names[i] : "class \(i)",
                           probability: probs.data[base + i], logit: logits.data[base + i])
            }
        }
    }

    /// Validates a user-typed layer name, suggesting the nearest valid ones.
    public func resolveLayer(_ name: String) throws -> LayerInfo {
        if let info = layerInfo(named: name) { return info }
        let nearest = layers.map(\.name).sorted { editDistance($0, name) < editDistance($1, name) }.prefix(4)
        throw LayerLookupError.unknown(name, nearest: Array(nearest))
    }
}
