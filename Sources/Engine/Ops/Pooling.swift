/// Mean over H and W: [N, C, H, W] -> [N, C].
public func globalAveragePool(_ x: Tensor) -> Tensor {
    precondition(x.rank == 4, "globalAveragePool wants NCHW, got \(x.shape)")
    let planes = x.shape[0] * x.shape[1], plane = x.shape[2] * x.shape[3]
    var y = [Float](repeating: 0, count: planes)
    x.data.withUnsafeBufferPointer { xp in
        for p in 0..<planes {
            var s: Float = 0
            for i in 0..<plane { s += xp[p * plane + i] }
            y[p] = s / Float(plane)
        }
    }
    let out = Tensor(shape: [x.shape[0], x.shape[1]], data: y)
    out.record(op: "globalAveragePool", parents: [x]) { g in
        var dx = [Float](repeating: 0, count: x.count)
        let inv = 1 / Float(plane)
        for p in 0..<planes { let v = g[p] * inv; for i in 0..<plane { dx[p * plane + i] = v } }
        x.accumulate(dx)
    }
    return out
}

/// Max over k×k windows (padding counts as -inf). Gradient goes to the first maximal input of each window.
public func maxPool2d(_ x: Tensor, kernel: Int, stride: Int? = nil, padding: Padding = .valid) -> Tensor {
    precondition(x.rank == 4, "maxPool2d wants NCHW, got \(x.shape)")
    let g = WindowGeometry(inH: x.shape[2], inW: x.shape[3], kH: kernel, kW: kernel, stride: stride ?? kernel, padding: padding)
    let planes = x.shape[0] * x.shape[1]
    var y = [Float](repeating: 0, count: planes * g.outH * g.outW)
    var argmax = [Int](repeating: -1, count: y.count)
    for p in 0..<planes { for oy in 0..<g.outH { for ox in 0..<g.outW {
        var best = -Float.infinity, at = -1
        for ky in 0..<kernel { for kx in 0..<kernel {
            let iy = oy * g.stride + ky - g.padTop, ix = ox * g.stride + kx - g.padLeft
            guard iy >= 0 && iy < g.inH && ix >= 0 && ix < g.inW else { continue }
            let i = (p * g.inH + iy) * g.inW + ix
            if x.data[i] > best || at < 0 { best = x.data[i]; at = i }
        } }
        let o = (p * g.outH + oy) * g.outW + ox
        y[o] = best; argmax[o] = at
    } } }
    let out = Tensor(shape: [x.shape[0], x.shape[1], g.outH, g.outW], data: y)
    out.record(op: "maxPool2d", parents: [x]) { grad in
        var dx = [Float](repeating: 0, count: x.count)
        for o in 0..<grad.count where argmax[o] >= 0 { dx[argmax[o]] += grad[o] }
        x.accumulate(dx)
    }
    return out
}
