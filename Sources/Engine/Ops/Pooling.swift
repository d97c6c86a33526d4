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

/// Max over k×k windows (padding counts as -inf). Gradient goes to the first maximal input of each window (in
/// row-major window order; a NaN first in its window stays the maximum, a later one is passed over).
public func maxPool2d(_ x: Tensor, kernel: Int, stride: Int? = nil, padding: Padding = .valid) -> Tensor {
    precondition(x.rank == 4, "maxPool2d wants NCHW, got \(x.shape)")
    let g = WindowGeometry(inH: x.shape[2], inW: x.shape[3], kH: kernel, kW: kernel, stride: stride ?? kernel, padding: padding)
    let planes = x.shape[0] * x.shape[1], outPlane = g.outH * g.outW, inPlane = g.inH * g.inW
    precondition(inPlane <= Int(Int32.max), "maxPool2d: a \(g.inH)x\(g.inW) plane is too large")
    var y = uninitializedFloats(planes * outPlane)
    // Which input each output came from (an index within its plane), kept only when a gradient will be asked for.
    let needsArgmax = Tensor.needsGrad([x])
    let grain = max(1, 4096 / max(outPlane, 1))  // planes per task
    var argmax = needsArgmax ? [Int32](repeating: -1, count: y.count) : []
    x.data.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { yb in argmax.withUnsafeMutableBufferPointer { ab in
        let xp = xb.baseAddress!, yp = yb.baseAddress!, ap = needsArgmax ? ab.baseAddress : nil
        Parallel.forEachChunk(planes, grain: grain) { range in
            for p in range {
                MaxPool.plane(xp + p * inPlane, yp + p * outPlane, ap.map { $0 + p * outPlane }, g)
            }
        }
    } } }
    let out = Tensor(shape: [x.shape[0], x.shape[1], g.outH, g.outW], data: y)
    out.record(op: "maxPool2d", parents: [x]) { grad in
        var dx = [Float](repeating: 0, count: x.count)
        grad.withUnsafeBufferPointer { gb in dx.withUnsafeMutableBufferPointer { db in argmax.withUnsafeBufferPointer { ab in
            let gp = gb.baseAddress!, dp = db.baseAddress!, ap = ab.baseAddress!
            // Each plane's sums stay in its plane, in output order: the same bits on any thread count.
            Parallel.forEachChunk(planes, grain: grain) { range in
                for p in range {
                    let d = dp + p * inPlane
                    for o in (p * outPlane)..<((p + 1) * outPlane) where ap[o] >= 0 { d[Int(ap[o])] += gp[o] }
                }
            }
        } } }
        x.accumulate(dx)
    }
    return out
}

/// One plane of `maxPool2d`: the window's first value, then each later value that is greater (so ties keep the first
/// and NaN only wins first). The columns whose window lies inside the image skip the bounds checks, and a stride-2
/// window of 2 or 3 runs 8 outputs (and their argmax) per step, each tap column a de-interleaved half of one 16-lane load.
enum MaxPool {
    static func plane(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ argmax: UnsafeMutablePointer<Int32>?,
                      _ g: WindowGeometry) {
        let k = g.kH, s = g.stride
        // Columns ox whose window x0 = ox·s − padLeft … x0 + k − 1 lies inside the row.
        let oxLo = min(g.outW, (g.padLeft + s - 1) / s)
        let oxHi = g.inW + g.padLeft >= k ? max(oxLo, min(g.outW, (g.inW + g.padLeft - k) / s + 1)) : oxLo
        for oy in 0..<g.outH {
            let y0 = oy * s - g.padTop
            let rows = max(0, -y0)..<min(k, g.inH - y0)
            let yRow = y + oy * g.outW, aRow = argmax.map { $0 + oy * g.outW }
            @inline(__always) func checked(_ ox: Int) {
                var best = -Float.infinity, at: Int32 = -1
                for ky in rows {
                    for kx in 0..<k {
                        let ix = ox * s + kx - g.padLeft
                        guard ix >= 0 && ix < g.inW else { continue }
                        let i = (y0 + ky) * g.inW + ix
                        if x[i] > best || at < 0 { best = x[i]; at = Int32(i) }
                    }
                }
                yRow[ox] = best
                aRow?[ox] = at
            }
            guard !rows.isEmpty else { for ox in 0..<g.outW { checked(ox) }; continue }
            for ox in 0..<oxLo { checked(ox) }
            var ox = oxLo
            if s == 2 && (k == 2 || k == 3) {
                typealias V16 = SIMD16<Float>
                typealias I8 = SIMD8<Int32>
                let lanes = I8(0, 2, 4, 6, 8, 10, 12, 14)
                // A step reads x0 ..< x0 + 16, and for k = 3 also x0 + 2 ..< x0 + 18.
                let reach = k == 2 ? 16 : 18
                while ox + 8 <= oxHi && ox * 2 - g.padLeft + reach <= g.inW {
                    let x0 = ox * 2 - g.padLeft
                    var best = SIMD8<Float>(), at = I8()
                    for ky in rows {
                        let offset = (y0 + ky) * g.inW + x0, row = x + offset
                        let first = ky == rows.lowerBound
                        @inline(__always) func tap(_ v: SIMD8<Float>, _ kx: Int) {
                            let index = lanes &+ Int32(offset + kx)
                            if first && kx == 0 { best = v; at = index; return }
                            let greater = v .> best
                            best.replace(with: v, where: greater)
                            at.replace(with: index, where: greater)
                        }
                        let a = UnsafeRawPointer(row).loadUnaligned(as: V16.self)
                        tap(a.evenHalf, 0)
                        tap(a.oddHalf, 1)
                        if k == 3 { tap(UnsafeRawPointer(row + 2).loadUnaligned(as: V16.self).evenHalf, 2) }
                    }
                    UnsafeMutableRawPointer(yRow + ox).storeBytes(of: best, as: SIMD8<Float>.self)
                    if let aRow { UnsafeMutableRawPointer(aRow + ox).storeBytes(of: at, as: I8.self) }
                    ox += 8
                }
            }
            while ox < oxHi {
                let x0 = ox * s - g.padLeft
                var row = x + (y0 + rows.lowerBound) * g.inW + x0
                var best = row[0], at = Int32((y0 + rows.lowerBound) * g.inW + x0)
                for ky in rows {
                    for kx in 0..<k where ky != rows.lowerBound || kx > 0 {
                        if row[kx] > best { best = row[kx]; at = Int32((y0 + ky) * g.inW + x0 + kx) }
                    }
                    row += g.inW
                }
                yRow[ox] = best
                aRow?[ox] = at
                ox += 1
            }
            for ox in oxHi..<g.outW { checked(ox) }
        }
    }
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
