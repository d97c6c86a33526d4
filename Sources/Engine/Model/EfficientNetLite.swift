/// One convolution of the network with its batch norm already folded in (weight, bias) and its activation.
public struct ConvLayer: Sendable {
    public var weight: Tensor
    public var bias: Tensor
    public var stride: Int
    public var groups: Int
    public var activation: Activation

    public var kernel: Int { weight.shape[2] }
    public var outChannels: Int { weight.shape[0] }
    public var inChannels: Int { weight.shape[1] * groups }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        conv2d(x, weight, bias: bias, stride: stride, padding: .same, groups: groups, activation: activation)
    }
}

/// Mobile inverted bottleneck: 1×1 expand (absent when the expansion ratio is 1) → depthwise → 1×1 project,
/// plus the input when shapes allow. EfficientNet-Lite drops squeeze-excitation and uses ReLU6.
public struct MBConvBlock: Sendable {
    public var expand: ConvLayer?
    public var depthwise: ConvLayer
    public var project: ConvLayer
    public var residual: Bool
}

/// EfficientNet-Lite0 (4.7 M parameters, 224×224 input) on our engine.
///
/// Layer names a user can type: `stem`, `blocks.0` … `blocks.15` (block outputs), `blocks.N.expand`,
/// `blocks.N.depthwise`, `blocks.N.project` (inside a block, after its activation), `head`, `pool`, `logits`.
public final class EfficientNetLite: @unchecked Sendable {
    public let stem: ConvLayer
    public let blocks: [MBConvBlock]
    public let head: ConvLayer
    public let fcWeight: Tensor
    public let fcBias: Tensor
    public let inputSize = 224
    public let layers: [LayerInfo]

    public init(stem: ConvLayer, blocks: [MBConvBlock], head: ConvLayer, fcWeight: Tensor, fcBias: Tensor) {
        self.stem = stem; self.blocks = blocks; self.head = head; self.fcWeight = fcWeight; self.fcBias = fcBias
        self.layers = LayerInfo.table(stem: stem, blocks: blocks, head: head, classes: fcWeight.shape[0], inputSize: 224)
    }

    /// All parameter tensors (for gradient-with-respect-to-parameters work).
    public var parameters: [Tensor] {
        var all = [stem.weight, stem.bias]
        for b in blocks {
            if let e = b.expand { all += [e.weight, e.bias] }
            all += [b.depthwise.weight, b.depthwise.bias, b.project.weight, b.project.bias]
        }
        return all + [head.weight, head.bias, fcWeight, fcBias]
    }

    /// Turns gradient tracking on or off for every parameter (off by default: only the input needs it).
    public func setParametersRequireGrad(_ on: Bool) { for p in parameters { p.requiresGrad = on } }

    /// Full forward pass to logits [N, 1000].
    public func callAsFunction(_ x: Tensor) -> Tensor {
        forward(x, capture: ["logits"])["logits"]!
    }

    /// Runs the network only as deep as the deepest layer in `capture` and returns those activations.
    /// Unknown names are a programming error here: validate user input with `layerInfo(named:)` first.
    public func forward(_ x: Tensor, capture: Set<String>) -> [String: Tensor] {
        precondition(x.rank == 4 && x.shape[1] == 3, "model input must be [N, 3, H, W], got \(x.shape)")
        let deepest = capture.map { name -> Int in
            guard let i = layers.firstIndex(where: { $0.name == name }) else { preconditionFailure("unknown layer \(name)") }
            return i
        }.max() ?? layers.count - 1
        var out: [String: Tensor] = [:]
        var position = 0
        var lastEmit = Profiler.now()
        // Emits a named activation; returns false once nothing deeper is needed.
        func emit(_ name: String, _ t: Tensor) -> Bool {
            if Profiler.enabled { Profiler.record("forward \(name)", since: lastEmit); lastEmit = Profiler.now() }
            if capture.contains(name) { out[name] = t }
            position = layers.firstIndex { $0.name == name }! + 1
            return position <= deepest
        }
        var h = stem(x)
        guard emit("stem", h) else { return out }
        for (i, block) in blocks.enumerated() {
            let input = h
            if let expand = block.expand {
                h = expand(h)
                guard emit("blocks.\(i).expand", h) else { return out }
            }
            h = block.depthwise(h)
            guard emit("blocks.\(i).depthwise", h) else { return out }
            h = block.project(h)
            guard emit("blocks.\(i).project", h) else { return out }
            if block.residual { h = add(h, input) }
            guard emit("blocks.\(i)", h) else { return out }
        }
        h = head(h)
        guard emit("head", h) else { return out }
        h = globalAveragePool(h)
        guard emit("pool", h) else { return out }
        _ = emit("logits", linear(h, fcWeight, bias: fcBias))
        return out
    }

    public func layerInfo(named name: String) -> LayerInfo? { layers.first { $0.name == name } }

    /// Multiply-adds of one forward pass at `size`×`size` (convs and the classifier).
    public func multiplyAdds(size: Int = 224) -> Int {
        var total = 0
        for l in layers where l.kind == .conv || l.kind == .linear { total += l.multiplyAdds }
        return total * (size * size) / (224 * 224)
    }
}
