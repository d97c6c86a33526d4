/// Depthwise convolution for narrow planes, computed channels-last on blocks of `block` channels.
///
/// Each block is transposed into a small buffer [pixel][channel] (padded to a multiple of 8 channels),
/// the taps run as SIMD8 FMAs across channels, and the result is transposed back with bias + activation.
extension DepthwiseKernel {
    enum ChannelsLast {
        static let block = 64

        /// Splits (image, channel block) pairs over threads; `body` gets the block's channel range.
        private static func forEachBlock(batch: Int, channels: Int, _ body: (_ image: Int, _ channels: Range<Int>) -> Void) {
            let blocks = (channels + block - 1) / block
            Parallel.forEachChunk(batch * blocks) { range in
                for t in range {
                    let b = t / blocks, c0 = (t % blocks) * block
                    body(b, c0..<min(channels, c0 + block))
                }
            }
        }

        /// dst[pixel * width + (c - c0)] = src[c * pixels + pixel], zero in the padding lanes.
        /// Full 8-channel × 8-pixel tiles move through registers (`Tile8x8`); the rest element by element.
        @inline(__always)
        private static func gather(_ src: UnsafePointer<Float>, pixels: Int, channels: Range<Int>,
                                   into dst: UnsafeMutablePointer<Float>, width: Int) {
            let fullChannels = channels.count / 8 * 8, fullPixels = pixels / 8 * 8
            for j0 in stride(from: 0, to: fullChannels, by: 8) {
                let planes = src + (channels.lowerBound + j0) * pixels
                for i0 in stride(from: 0, to: fullPixels, by: 8) {
                    var tile = Tile8x8(rowsAt: planes + i0, stride: pixels)
                    tile.transpose()
                    tile.store(to: dst + i0 * width + j0, stride: width)
                }
                for i in fullPixels..<pixels { for j in j0..<(j0 + 8) { dst[i * width + j] = planes[(j - j0) * pixels + i] } }
            }
            for j in fullChannels..<channels.count {
                let plane = src + (channels.lowerBound + j) * pixels
                for i in 0..<pixels { dst[i * width + j] = plane[i] }
            }
            if channels.count < width {
                for i in 0..<pixels { (dst + i * width + channels.count).update(repeating: 0, count: width - channels.count) }
            }
        }

        /// The inverse of `gather`, clamping to [lo, hi] on the way: dst[c * pixels + pixel] = src[pixel * width + c - c0].
        @inline(__always)
        private static func scatter(_ src: UnsafePointer<Float>, pixels: Int, channels: Range<Int>, width: Int,
                                    into dst: UnsafeMutablePointer<Float>, lo: Float, hi: Float) {
            let fullChannels = channels.count / 8 * 8, fullPixels = pixels / 8 * 8
            for j0 in stride(from: 0, to: fullChannels, by: 8) {
                let planes = dst + (channels.lowerBound + j0) * pixels
                for i0 in stride(from: 0, to: fullPixels, by: 8) {
                    var tile = Tile8x8(rowsAt: src + i0 * width + j0, stride: width)
                    tile.transpose()
                    tile.clamp(lo, hi)
                    tile.store(to: planes + i0, stride: pixels)
                }
                for i in fullPixels..<pixels { for j in j0..<(j0 + 8) { planes[(j - j0) * pixels + i] = min(max(src[i * width + j], lo), hi) } }
            }
            for j in fullChannels..<channels.count {
                let plane = dst + (channels.lowerBound + j) * pixels
                for i in 0..<pixels { plane[i] = min(max(src[i * width + j], lo), hi) }
            }
        }

