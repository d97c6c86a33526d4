/// a + b (same shape): the residual connection.
public func add(_ a: Tensor, _ b: Tensor) -> Tensor { add(a, b, activation: .identity) }

/// act(a + b) in one pass (ResNet's residual add + ReLU).
public func add(_ a: Tensor, _ b: Tensor, activation: Activation) -> Tensor {
    precondition(a.shape == b.shape, "add: shapes \(a.shape) and \(b.shape) differ")
    var y = uninitializedFloats(a.count)
    y.withUnsafeMutableBufferPointer { yb in a.data.withUnsafeBufferPointer { ab in b.data.withUnsafeBufferPointer { bb in
        guard let yp = yb.baseAddress, let ap = ab.baseAddress, let bp = bb.baseAddress else { return }
        Parallel.forEachChunk(yb.count, grain: 1 << 15) { r in
            for i in r { yp[i] = ap[i] + bp[i] }
            if activation != .identity { activation.apply(yp + r.lowerBound, count: r.count, bias: 0) }
        }
    } } }
    let out = Tensor(shape: a.shape, data: y)
    out.record(op: activation == .identity ? "add" : "add+\(activation.rawValue)", parents: [a, b]) { [unowned out] g in
        if activation != .identity {
            g.withUnsafeMutableBufferPointer { d in out.data.withUnsafeBufferPointer { yb in
                guard let dp = d.baseAddress, let yp = yb.baseAddress else { return }
                Parallel.forEachChunk(d.count, grain: 1 << 15) { r in
                    activation.maskGradient(dp + r.lowerBound, output: yp + r.lowerBound, count: r.count)
                }
            } }
        }
        a.accumulate(g); b.accumulate(g)
    }
    return out
}

/// s * x.
public func scale(_ x: Tensor, by s: Float) -> Tensor {
    let out = Tensor(shape: x.shape, data: x.data.map { $0 * s })
    out.record(op: "scale", parents: [x]) { g in x.accumulate(g.map { $0 * s }) }
    return out
}

/// x * y elementwise (same shape).
public func multiply(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.shape == b.shape, "multiply: shapes \(a.shape) and \(b.shape) differ")
    let out = Tensor(shape: a.shape, data: zip(a.data, b.data).map { $0 * $1 })
    out.record(op: "multiply", parents: [a, b]) { g in
        if a.tracksGrad { a.accumulate(zip(g, b.data).map { $0 * $1 }) }
        if b.tracksGrad { b.accumulate(zip(g, a.data).map { $0 * $1 }) }
    }
    return out
}

/// x + c for a constant c.
public func shift(_ x: Tensor, by c: Float) -> Tensor {
    let out = Tensor(shape: x.shape, data: x.data.map { $0 + c })
    out.record(op: "shift", parents: [x]) { g in x.accumulate(g) }
    return out
}
