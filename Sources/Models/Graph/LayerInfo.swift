/// A named activation of the model, with what a user needs to pick and interpret it (from shape inference).
public struct LayerInfo: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case conv, add, pool, linear, batchNorm = "batch_norm", activation, concat, flatten, dropout, softmax, pad
    }
    public var name: String
    public var kind: Kind
    /// The op, as `vizlab layers` shows it ("conv", "relu6", "max_pool", …).
    public var op: String
    /// Output shape for one image at the model's input size: [C, H, W], or [C] once flattened or pooled.
    public var shape: [Int]
    public var channels: Int { shape[0] }
    /// Whether the layer keeps a spatial map (a neuron is a channel at an (x, y) position).
    public var isSpatial: Bool { shape.count == 3 }
    /// Side of the input square one unit sees, and the input-pixel step between neighbouring units.
    public var receptiveField: Int
    public var jump: Int
    /// Input coordinate of the centre of unit (0, 0)'s receptive field (negative: it starts in the padding).
    public var start: Double
    /// Multiply-adds of the op that produces this layer (convs and dense layers; 0 for the rest).
    public var multiplyAdds: Int

    public init(name: String, kind: Kind, op: String? = nil, shape: [Int], receptiveField: Int, jump: Int, start: Double, multiplyAdds: Int) {
        self.name = name; self.kind = kind; self.op = op ?? kind.rawValue; self.shape = shape
        self.receptiveField = receptiveField; self.jump = jump; self.start = start; self.multiplyAdds = multiplyAdds
    }

    /// Input-pixel box (x0, y0, side) that unit (x, y) of this layer sees.
    public func receptiveBox(x: Int, y: Int) -> (x0: Int, y0: Int, side: Int) {
        let cx = start + Double(x * jump), cy = start + Double(y * jump)
        let half = Double(receptiveField - 1) / 2
        return (Int((cx - half).rounded()), Int((cy - half).rounded()), receptiveField)
    }
}
