import CKernels

/// Depthwise (one filter per channel) convolution kernels, NCHW in and out.
///
/// On a CPU with AVX-512, every plane of a 3×3 or 5×5 stride-1 or -2 conv runs `vz_depthwise_plane_avx512`
/// (Sources/CKernels): 16 columns a vector, borders and narrow planes by masked loads, bias and activation in
/// registers. Otherwise two layouts of the same arithmetic, picked by plane width:
/// - wide planes (≥ 16 columns): per-plane row kernels, SIMD8 + FMA over output columns; the interior runs
///   vectorized with every tap in bounds, border columns run scalar with bounds checks (no padded copy).
///   Stride 2 loads 16 lanes and keeps the even half.
/// - narrow planes (7×7, 14×14): a row of 7 or 14 cannot fill SIMD lanes, so blocks of channels are
///   transposed to channels-last in a small L1-resident buffer and the taps vectorize over channels;
///   borders are handled by the per-pixel tap range, so no padding is ever materialized.
enum DepthwiseKernel {
    static let wideThreshold = 16

    // MARK: Entry points (all planes of a batch)

    static func forward(x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        activation: Activation, y: UnsafeMutablePointer<Float>, batch: Int, channels: Int,
                        _ g: WindowGeometry) {
        let taps = g.kH * g.kW, inPlane = g.inH * g.inW, outPlane = g.outH * g.outW
        if perPlane(g) {
            Parallel.forEachChunk(batch * channels) { planes in
                for p in planes {
                    let c = p % channels
                    forwardPlane(x: x + p * inPlane, y: y + p * outPlane, w: w + c * taps, bias: bias?[c] ?? 0,
                                 activation: activation, g)
                }
            }
        } else {
            ChannelsLast.forward(x: x, w: w, bias: bias, activation: activation, y: y, batch: batch, channels: channels, g)
        }
    }

    /// dx = d(conv)/dx · dy. With `mask`, dy is first multiplied in place by act'(y) — plane by plane on wide
    /// planes, so each plane is masked while it is in cache right before the kernel reads it.
    static func backwardInput(dy: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                              batch: Int, channels: Int, _ g: WindowGeometry,
                              mask: (y: UnsafePointer<Float>, activation: Activation)? = nil) {
        let taps = g.kH * g.kW, inPlane = g.inH * g.inW, outPlane = g.outH * g.outW
        @inline(__always) func maskPlane(_ p: Int) {
            if let m = mask { m.activation.maskGradient(dy + p * outPlane, output: m.y + p * outPlane, count: outPlane) }
        }
        guard perPlane(g) && (g.stride == 1 || g.outW >= wideThreshold) else {
            // Narrow planes are small: mask in one pass, then run channels-last.
            if let m = mask { m.activation.maskGradientParallel(dy, output: m.y, planes: batch * channels, planeSize: outPlane) }
            if g.stride == 1 {
                let (t, flipped) = transposedStrideOne(w, channels: channels, g)
                flipped.withUnsafeBufferPointer { fw in
                    ChannelsLast.forward(x: dy, w: fw.baseAddress!, bias: nil, activation: .identity, y: dx, batch: batch,
                                         channels: channels, t)
                }
            } else {
                ChannelsLast.backwardInput(dy: dy, w: w, dx: dx, batch: batch, channels: channels, g)
            }
            return
        }
        if g.stride == 1 {
            let (t, flipped) = transposedStrideOne(w, channels: channels, g)
            flipped.withUnsafeBufferPointer { fw in
                Parallel.forEachChunk(batch * channels) { planes in
                    for p in planes {
                        maskPlane(p)
                        forwardPlane(x: dy + p * outPlane, y: dx + p * inPlane, w: fw.baseAddress! + (p % channels) * taps,
                                     bias: 0, activation: .identity, t)
                    }
                }
            }
            return
        }
        // Stride 2: each input column parity is a stride-1 gather over dy (polyphase), no read-modify-write.
        Parallel.forEachChunk(batch * channels) { planes in
            for p in planes {
                maskPlane(p)
                gatherStride2Plane(dy: dy + p * outPlane, dx: dx + p * inPlane, w: w + (p % channels) * taps, g)
            }
        }
    }