        static func forward(x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                            activation: Activation, y: UnsafeMutablePointer<Float>, batch: Int, channels: Int,
                            _ g: WindowGeometry) {
            let taps = g.kH * g.kW, inPixels = g.inH * g.inW, outPixels = g.outH * g.outW
            let lo: Float = activation == .identity ? -.infinity : 0, hi: Float = activation == .relu6 ? 6 : .infinity
            forEachBlock(batch: batch, channels: channels) { b, cs in
                let width = (cs.count + 7) / 8 * 8
                let xt = UnsafeMutablePointer<Float>.allocate(capacity: inPixels * width)
                let yt = UnsafeMutablePointer<Float>.allocate(capacity: outPixels * width)
                let wt = UnsafeMutablePointer<Float>.allocate(capacity: taps * width + width)
                defer { xt.deallocate(); yt.deallocate(); wt.deallocate() }
                gather(x + b * channels * inPixels, pixels: inPixels, channels: cs, into: xt, width: width)
                // wt[tap][c] and, in the last row, the bias.
                wt.update(repeating: 0, count: taps * width + width)
                for (j, c) in cs.enumerated() {
                    for t in 0..<taps { wt[t * width + j] = w[c * taps + t] }
                    wt[taps * width + j] = bias?[c] ?? 0
                }
                switch (g.kH == g.kW ? g.kW : 0, g.stride) {
                case (3, 1): computeBlock(K3S1.self, xt: xt, wt: wt, yt: yt, width: width, g)
                case (3, 2): computeBlock(K3S2.self, xt: xt, wt: wt, yt: yt, width: width, g)
                case (5, 1): computeBlock(K5S1.self, xt: xt, wt: wt, yt: yt, width: width, g)
                case (5, 2): computeBlock(K5S2.self, xt: xt, wt: wt, yt: yt, width: width, g)
                default: computeBlock(AnyTaps.self, xt: xt, wt: wt, yt: yt, width: width, g)
                }
                scatter(yt, pixels: outPixels, channels: cs, width: width, into: y + b * channels * outPixels, lo: lo, hi: hi)
            }
        }

        /// yt[pixel][c] = bias[c] + Σ taps wt[tap][c] · xt[input pixel][c] for one channel block, SIMD8 over channels.
        /// Specialized per kernel size and stride (constant trip counts unroll); interior pixels skip the
        /// per-tap bounds, border pixels clip the tap ranges.
        @inline(never)
        private static func computeBlock<S: TapShape>(_: S.Type, xt: UnsafePointer<Float>, wt: UnsafePointer<Float>,
                                                      yt: UnsafeMutablePointer<Float>, width: Int, _ g: WindowGeometry) {
            let k = S.k == 0 ? g.kW : S.k, s = S.s == 0 ? g.stride : S.s, kH = S.k == 0 ? g.kH : S.k
            let vectors = width / 8, bias = wt + k * kH * width
            @inline(__always) func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
            for oy in 0..<g.outH {
                let kyLo = max(0, g.padTop - oy * s), kyHi = min(kH, g.inH + g.padTop - oy * s)
                for ox in 0..<g.outW {
                    let kxLo = max(0, g.padLeft - ox * s), kxHi = min(k, g.inW + g.padLeft - ox * s)
                    let out = yt + (oy * g.outW + ox) * width
                    // Offset of tap (0, 0) in xt; negative at the border, where only valid taps are read.
                    let origin = ((oy * s - g.padTop) * g.inW + ox * s - g.padLeft) * width
                    // Index arithmetic wraps (&+, &*): ranges are clipped above, and overflow checks in the tap
                    // loops would cost more than the FMAs.
                    let rowStep = g.inW &* width
                    if kyLo == 0 && kyHi == kH && kxLo == 0 && kxHi == k {
                        for v in stride(from: 0, to: vectors &* 8, by: 8) {
                            // Two accumulators alternate by row: a single chain would wait on FMA latency.
                            var a0 = load(bias + v), a1 = SIMD8<Float>()
                            var wTap = wt + v, xRow = xt + (origin &+ v)
                            var oddRow = false
                            for _ in 0..<kH {
                                if oddRow {
                                    for kx in 0..<k { a1.addProduct(load(wTap + kx &* width), load(xRow + kx &* width)) }
                                } else {
                                    for kx in 0..<k { a0.addProduct(load(wTap + kx &* width), load(xRow + kx &* width)) }
                                }
                                oddRow.toggle()
                                wTap += k &* width
                                xRow += rowStep
                            }
                            UnsafeMutableRawPointer(out + v).storeBytes(of: a0 + a1, as: SIMD8<Float>.self)
                        }
                    } else {
                        for v in stride(from: 0, to: vectors &* 8, by: 8) {
                            var acc = load(bias + v)
                            for ky in kyLo..<kyHi {
                                let wRow = wt + (ky &* k &* width &+ v), xRow = xt + (origin &+ ky &* rowStep &+ v)
                                for kx in kxLo..<kxHi { acc.addProduct(load(wRow + kx &* width), load(xRow + kx &* width)) }
                            }
                            UnsafeMutableRawPointer(out + v).storeBytes(of: acc, as: SIMD8<Float>.self)
                        }
                    }
                }
            }
        }

