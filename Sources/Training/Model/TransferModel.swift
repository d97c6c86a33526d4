import Engine
import Foundation
import Models

/// A layer of the new head (`--head dense:256,relu,dropout:0.5`); the classifier (dense to the classes) always ends it.
public enum HeadLayer: Codable, Sendable, Equatable, CustomStringConvertible {
    case dense(Int), relu, dropout(Float)

    /// Keras' tutorial head: dense 256 + ReLU, dropout 0.5 (then the classifier).
    public static let keras: [HeadLayer] = [.dense(256), .relu, .dropout(0.5)]

    public static func parse(_ text: String) throws -> [HeadLayer] {
        if text == "none" || text.isEmpty { return [] }
        return try text.split(separator: ",").map { part in
            let bits = part.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            switch (bits[0], bits.count > 1 ? bits[1] : nil) {
            case ("dense", let n?): if let u = Int(n), (1...65536).contains(u) { return .dense(u) }
            case ("relu", nil): return .relu
            case ("dropout", let r?): if let f = Float(r), (0..<1).contains(f) { return .dropout(f) }
            default: break
            }
            throw TrainingError("--head: '\(part)' is not dense:UNITS, relu or dropout:RATE (e.g. dense:256,relu,dropout:0.5, or none)")
        }
    }

    public var description: String {
        switch self {
        case .dense(let n): return "dense:\(n)"
        case .relu: return "relu"
        case .dropout(let r): return "dropout:\(r)"
        }
    }
}

/// A pretrained model's base (everything up to `baseLayer`, the embedding by default) with a new head for `classes`.
public enum TransferModel {
    public static let logits = "head.logits"

    /// The base cut at `layer` plus the head's nodes; a spatial cut is flattened first (the Keras tutorial's Flatten).
    /// New parameters are Glorot-uniform weights and zero biases from `seed`, like Keras' Dense.
    public static func make(base: GraphModel, layer: String, head: [HeadLayer], classes: [String], size: Int,
                            architecture: String, seed: UInt64) throws -> GraphModel {
        let cut = base.graph.resolve(layer)
        guard let info = base.layerInfo(named: layer) ?? base.layerInfo(named: cut) else {
            throw TrainingError("--base-layer \(layer): not a layer of \(base.spec.architecture) (see `vizlab layers`)")
        }
        // The ancestors of the cut, in graph order.
        let byName = Dictionary(uniqueKeysWithValues: base.graph.nodes.map { ($0.name, $0) })
        var keep = Set<String>(), stack = [cut]
        while let n = stack.popLast() {
            guard let node = byName[n], keep.insert(n).inserted else { continue }
            stack += node.inputs
        }
        var nodes = base.graph.nodes.filter { keep.contains($0.name) }
        var weights: [String: Tensor] = [:]
        for name in Set(nodes.flatMap(\.parameters)) { weights[name] = base.parameter(named: name)!.detached() }
        var last = cut
        var width: Int
        let shapes = try base.layers(height: size, width: size)
        guard let shape = (shapes.first { $0.name == info.name })?.shape else { throw TrainingError("--base-layer \(layer): no shape at \(size)²") }
        if shape.count == 3 {
            nodes.append(Node("head.flatten", .flatten(channelsLast: false), inputs: [last]))
            last = "head.flatten"
            width = shape.reduce(1, *)
        } else {
            width = shape.reduce(1, *)
        }
        var rng = SeededGenerator(seed: seed)
        func dense(_ name: String, units: Int) {
            let limit = Float((6.0 / Double(width + units)).squareRoot())
            weights[name + ".weight"] = Tensor(shape: [units, width], data: (0..<(units * width)).map { _ in Float.random(in: -limit...limit, using: &rng) })
            weights[name + ".bias"] = Tensor(zeros: [units])
            nodes.append(Node(name, .dense(units: units), inputs: [last], parameters: [name + ".weight", name + ".bias"]))
            last = name
            width = units
        }
        var denseCount = 0, reluCount = 0, dropCount = 0
        for h in head {
            switch h {
            case .dense(let units): denseCount += 1; dense("head.dense\(denseCount)", units: units)
            case .relu:
                reluCount += 1
                nodes.append(Node("head.relu\(reluCount)", .activation(.relu), inputs: [last])); last = "head.relu\(reluCount)"
            case .dropout(let r):
                dropCount += 1
                nodes.append(Node("head.dropout\(dropCount)", .dropout(rate: r), inputs: [last])); last = "head.dropout\(dropCount)"
            }
        }
        dense(logits, units: classes.count)
        let aliases = base.graph.aliases.filter { keep.contains($0.value) }
        let graph = Graph(input: base.graph.input, nodes: nodes, aliases: aliases)
        let inBase: (String) -> Bool = { keep.contains(base.graph.resolve($0)) }
        let s = base.spec
        let embedding = inBase(s.embedding) ? s.embedding : cut
        let blocks = s.blocks.filter(inBase)
        let spec = ModelSpec(architecture: architecture, weightsSHA256: "", weightsFile: "", inputSize: size,
                             preprocessing: s.preprocessing.resized(to: size), labels: classes, logits: logits,
                             embedding: embedding, defaultLayer: inBase(s.defaultLayer) ? s.defaultLayer : cut,
                             galleryLayers: s.galleryLayers.filter(inBase), blocks: blocks)
        return try GraphModel(spec: spec, graph: graph, weights: weights)
    }

    /// The same graph and spec with other weights (a copy: training never writes into the loaded base).
    public static func withWeights(_ model: GraphModel, _ values: [String: [Float]], sha256: String = "") throws -> GraphModel {
        var weights: [String: Tensor] = [:]
        for (name, t) in model.namedParameters { weights[name] = Tensor(shape: t.shape, data: values[name] ?? t.data) }
        var spec = model.spec
        spec.weightsSHA256 = sha256
        return try GraphModel(spec: spec, graph: model.graph, weights: weights)
    }
}
