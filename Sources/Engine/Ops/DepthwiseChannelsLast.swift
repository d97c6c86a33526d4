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
            dst.update(repeating: 0, count: pixels * width)
            for (j, c) in channels.enumerated() {
                let plane = src + c * pixels
                for i in 0..<pixels { dst[i * width + j] = plane[i] }
            }
        }

        static func forward(x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                            activation: Activation, y: UnsafeMutablePointer<Float>, batch: Int, channels: Int,
                            _ g: WindowGeometry) {
            let taps = g.kH * g.kW, inPixels = g.inH * g.inW, outPixels = g.outH * g.outW
            let lo: Float = activation == .identity ? -.infinity : 0, hi: Float = activation == .relu6 ? 6 : .infinity
            forEachBlock(batch: batch, channels: channels) { b, cs in
                let width = (cs.count + 7) / 8 * 8, vectors = width / 8
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
                let xv = UnsafeRawPointer(xt), wv = UnsafeRawPointer(wt), yv = UnsafeMutableRawPointer(yt)
                let stride8 = MemoryLayout<SIMD8<Float>>.stride
                for oy in 0..<g.outH {
                    let kyLo = max(0, g.padTop - oy * g.stride), kyHi = min(g.kH, g.inH + g.padTop - oy * g.stride)
                    for ox in 0..<g.outW {
                        let kxLo = max(0, g.padLeft - ox * g.stride), kxHi = min(g.kW, g.inW + g.padLeft - ox * g.stride)
                        let o = oy * g.outW + ox
                        for v in 0..<vectors {
                            var acc = wv.loadUnaligned(fromByteOffset: (taps * width) * 4 + v * stride8, as: SIMD8<Float>.self)
                            for ky in kyLo..<kyHi {
                                let iy = oy * g.stride + ky - g.padTop
                                for kx in kxLo..<kxHi {
                                    let i = iy * g.inW + ox * g.stride + kx - g.padLeft
                                    acc.addProduct(wv.loadUnaligned(fromByteOffset: ((ky * g.kW + kx) * width) * 4 + v * stride8, as: SIMD8<Float>.self),
                                                   xv.loadUnaligned(fromByteOffset: (i * width) * 4 + v * stride8, as: SIMD8<Float>.self))
                                }
                            }
                            yv.storeBytes(of: acc, toByteOffset: (o * width) * 4 + v * stride8, as: SIMD8<Float>.self)
                        }
                    }
                }
                let out = y + b * channels * outPixels
                for (j, c) in cs.enumerated() {
                    let plane = out + c * outPixels
                    for i in 0..<outPixels { plane[i] = min(max(yt[i * width + j], lo), hi) }
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
