import Foundation

/// Softmax over the last axis, computed in a max-shifted form for stability.
public func softmax(_ x: Tensor) -> Tensor {
    let (rows, width) = rowsAndWidth(x)
    var y = x.data
    for r in 0..<rows {
        let base = r * width
        let m = rowMax(y, base, width)
        var s: Float = 0
        for i in 0..<width { y[base + i] = expf(y[base + i] - m); s += y[base + i] }
        for i in 0..<width { y[base + i] /= s }
    }
    let out = Tensor(shape: x.shape, data: y)
    out.record(op: "softmax", parents: [x]) { g in
        // dx = y * (g - sum(g * y))
        var dx = [Float](repeating: 0, count: x.count)
        for r in 0..<rows {
            let base = r * width
            var dot: Float = 0
            for i in 0..<width { dot += g[base + i] * y[base + i] }
            for i in 0..<width { dx[base + i] = y[base + i] * (g[base + i] - dot) }
        }
        x.accumulate(dx)
    }
    return out
}

/// log(softmax(x)) over the last axis, without forming the softmax (no underflow to -inf).
public func logSoftmax(_ x: Tensor) -> Tensor {
    let (rows, width) = rowsAndWidth(x)
    var y = x.data
    for r in 0..<rows {
        let base = r * width
        let m = rowMax(y, base, width)
        var s: Double = 0
        for i in 0..<width { s += Double(expf(y[base + i] - m)) }
        let lse = m + Float(log(s))
        for i in 0..<width { y[base + i] -= lse }
    }
    let out = Tensor(shape: x.shape, data: y)
    out.record(op: "logSoftmax", parents: [x]) { g in
        // dx = g - softmax * sum(g)
        var dx = [Float](repeating: 0, count: x.count)
        for r in 0..<rows {
            let base = r * width
            var total: Float = 0
            for i in 0..<width { total += g[base + i] }
            for i in 0..<width { dx[base + i] = g[base + i] - expf(y[base + i]) * total }
        }
        x.accumulate(dx)
    }
    return out
}

private func rowMax(_ y: [Float], _ base: Int, _ width: Int) -> Float {
    var m = -Float.infinity
    for i in 0..<width { m = max(m, y[base + i]) }
    return m
}

private func rowsAndWidth(_ x: Tensor) -> (Int, Int) {
    precondition(x.rank >= 1, "softmax needs at least one axis")
    let width = x.shape.last!
    return (x.count / max(width, 1), width)
}
