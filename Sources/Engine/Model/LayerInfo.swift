/// A named activation of the model, with what a user needs to pick and interpret it.
public struct LayerInfo: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable { case conv, add, pool, linear }
    public var name: String
    public var kind: Kind
    /// Output shape for one image at the model's input size: [C, H, W] or [C] after pooling.
    public var shape: [Int]
    public var channels: Int { shape[0] }
    /// Side of the input square one unit sees, and the input-pixel step between neighbouring units.
    public var receptiveField: Int
    public var jump: Int
    /// Input coordinate of the centre of unit (0, 0)'s receptive field (negative: it starts in the padding).
    public var start: Double
    /// Multiply-adds of the op that produces this layer (0 for add/pool).
    public var multiplyAdds: Int

    /// Input-pixel box (x0, y0, side) that unit (x, y) of this layer sees.
    public func receptiveBox(x: Int, y: Int) -> (x0: Int, y0: Int, side: Int) {
        let cx = start + Double(x * jump), cy = start + Double(y * jump)
        let half = Double(receptiveField - 1) / 2
        return (Int((cx - half).rounded()), Int((cy - half).rounded()), receptiveField)
    }

    static func table(stem: ConvLayer, blocks: [MBConvBlock], head: ConvLayer, classes: Int, inputSize: Int) -> [LayerInfo] {
        var rows: [LayerInfo] = []
        var size = inputSize, rf = 1, jump = 1
        var start = 0.0  // centre of the first unit, in input pixels
        func conv(_ name: String, _ l: ConvLayer) {
            let g = WindowGeometry(inH: size, inW: size, kH: l.kernel, kW: l.kernel, stride: l.stride, padding: .same)
            start += Double(l.kernel - 1) / 2 * Double(jump) - Double(g.padTop * jump)
            rf += (l.kernel - 1) * jump
            jump *= l.stride
            size = g.outH
            let macs = g.outH * g.outW * l.outChannels * (l.inChannels / l.groups) * l.kernel * l.kernel
            rows.append(LayerInfo(name: name, kind: .conv, shape: [l.outChannels, size, size], receptiveField: rf,
                                  jump: jump, start: start, multiplyAdds: macs))
        }
        conv("stem", stem)
        for (i, b) in blocks.enumerated() {
            if let e = b.expand { conv("blocks.\(i).expand", e) }
            conv("blocks.\(i).depthwise", b.depthwise)
            conv("blocks.\(i).project", b.project)
            var out = rows.last!
            out.name = "blocks.\(i)"; out.kind = .add; out.multiplyAdds = 0
            rows.append(out)
        }
        conv("head", head)
        rows.append(LayerInfo(name: "pool", kind: .pool, shape: [head.outChannels], receptiveField: inputSize,
                              jump: inputSize, start: Double(inputSize - 1) / 2, multiplyAdds: 0))
        rows.append(LayerInfo(name: "logits", kind: .linear, shape: [classes], receptiveField: inputSize,
                              jump: inputSize, start: Double(inputSize - 1) / 2, multiplyAdds: head.outChannels * classes))
        return rows
    }
}