    /// Stride-1 backward is the forward conv of dy with the flipped kernel and the complementary padding
    /// (a gather, no read-modify-write): that geometry and the flipped filters.
    static func transposedStrideOne(_ w: UnsafePointer<Float>, channels: Int, _ g: WindowGeometry) -> (WindowGeometry, [Float]) {
        let taps = g.kH * g.kW
        let padBottom = g.outH - 1 + g.kH - g.inH - g.padTop, padRight = g.outW - 1 + g.kW - g.inW - g.padLeft
        let t = WindowGeometry(inH: g.outH, inW: g.outW, kH: g.kH, kW: g.kW, stride: 1,
                               padding: .explicit(top: g.kH - 1 - g.padTop, bottom: g.kH - 1 - padBottom,
                                                  left: g.kW - 1 - g.padLeft, right: g.kW - 1 - padRight))
        var flipped = [Float](repeating: 0, count: channels * taps)
        for c in 0..<channels { for i in 0..<taps { flipped[c * taps + i] = w[c * taps + taps - 1 - i] } }
        return (t, flipped)
    }

    static func backwardWeight(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>,
                               batch: Int, channels: Int, _ g: WindowGeometry) {
        guard g.outW >= wideThreshold && rowKernelSupports(g) else {
            ChannelsLast.backwardWeight(dy: dy, x: x, dw: dw, batch: batch, channels: channels, g)
            return
        }
        let taps = g.kH * g.kW, inPlane = g.inH * g.inW, outPlane = g.outH * g.outW
        Parallel.forEachChunk(channels) { range in
            for c in range { for b in 0..<batch {
                let p = b * channels + c
                weightPlane(dy: dy + p * outPlane, x: x + p * inPlane, dw: dw + c * taps, g)
            } }
        }
    }

    // MARK: Wide-plane row kernels

