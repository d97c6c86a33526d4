/// Sum of all values -> scalar.
public func sum(_ x: Tensor) -> Tensor {
    var s: Double = 0
    for v in x.data { s += Double(v) }
    let out = Tensor(shape: [], data: [Float(s)])
    out.record(op: "sum", parents: [x]) { g in x.accumulate([Float](repeating: g[0], count: x.count)) }
    return out
}

/// Mean of all values -> scalar.
public func mean(_ x: Tensor) -> Tensor { scale(sum(x), by: 1 / Float(max(x.count, 1))) }

/// Channel `c` of an NCHW (or NC) tensor: [N, C, H, W] -> [N, 1, H, W].
public func selectChannel(_ x: Tensor, _ c: Int) -> Tensor {
    precondition(x.rank >= 2 && c >= 0 && c < x.shape[1], "channel \(c) out of range for shape \(x.shape)")
    let n = x.shape[0], channels = x.shape[1], plane = x.shape[2...].reduce(1, *)
    var y = [Float](repeating: 0, count: n * plane)
    for b in 0..<n { for i in 0..<plane { y[b * plane + i] = x.data[(b * channels + c) * plane + i] } }
    var shape = x.shape; shape[1] = 1
    let out = Tensor(shape: shape, data: y)
    out.record(op: "selectChannel", parents: [x]) { g in
        var dx = [Float](repeating: 0, count: x.count)
        for b in 0..<n { for i in 0..<plane { dx[(b * channels + c) * plane + i] = g[b * plane + i] } }
        x.accumulate(dx)
    }
    return out
}

/// The single activation x[:, c, y, x] of an NCHW tensor -> [N].
public func selectNeuron(_ x: Tensor, channel c: Int, y: Int, x col: Int) -> Tensor {
    precondition(x.rank == 4 && c >= 0 && c < x.shape[1] && y >= 0 && y < x.shape[2] && col >= 0 && col < x.shape[3],
                 "neuron (\(c), \(y), \(col)) out of range for shape \(x.shape)")
    let n = x.shape[0], channels = x.shape[1], h = x.shape[2], w = x.shape[3]
    let index = { (b: Int) in ((b * channels + c) * h + y) * w + col }
    let out = Tensor(shape: [n], data: (0..<n).map { x.data[index($0)] })
    out.record(op: "selectNeuron", parents: [x]) { g in
        var dx = [Float](repeating: 0, count: x.count)
        for b in 0..<n { dx[index(b)] = g[b] }
        x.accumulate(dx)
    }
    return out
}

/// Picks one column of every row of a 2-D tensor: [N, K] -> [N] (a class logit).
public func selectColumn(_ x: Tensor, _ k: Int) -> Tensor {
    precondition(x.rank == 2 && k >= 0 && k < x.shape[1], "column \(k) out of range for shape \(x.shape)")
    let n = x.shape[0], width = x.shape[1]
    let out = Tensor(shape: [n], data: (0..<n).map { x.data[$0 * width + k] })
    out.record(op: "selectColumn", parents: [x]) { g in
        var dx = [Float](repeating: 0, count: x.count)
        for b in 0..<n { dx[b * width + k] = g[b] }
        x.accumulate(dx)
    }
    return out
}