        /// dw[c][tap] += Σ images, output pixels dy[o][c] · x[input pixel of tap][c], SIMD8 over channels. Blocks
        /// of channels are split over the threads and each block runs the images in order, so no two threads touch
        /// one filter and the sums' order does not depend on the thread count. Per plane, a 4×4 or 7×7 plane gave
        /// each tap a few scalar products and a horizontal sum.
        static func backwardWeight(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>,
                                   batch: Int, channels: Int, _ g: WindowGeometry) {
            let taps = g.kH * g.kW, inPixels = g.inH * g.inW, outPixels = g.outH * g.outW
            let blocks = (channels + block - 1) / block
            Parallel.forEachChunk(blocks) { range in
                let dyt = UnsafeMutablePointer<Float>.allocate(capacity: outPixels * block)
                let xt = UnsafeMutablePointer<Float>.allocate(capacity: inPixels * block)
                let acc = UnsafeMutablePointer<SIMD8<Float>>.allocate(capacity: taps * block / 8)
                defer { dyt.deallocate(); xt.deallocate(); acc.deallocate() }
                for blk in range {
                    let cs = (blk * block)..<min(channels, (blk + 1) * block)
                    let width = (cs.count + 7) / 8 * 8, vectors = width / 8
                    acc.update(repeating: SIMD8<Float>(), count: taps * vectors)
                    let dyv = UnsafeRawPointer(dyt), xv = UnsafeRawPointer(xt)
                    for b in 0..<batch {
                        gather(dy + b * channels * outPixels, pixels: outPixels, channels: cs, into: dyt, width: width)
                        gather(x + b * channels * inPixels, pixels: inPixels, channels: cs, into: xt, width: width)
                        for oy in 0..<g.outH {
                            let kyLo = max(0, g.padTop - oy * g.stride), kyHi = min(g.kH, g.inH + g.padTop - oy * g.stride)
                            for ox in 0..<g.outW {
                                let kxLo = max(0, g.padLeft - ox * g.stride), kxHi = min(g.kW, g.inW + g.padLeft - ox * g.stride)
                                let o = (oy * g.outW + ox) * width
                                for v in 0..<vectors {
                                    let d = dyv.loadUnaligned(fromByteOffset: (o &+ v &* 8) &* 4, as: SIMD8<Float>.self)
                                    for ky in kyLo..<kyHi {
                                        let iy = oy &* g.stride &+ ky &- g.padTop
                                        for kx in kxLo..<kxHi {
                                            let at = ((iy &* g.inW &+ ox &* g.stride &+ kx &- g.padLeft) &* width &+ v &* 8) &* 4
                                            acc[(ky &* g.kW &+ kx) &* vectors &+ v].addProduct(d, xv.loadUnaligned(fromByteOffset: at, as: SIMD8<Float>.self))
                                        }
                                    }
                                }
                            }
                        }
                    }
                    let sums = UnsafeRawPointer(acc).assumingMemoryBound(to: Float.self)
                    for (j, c) in cs.enumerated() { for t in 0..<taps { dw[c * taps + t] += sums[t * width + j] } }
                }
            }
        }