    @inline(__always)
    static func load8(_ p: UnsafePointer<Float>, stride: Int) -> SIMD8<Float> {
        stride == 1 ? UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
                    : UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self).evenHalf
    }

    /// Output columns whose taps are all inside the row and whose vector loads stay inside the row.
    static func vectorColumns(_ g: WindowGeometry) -> Range<Int> {
        guard g.stride <= 2 else { return 0..<0 }
        let lo = g.validColumns(kx: 0).lowerBound
        var hi = g.validColumns(kx: g.kW - 1).upperBound
        if g.stride == 2 {
            // A chunk starting at ox reads up to ox*2 + 15 + (kW-1) - padLeft; keep that inside the row.
            let lastStart = g.inW - 1 - 15 - (g.kW - 1) + g.padLeft
            hi = lastStart < 0 ? lo : min(hi, lastStart / 2 + 8)
        }
        return lo..<max(lo, hi)
    }

    /// Whether planes of this shape run one by one (the AVX-512 kernel, or the row kernels on wide planes) rather
    /// than channels-last. A narrow stride-2 backward stays channels-last: its gather is written for wide rows.
    static func perPlane(_ g: WindowGeometry) -> Bool {
        rowKernelSupports(g) && (g.outW >= wideThreshold || MicroKernel.avx512)
    }

    /// Whether the row kernels cover this shape (square 3×3 or 5×5, stride 1 or 2); others go channels-last.
    static func rowKernelSupports(_ g: WindowGeometry) -> Bool {
        g.kH == g.kW && (g.kW == 3 || g.kW == 5) && (g.stride == 1 || g.stride == 2)
    }

    /// One plane: y = act(bias + Σ w[ky,kx] · x[oy*s+ky-padTop, ox*s+kx-padLeft]), zero outside the image.
    static func forwardPlane(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>,
                             bias: Float, activation: Activation, _ g: WindowGeometry) {
        if MicroKernel.avx512 {
            let done = vz_depthwise_plane_avx512(x, y, w, bias, g.inH, g.inW, g.outH, g.outW, g.padTop, g.padLeft,
                                                 g.kW, g.stride, activation.kernelCode)
            precondition(done != 0, "AVX-512 depthwise kernel called for \(g.kW)x\(g.kH) stride \(g.stride)")
            return
        }
        // Copies specialized per kernel size and stride, so the tap loops unroll with constant trip counts.
        switch (g.kW, g.stride) {
        case (3, 1): rowsForward(K3S1.self, x, y, w, bias, g)
        case (3, 2): rowsForward(K3S2.self, x, y, w, bias, g)
        case (5, 1): rowsForward(K5S1.self, x, y, w, bias, g)
        case (5, 2): rowsForward(K5S2.self, x, y, w, bias, g)
        default: preconditionFailure("row kernel called for \(g.kW)x\(g.kH) stride \(g.stride)")
        }
        for oy in 0..<g.outH { activation.apply(y + oy * g.outW, count: g.outW, bias: 0) }
    }

    private static func rowsForward<S: TapShape>(_: S.Type, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                                 _ w: UnsafePointer<Float>, _ bias: Float, _ g: WindowGeometry) {
        let k = S.k, s = S.s
        let vcols = vectorColumns(g)
        // 3×3: the nine taps held in registers across the plane (a broadcast load per FMA was the limit).
        let taps3 = S.k == 3
        @inline(__always) func tap(_ i: Int) -> SIMD8<Float> { SIMD8(repeating: taps3 ? w[i] : 0) }
        let w0 = tap(0), w1 = tap(1), w2 = tap(2), w3 = tap(3), w4 = tap(4), w5 = tap(5), w6 = tap(6), w7 = tap(7), w8 = tap(8)
        for oy in 0..<g.outH {
            let kyLo = max(0, g.padTop - oy * s), kyHi = min(k, g.inH + g.padTop - oy * s)
            let yRow = y + oy * g.outW
            // Index arithmetic wraps (&+, &*): the tap ranges are clipped to the image first, and overflow
            // checks in the tap loops would cost more than the arithmetic.
            @inline(__always) func scalar(_ ox: Int) {
                let kxLo = max(0, g.padLeft &- ox &* s), kxHi = min(k, g.inW &+ g.padLeft &- ox &* s)
                var acc = bias
                for ky in kyLo..<kyHi {
                    let xRow = x + ((oy &* s &+ ky &- g.padTop) &* g.inW &+ ox &* s &- g.padLeft), wRow = w + ky &* k
                    for kx in kxLo..<kxHi { acc += wRow[kx] * xRow[kx] }
                }
                yRow[ox] = acc
            }
            let fullRows = kyLo == 0 && kyHi == k
            @inline(__always) func vector(_ ox: Int) {
                @inline(__always) func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
                if S.k == 3 && S.s == 1 && fullRows {
                    let r0 = x + ((oy &- g.padTop) &* g.inW &+ ox &- g.padLeft), r1 = r0 + g.inW, r2 = r1 + g.inW
                    var a = SIMD8<Float>(repeating: bias), b = w1 * load(r0 + 1), c = w2 * load(r0 + 2)
                    a.addProduct(w0, load(r0)); b.addProduct(w4, load(r1 + 1)); c.addProduct(w5, load(r1 + 2))
                    a.addProduct(w3, load(r1)); b.addProduct(w7, load(r2 + 1)); c.addProduct(w8, load(r2 + 2))
                    a.addProduct(w6, load(r2))
                    UnsafeMutableRawPointer(yRow + ox).storeBytes(of: a + b + c, as: SIMD8<Float>.self)
                    return
                }
                if S.k == 3 && S.s == 2 && fullRows {
                    // Stride 2: one 16-lane load gives taps 0 (even lanes) and 1 (odd lanes), a second one tap 2.
                    @inline(__always) func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }
                    let r0 = x + ((oy &* 2 &- g.padTop) &* g.inW &+ ox &* 2 &- g.padLeft), r1 = r0 + g.inW, r2 = r1 + g.inW
                    let p0 = load16(r0), p1 = load16(r1), p2 = load16(r2)
                    var a = SIMD8<Float>(repeating: bias), b = w1 * p0.oddHalf, c = w2 * load16(r0 + 2).evenHalf
                    a.addProduct(w0, p0.evenHalf); b.addProduct(w4, p1.oddHalf); c.addProduct(w5, load16(r1 + 2).evenHalf)
                    a.addProduct(w3, p1.evenHalf); b.addProduct(w7, p2.oddHalf); c.addProduct(w8, load16(r2 + 2).evenHalf)
                    a.addProduct(w6, p2.evenHalf)
                    UnsafeMutableRawPointer(yRow + ox).storeBytes(of: a + b + c, as: SIMD8<Float>.self)
                    return
                }
                // Four independent accumulators (by row and column parity): one chain of 25 dependent FMAs
                // would wait on FMA latency, not throughput.
                var a0 = SIMD8<Float>(repeating: bias), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
                var oddRow = false
                for ky in kyLo..<kyHi {
                    let wRow = w + ky &* k
                    let xRow = x + ((oy &* s &+ ky &- g.padTop) &* g.inW &+ ox &* s &- g.padLeft)
                    if oddRow { tapRow(S.self, xRow, wRow, &a2, &a3) } else { tapRow(S.self, xRow, wRow, &a0, &a1) }
                    oddRow.toggle()
                }
                UnsafeMutableRawPointer(yRow + ox).storeBytes(of: (a0 + a1) + (a2 + a3), as: SIMD8<Float>.self)
            }
            if vcols.count >= 8 {
                for ox in 0..<vcols.lowerBound { scalar(ox) }
                // Vector chunks; the last one is shifted left to end exactly at the interior's end
                // (recomputing a few columns is cheaper than a scalar tail).
                var ox = vcols.lowerBound
                while true {
                    let start = min(ox, vcols.upperBound - 8)
                    vector(start)
                    if start + 8 >= vcols.upperBound { break }
                    ox += 8
                }
                for ox in vcols.upperBound..<g.outW { scalar(ox) }
            } else {
                for ox in 0..<g.outW { scalar(ox) }
            }
        }
    }

    /// One kernel row's taps for 8 output columns, alternating between two accumulators.
    @inline(__always)
    static func tapRow<S: TapShape>(_: S.Type, _ xRow: UnsafePointer<Float>, _ wRow: UnsafePointer<Float>,
                                    _ a: inout SIMD8<Float>, _ b: inout SIMD8<Float>) {
        var kx = 0
        while kx &+ 1 < S.k {
            a.addProduct(SIMD8(repeating: wRow[kx]), load8(xRow + kx, stride: S.s))
            b.addProduct(SIMD8(repeating: wRow[kx &+ 1]), load8(xRow + (kx &+ 1), stride: S.s))
            kx &+= 2
        }
        if kx < S.k { a.addProduct(SIMD8(repeating: wRow[kx]), load8(xRow + kx, stride: S.s)) }
    }

    /// Stride-2 backward to the input of one plane, written as a gather (dx fully overwritten):
    /// dx[iy, 2j+p] = Σ_ky Σ_{kx ≡ p+padLeft (mod 2)} w[ky,kx] · dy[(iy+padTop−ky)/2, j + (p+padLeft−kx)/2],
    /// so for each column parity p the sum runs over contiguous dy; both parities are computed 8 columns at a
    /// time and interleaved into 16 consecutive dx values.
    static func gatherStride2Plane(dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>,
                                   _ g: WindowGeometry) {
        precondition(g.stride == 2)
        // (kx, column shift d) per parity; d = (p + padLeft − kx) / 2 is exact.
        var shifts: [[(kx: Int, d: Int)]] = [[], []]
        for p in 0..<2 { for kx in 0..<g.kW where (p + g.padLeft - kx) & 1 == 0 { shifts[p].append((kx, (p + g.padLeft - kx) / 2)) } }
        let ds = shifts[0].map(\.d) + shifts[1].map(\.d)
        let dMin = ds.min() ?? 0, dMax = ds.max() ?? 0
        // j where every tap of both parities is inside dy's row and the 16 stored values inside dx's row.
        let jLo = max(0, -dMin), jHi = min(g.outW - dMax, g.inW / 2)
        let (even, odd) = (shifts[0], shifts[1])
        for iy in 0..<g.inH {
            let dxRow = dx + iy * g.inW
            // Rows of dy that reach input row iy: ky ≡ iy + padTop (mod 2).
            let kyFirst = (iy + g.padTop) & 1
            @inline(__always) func scalar(_ ix: Int) {
                let p = ix & 1, j = ix >> 1
                var acc: Float = 0
                for ky in stride(from: kyFirst, to: g.kH, by: 2) {
                    let oy = (iy + g.padTop - ky) >> 1
                    guard oy >= 0 && oy < g.outH else { continue }
                    for (kx, d) in shifts[p] where j + d >= 0 && j + d < g.outW {
                        acc += w[ky * g.kW + kx] * dy[oy * g.outW + j + d]
                    }
                }
                dxRow[ix] = acc
            }
            @inline(__always) func vector(_ j: Int) {
                var e = SIMD8<Float>(repeating: 0), o = SIMD8<Float>(repeating: 0)
                for ky in stride(from: kyFirst, to: g.kH, by: 2) {
                    let oy = (iy + g.padTop - ky) >> 1
                    guard oy >= 0 && oy < g.outH else { continue }
                    let dyRow = dy + (oy &* g.outW &+ j), wRow = w + ky &* g.kW
                    for (kx, d) in even { e.addProduct(SIMD8(repeating: wRow[kx]), load8(dyRow + d, stride: 1)) }
                    for (kx, d) in odd { o.addProduct(SIMD8(repeating: wRow[kx]), load8(dyRow + d, stride: 1)) }
                }
                var both = SIMD16<Float>()
                both.evenHalf = e
                both.oddHalf = o
                UnsafeMutableRawPointer(dxRow + 2 * j).storeBytes(of: both, as: SIMD16<Float>.self)
            }
            if jHi - jLo >= 8 {
                for ix in 0..<(2 * jLo) { scalar(ix) }
                // Pure writes, so the last chunk may overlap the previous one instead of leaving a scalar tail.
                var j = jLo
                while true {
                    let start = min(j, jHi - 8)
                    vector(start)
                    if start + 8 >= jHi { break }
                    j += 8
                }
                for ix in (2 * jHi)..<g.inW { scalar(ix) }
            } else {
                for ix in 0..<g.inW { scalar(ix) }
            }
        }
    }

    /// dw[ky,kx] += Σ dy[oy,ox] · x[oy*s+ky-padTop, ox*s+kx-padLeft] over one plane.
    static func weightPlane(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>,
                            _ g: WindowGeometry) {
        let s = g.stride
        for ky in 0..<g.kH {
            let rows = g.validRows(ky: ky)
            for kx in 0..<g.kW {
                let cols = g.validColumns(kx: kx)
                var acc = SIMD8<Float>(repeating: 0)
                var tail: Float = 0
                for oy in rows {
                    let xRow = x + (oy * s + ky - g.padTop) * g.inW + kx - g.padLeft
                    let dyRow = dy + oy * g.outW
                    var ox = cols.lowerBound
                    if s == 1 {
                        while ox + 8 <= cols.upperBound {
                            acc.addProduct(UnsafeRawPointer(dyRow + ox).loadUnaligned(as: SIMD8<Float>.self),
                                           UnsafeRawPointer(xRow + ox).loadUnaligned(as: SIMD8<Float>.self))
                            ox += 8
                        }
                    }
                    while ox < cols.upperBound { tail += dyRow[ox] * xRow[ox * s]; ox += 1 }
                }
                dw[ky * g.kW + kx] += acc.sum() + tail
            }
        }
    }
}

/// Compile-time kernel size and stride for the specialized row kernels.
protocol TapShape { static var k: Int { get }; static var s: Int { get } }
enum K3S1: TapShape { static var k: Int { 3 }; static var s: Int { 1 } }
enum K3S2: TapShape { static var k: Int { 3 }; static var s: Int { 2 } }
enum K5S1: TapShape { static var k: Int { 5 }; static var s: Int { 1 } }
enum K5S2: TapShape { static var k: Int { 5 }; static var s: Int { 2 } }
/// Any other size: read from the geometry at run time (channels-last path only).
enum AnyTaps: TapShape { static var k: Int { 0 }; static var s: Int { 0 } }
