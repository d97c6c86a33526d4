/// Batch normalization in eval mode: y = (x - mean) / sqrt(var + eps) * gamma + beta, per channel.
/// EfficientNet-Lite uses eps = 1e-3 (TensorFlow's default), not PyTorch's 1e-5.
public struct BatchNormParameters: Sendable {
    public var gamma, beta, mean, variance: [Float]
    public var eps: Float

    public init(gamma: [Float], beta: [Float], mean: [Float], variance: [Float], eps: Float = 1e-3) {
        precondition(Set([gamma.count, beta.count, mean.count, variance.count]).count == 1, "batch-norm vectors differ in length")
        self.gamma = gamma; self.beta = beta; self.mean = mean; self.variance = variance; self.eps = eps
    }

    /// Per-channel affine form y = scale * x + shift. Computed in Double so folding adds no rounding of its own.
    public var scaleAndShift: (scale: [Float], shift: [Float]) {
        var scale = [Float](), shift = [Float]()
        for c in 0..<gamma.count {
            let s = Double(gamma[c]) / (Double(variance[c]) + Double(eps)).squareRoot()
            scale.append(Float(s))
            shift.append(Float(Double(beta[c]) - Double(mean[c]) * s))
        }
        return (scale, shift)
    }

    /// Folds this BN into the conv before it: W'[o,...] = W[o,...] * scale[o], b'[o] = b[o] * scale[o] + shift[o].
    public func fold(weight: Tensor, bias: Tensor?) -> (weight: Tensor, bias: Tensor) {
        let (scale, shift) = scaleAndShift
        let cout = weight.shape[0], per = weight.count / cout
        precondition(cout == scale.count, "batch norm has \(scale.count) channels, conv has \(cout)")
        var w = weight.data
        for o in 0..<cout { for i in 0..<per { w[o * per + i] *= scale[o] } }
        let b = (0..<cout).map { o in (bias?.data[o] ?? 0) * scale[o] + shift[o] }
        return (Tensor(shape: weight.shape, data: w), Tensor(shape: [cout], data: b))
    }
}

/// Eval-mode batch norm as a differentiable op (the model folds it into convs instead; this keeps the
/// unfolded math available and checked).
public func batchNorm(_ x: Tensor, _ p: BatchNormParameters) -> Tensor {
    let (scale, shift) = p.scaleAndShift
    let channels = x.shape[1], plane = x.shape[2...].reduce(1, *)
    precondition(channels == scale.count, "batch norm has \(scale.count) channels, input \(x.shape)")
    var y = x.data
    for i in 0..<y.count { let c = (i / plane) % channels; y[i] = y[i] * scale[c] + shift[c] }
    let out = Tensor(shape: x.shape, data: y)
    out.record(op: "batchNorm", parents: [x]) { g in
        var dx = g
        for i in 0..<dx.count { dx[i] *= scale[(i / plane) % channels] }
        x.accumulate(dx)
    }
    return out
}
