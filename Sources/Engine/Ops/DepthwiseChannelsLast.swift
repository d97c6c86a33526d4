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
        @inline(__always)
        private static func gather(_ src: UnsafePointer<Float>, pixels: Int, channels: Range<Int>,
                                   into dst: UnsafeMutablePointer<Float>, width: Int) {
            for (j, c) in channels.enumerated() {
                let plane = src + c * pixels
                for i in 0..<pixels { dst[i * width + j] = plane[i] }
            }
            if channels.count < width {
                for i in 0..<pixels { (dst + i * width + channels.count).update(repeating: 0, count: width - channels.count) }
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
                let out = y + b * channels * outPixels
                for (j, c) in cs.enumerated() {
                    let plane = out + c * outPixels
                    for i in 0..<outPixels { plane[i] = min(max(yt[i * width + j], lo), hi) }
                }
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
                    if kyLo == 0 && kyHi == kH && kxLo == 0 && kxHi == k {
                        for v in stride(from: 0, to: vectors * 8, by: 8) {
                            var acc = load(bias + v)
                            for ky in 0..<kH { for kx in 0..<k {
                                acc.addProduct(load(wt + (ky * k + kx) * width + v), load(xt + (origin + (ky * g.inW + kx) * width + v)))
                            } }
                            UnsafeMutableRawPointer(out + v).storeBytes(of: acc, as: SIMD8<Float>.self)
                        }
                    } else {
                        for v in stride(from: 0, to: vectors * 8, by: 8) {
                            var acc = load(bias + v)
                            for ky in kyLo..<kyHi { for kx in kxLo..<kxHi {
                                acc.addProduct(load(wt + (ky * k + kx) * width + v), load(xt + (origin + (ky * g.inW + kx) * width + v)))
                            } }
                            UnsafeMutableRawPointer(out + v).storeBytes(of: acc, as: SIMD8<Float>.self)
                        }
                    }
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
                                    let at = ((iy * g.inW + ox * g.stride + kx - g.padLeft) * width) * 4 + v * stride8
                                    var acc = dxv.loadUnaligned(fromByteOffset: at, as: SIMD8<Float>.self)
                                    acc.addProduct(d, wv.loadUnaligned(fromByteOffset: ((ky * g.kW + kx) * width) * 4 + v * stride8, as: SIMD8<Float>.self))
                                    dxv.storeBytes(of: acc, toByteOffset: at, as: SIMD8<Float>.self)
                                }
                            }
                        }
                    }
                }
                let out = dx + b * channels * inPixels
                for (j, c) in cs.enumerated() {
                    let plane = out + c * inPixels
                    for i in 0..<inPixels { plane[i] = dxt[i * width + j] }
                }
            }
        }
    }
}