        static func backwardInput(dy: UnsafePointer<Float>, w: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                  batch: Int, channels: Int, _ g: WindowGeometry) {
            let taps = g.kH * g.kW, inPixels = g.inH * g.inW, outPixels = g.outH * g.outW
            forEachBlock(batch: batch, channels: channels) { b, cs in
                let width = (cs.count + 7) / 8 * 8, vectors = width / 8
                let dyt = UnsafeMutablePointer<Float>.allocate(capacity: outPixels * width)
                let dxt = UnsafeMutablePointer<Float>.allocate(capacity: inPixels * width)
                let wt = UnsafeMutablePointer<Float>.allocate(capacity: taps * width)
                defer { dyt.deallocate(); dxt.deallocate(); wt.deallocate() }
                gather(dy + b * channels * outPixels, pixels: outPixels, channels: cs, into: dyt, width: width)
                dxt.update(repeating: 0, count: inPixels * width)
                wt.update(repeating: 0, count: taps * width)
                for (j, c) in cs.enumerated() { for t in 0..<taps { wt[t * width + j] = w[c * taps + t] } }
                let dyv = UnsafeRawPointer(dyt), wv = UnsafeRawPointer(wt), dxv = UnsafeMutableRawPointer(dxt)
                let stride8 = MemoryLayout<SIMD8<Float>>.stride
                for oy in 0..<g.outH {
                    let kyLo = max(0, g.padTop - oy * g.stride), kyHi = min(g.kH, g.inH + g.padTop - oy * g.stride)
                    for ox in 0..<g.outW {
                        let kxLo = max(0, g.padLeft - ox * g.stride), kxHi = min(g.kW, g.inW + g.padLeft - ox * g.stride)
                        let o = oy * g.outW + ox
                        for v in 0..<vectors {
                            let d = dyv.loadUnaligned(fromByteOffset: (o * width) * 4 + v * stride8, as: SIMD8<Float>.self)
                            for ky in kyLo..<kyHi {
                                let iy = oy * g.stride + ky - g.padTop
                                for kx in kxLo..<kxHi {
                                    let at = ((iy &* g.inW &+ ox &* g.stride &+ kx &- g.padLeft) &* width) &* 4 &+ v &* stride8
                                    var acc = dxv.loadUnaligned(fromByteOffset: at, as: SIMD8<Float>.self)
                                    acc.addProduct(d, wv.loadUnaligned(fromByteOffset: ((ky &* g.kW &+ kx) &* width) &* 4 &+ v &* stride8, as: SIMD8<Float>.self))
                                    dxv.storeBytes(of: acc, toByteOffset: at, as: SIMD8<Float>.self)
                                }
                            }
                        }
                    }
                }
                scatter(dxt, pixels: inPixels, channels: cs, width: width, into: dx + b * channels * inPixels,
                        lo: -.infinity, hi: .infinity)
            }
        }
    }
}

/// An 8×8 block of floats in eight SIMD8 registers.
struct Tile8x8 {
    var r0, r1, r2, r3, r4, r5, r6, r7: SIMD8<Float>

    @inline(__always)
    init(rowsAt p: UnsafePointer<Float>, stride: Int) {
        func row(_ i: Int) -> SIMD8<Float> { UnsafeRawPointer(p + i * stride).loadUnaligned(as: SIMD8<Float>.self) }
        r0 = row(0); r1 = row(1); r2 = row(2); r3 = row(3); r4 = row(4); r5 = row(5); r6 = row(6); r7 = row(7)
    }

    @inline(__always)
    func store(to p: UnsafeMutablePointer<Float>, stride: Int) {
        func put(_ i: Int, _ v: SIMD8<Float>) { UnsafeMutableRawPointer(p + i * stride).storeBytes(of: v, as: SIMD8<Float>.self) }
        put(0, r0); put(1, r1); put(2, r2); put(3, r3); put(4, r4); put(5, r5); put(6, r6); put(7, r7)
    }

    /// Row i, column j -> row j, column i. Seen as one 64-vector indexed 8i + j, an "unzip" (even elements, then
    /// odd ones) rotates the six index bits right by one; three unzips rotate by three, which is the transpose.
    @inline(__always)
    mutating func transpose() {
        for _ in 0..<3 {
            let p0 = SIMD16(lowHalf: r0, highHalf: r1), p1 = SIMD16(lowHalf: r2, highHalf: r3)
            let p2 = SIMD16(lowHalf: r4, highHalf: r5), p3 = SIMD16(lowHalf: r6, highHalf: r7)
            r0 = p0.evenHalf; r1 = p1.evenHalf; r2 = p2.evenHalf; r3 = p3.evenHalf
            r4 = p0.oddHalf; r5 = p1.oddHalf; r6 = p2.oddHalf; r7 = p3.oddHalf
        }
    }

    @inline(__always)
    mutating func clamp(_ lo: Float, _ hi: Float) {
        @inline(__always) func c(_ v: SIMD8<Float>) -> SIMD8<Float> {
            var out = v
            for i in 0..<8 { out[i] = v[i] < lo ? lo : (v[i] > hi ? hi : v[i]) }
            return out
        }
        r0 = c(r0); r1 = c(r1); r2 = c(r2); r3 = c(r3); r4 = c(r4); r5 = c(r5); r6 = c(r6); r7 = c(r7)
    }
}
