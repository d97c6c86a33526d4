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
    let planes = x.shape[0] * x.shape[1], outPlane = g.outH * g.outW
    var y = uninitializedFloats(planes * outPlane)
    // Which input each output came from, kept only when a gradient will be asked for.
    let needsArgmax = Tensor.needsGrad([x])
    var argmax = needsArgmax ? [Int](repeating: -1, count: y.count) : []
    x.data.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { yb in argmax.withUnsafeMutableBufferPointer { ab in
        let xp = xb.baseAddress!, yp = yb.baseAddress!, ap = needsArgmax ? ab.baseAddress : nil
        Parallel.forEachChunk(planes, grain: max(1, 4096 / max(outPlane, 1))) { range in
            for p in range { for oy in 0..<g.outH { for ox in 0..<g.outW {
                var best = -Float.infinity, at = -1
                for ky in 0..<kernel {
                    let iy = oy * g.stride + ky - g.padTop
                    guard iy >= 0 && iy < g.inH else { continue }
                    for kx in 0..<kernel {
                        let ix = ox * g.stride + kx - g.padLeft
                        guard ix >= 0 && ix < g.inW else { continue }
                        let i = (p * g.inH + iy) * g.inW + ix
                        if xp[i] > best || at < 0 { best = xp[i]; at = i }
                    }
                }
                let o = p * outPlane + oy * g.outW + ox
                yp[o] = best
                ap?[o] = at
            } } }
        }
    } } }
    let out = Tensor(shape: [x.shape[0], x.shape[1], g.outH, g.outW], data: y)
    out.record(op: "maxPool2d", parents: [x]) { grad in
        var dx = [Float](repeating: 0, count: x.count)
        for o in 0..<grad.count where argmax[o] >= 0 { dx[argmax[o]] += grad[o] }
        x.accumulate(dx)
    }
    return out
}

/// Mean over k×k windows. `countPadding`: padded positions count in the divisor (PyTorch's
/// `count_include_pad=True`, ONNX's `count_include_pad=1`); otherwise only the inside of the image does
/// (Keras / TensorFlow "same" average pooling).
public func avgPool2d(_ x: Tensor, kernel: Int, stride: Int? = nil, padding: Padding = .valid, countPadding: Bool = true) -> Tensor {
    precondition(x.rank == 4, "avgPool2d wants NCHW, got \(x.shape)")
    let g = WindowGeometry(inH: x.shape[2], inW: x.shape[3], kH: kernel, kW: kernel, stride: stride ?? kernel, padding: padding)
    let planes = x.shape[0] * x.shape[1]
    // Divisor of each output position, shared by every plane.
    var divisor = [Float](repeating: 0, count: g.outH * g.outW)
    for oy in 0..<g.outH { for ox in 0..<g.outW {
        if countPadding {
            // PyTorch counts the padded window clipped to the padded image's far edge.
            let padBottom = (g.outH - 1) * g.stride + kernel - g.inH - g.padTop, padRight = (g.outW - 1) * g.stride + kernel - g.inW - g.padLeft
            let y0 = oy * g.stride - g.padTop, x0 = ox * g.stride - g.padLeft
            let y1 = min(y0 + kernel, g.inH + max(padBottom, 0)), x1 = min(x0 + kernel, g.inW + max(padRight, 0))
            divisor[oy * g.outW + ox] = Float((y1 - y0) * (x1 - x0))
        } else {
            let ys = (0..<kernel).filter { (0..<g.inH).contains(oy * g.stride + $0 - g.padTop) }.count
            let xs = (0..<kernel).filter { (0..<g.inW).contains(ox * g.stride + $0 - g.padLeft) }.count
            divisor[oy * g.outW + ox] = Float(ys * xs)
        }
    } }
    var y = [Float](repeating: 0, count: planes * g.outH * g.outW)
    func windows(_ body: (_ p: Int, _ o: Int, _ i: Int) -> Void) {
        for p in 0..<planes { for oy in 0..<g.outH { for ox in 0..<g.outW {
            for ky in 0..<kernel { for kx in 0..<kernel {
                let iy = oy * g.stride + ky - g.padTop, ix = ox * g.stride + kx - g.padLeft
                guard iy >= 0 && iy < g.inH && ix >= 0 && ix < g.inW else { continue }
                body(p, oy * g.outW + ox, (p * g.inH + iy) * g.inW + ix)
            } }
        } } }
    }
    let outPlane = g.outH * g.outW
    windows { p, o, i in y[p * outPlane + o] += x.data[i] / divisor[o] }
    let out = Tensor(shape: [x.shape[0], x.shape[1], g.outH, g.outW], data: y)
    out.record(op: "avgPool2d", parents: [x]) { grad in
        var dx = [Float](repeating: 0, count: x.count)
        windows { p, o, i in dx[i] += grad[p * outPlane + o] / divisor[o] }
        x.accumulate(dx)
    }
    return out
}

/// PyTorch's `AdaptiveAvgPool2d((outH, outW))`: output cell i averages input rows ⌊i·H/outH⌋ ..< ⌈(i+1)·H/outH⌉
/// (likewise columns). The identity when the input already has that size (VGG at 224²).
public func adaptiveAvgPool2d(_ x: Tensor, outH: Int, outW: Int) -> Tensor {
    precondition(x.rank == 4 && outH >= 1 && outW >= 1, "adaptiveAvgPool2d wants NCHW, got \(x.shape)")
    let h = x.shape[2], w = x.shape[3]
    if h == outH && w == outW {
        let out = Tensor(shape: x.shape, data: x.data)
        out.record(op: "adaptiveAvgPool2d", parents: [x]) { g in x.accumulate(g) }
        return out
    }
    func bounds(_ i: Int, _ n: Int, _ o: Int) -> Range<Int> { (i * n / o)..<(((i + 1) * n + o - 1) / o) }
    let planes = x.shape[0] * x.shape[1]
    var y = [Float](repeating: 0, count: planes * outH * outW)
    for p in 0..<planes { for oy in 0..<outH { for ox in 0..<outW {
        let rows = bounds(oy, h, outH), cols = bounds(ox, w, outW)
        var s: Float = 0
        for iy in rows { for ix in cols { s += x.data[(p * h + iy) * w + ix] } }
        y[(p * outH + oy) * outW + ox] = s / Float(rows.count * cols.count)
    } } }
    let out = Tensor(shape: [x.shape[0], x.shape[1], outH, outW], data: y)
    out.record(op: "adaptiveAvgPool2d", parents: [x]) { g in
        var dx = [Float](repeating: 0, count: x.count)
        for p in 0..<planes { for oy in 0..<outH { for ox in 0..<outW {
            let rows = bounds(oy, h, outH), cols = bounds(ox, w, outW)
            let v = g[(p * outH + oy) * outW + ox] / Float(rows.count * cols.count)
            for iy in rows { for ix in cols { dx[(p * h + iy) * w + ix] += v } }
        } } }
        x.accumulate(dx)
    }
    return out
}
