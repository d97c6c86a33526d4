/// a + b (same shape): the residual connection.
public func add(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.shape == b.shape, "add: shapes \(a.shape) and \(b.shape) differ")
    var y = a.data
    y.withUnsafeMutableBufferPointer { yp in b.data.withUnsafeBufferPointer { bp in
        for i in 0..<yp.count { yp[i] += bp[i] }
    } }
    let out = Tensor(shape: a.shape, data: y)
    out.record(op: "add", parents: [a, b]) { g in a.accumulate(g); b.accumulate(g) }
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
