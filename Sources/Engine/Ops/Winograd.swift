/// Winograd F(4×4, 3×3) for 3×3 stride-1 convolutions (Lavin & Gray, "Fast Algorithms for Convolutional Neural
/// Networks", 2015): each 6×6 input tile d and filter g give a 4×4 output tile Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, so the
/// 36 element-wise products become 36 matrix products over channels, U[ξ] (Cout × Cin) · V[ξ] (Cin × tiles), with
/// 36 multiplies per 16 outputs instead of 144: 4× fewer than the direct convolution (less the tiles' overhang
/// at the borders).
///
/// The transformed filters U are made once per weight tensor (`Tensor.packed`); the input gradient of the same
/// convolution is the same algorithm on dy with the filters flipped and transposed (`flippedForInputGradient`).
/// Tiles are processed a block of tile rows at a time so V and M of a block stay in cache; within a block the input
/// transform is split over input channels and the products + output transform over output channels, across threads.
///
/// Transforms run 8 tiles at a time in SIMD lanes: the 6 input rows of a tile row are first de-interleaved by column
/// mod 4 ("phases"), so the 6 columns of 8 consecutive tiles are 6 contiguous vector loads; the output transform
/// writes 16 phase vectors, re-interleaved into the output rows.
enum Winograd {
    typealias V8 = SIMD8<Float>

    /// Whether the convolution runs here: 3×3, stride 1, dense, one group, at least 8 channels in and out (the
    /// first layer of an RGB network has too few input channels for the products to pay for the transforms),
    /// padding at most 2 (so the input gradient is again such a convolution), and enough tiles: without AVX-512 at
    /// least 4 (a 7×7 plane: measured faster than im2col + OpenBLAS there, ResNet-50's last stage), with it 9 per image.
    static func applies(_ c: ConvShape) -> Bool {
        let g = c.g
        guard c.groups == 1, g.kH == 3, g.kW == 3, g.stride == 1, g.dilation == 1, c.cin >= 8, c.cout >= 8,
              (0...2).contains(g.padTop), (0...2).contains(g.padLeft),
              (0...2).contains(g.outH + 2 - g.inH - g.padTop), (0...2).contains(g.outW + 2 - g.inW - g.padLeft) else { return false }
        let perImage = ((g.outH + 3) / 4) * ((g.outW + 3) / 4)
        // With AVX-512 the alternative is im2col on the micro-kernel (`ConvShape.microColumnsForward`), which reads the
        // filters once, not 4× larger ones for a handful of tiles: on ResNet-50's 512-channel 7×7 convs (4 tiles) it took
        // 1.7–1.9 ms forward against Winograd's 3.7–3.9 (`bench --profile`, alternating), so Winograd needs 9 tiles.
        if MicroKernel.avx512 { return perImage >= 9 }
        return c.n * perImage >= 4
    }

    // MARK: Filter transform

    /// G (6×3) of F(4×4, 3×3).
    static let gMatrix: [[Float]] = [
        [1.0 / 4, 0, 0],
        [-1.0 / 6, -1.0 / 6, -1.0 / 6],
        [-1.0 / 6, 1.0 / 6, -1.0 / 6],
        [1.0 / 24, 1.0 / 12, 1.0 / 6],
        [1.0 / 24, -1.0 / 12, 1.0 / 6],
        [0, 0, 1],
    ]

    /// U[ξ] = (G w[o][i] Gᵀ)[ξ] over outputs o and inputs i for weights [outputs, inputs, 3, 3], each ξ's matrix packed
    /// in `MicroKernel` A panels (36 × paddedRows(o) × i floats); `flip` transforms w[i][o] rotated 180° instead (the
    /// filters of the input gradient, whose outputs are the forward's inputs). The transform is computed in Double.
    static func transformFilters(_ w: UnsafePointer<Float>, outputs: Int, inputs: Int, flip: Bool) -> [Float] {
        let (o, i) = flip ? (inputs, outputs) : (outputs, inputs)
        var plain = [Float](repeating: 0, count: 36 * o * i)
        plain.withUnsafeMutableBufferPointer { up in
            Parallel.forEachChunk(o) { range in
                var t = [Double](repeating: 0, count: 18)
                for a in range { for b in 0..<i {
                    // flip: filter (a, b) of the gradient conv is forward filter (b, a), rotated.
                    let src = flip ? w + (b * inputs + a) * 9 : w + (a * inputs + b) * 9
                    @inline(__always) func g(_ r: Int, _ c: Int) -> Double { Double(flip ? src[(2 - r) * 3 + 2 - c] : src[r * 3 + c]) }
                    for r in 0..<6 { for c in 0..<3 {  // t = G g
                        t[r * 3 + c] = Double(gMatrix[r][0]) * g(0, c) + Double(gMatrix[r][1]) * g(1, c) + Double(gMatrix[r][2]) * g(2, c)
                    } }
                    for r in 0..<6 { for c in 0..<6 {  // (G g) Gᵀ
                        let v = t[r * 3] * Double(gMatrix[c][0]) + t[r * 3 + 1] * Double(gMatrix[c][1]) + t[r * 3 + 2] * Double(gMatrix[c][2])
                        up[((r * 6 + c) * o + a) * i + b] = Float(v)
                    } }
                } }
            }
        }
        let rows = MicroKernel.paddedRows(o)
        var packed = [Float](repeating: 0, count: 36 * rows * i)
        plain.withUnsafeBufferPointer { src in packed.withUnsafeMutableBufferPointer { dst in
            Parallel.forEachChunk(36) { xis in
                for xi in xis {
                    MicroKernel.packA(src.baseAddress! + xi * o * i, m: o, k: i, lda: i, into: dst.baseAddress! + xi * rows * i)
                }
            }
        } }
        return packed
    }

    // MARK: Convolution

    /// One convolution's geometry in Winograd terms: `channelsIn` planes of inH×inW read (zero outside) at offset
    /// (−padTop, −padLeft), `channelsOut` planes of outH×outW written.
    struct Plan {
        let channelsIn, channelsOut, inH, inW, outH, outW, padTop, padLeft: Int
        var tilesH: Int { (outH + 3) / 4 }
        var tilesW: Int { (outW + 3) / 4 }
        /// Phase-array length: tilesW + 1 columns (a tile's 6 columns reach into the next tile's first two), in whole vectors.
        var phaseWidth: Int { (tilesW + 1 + 7) / 8 * 8 + 8 }
        /// Tile rows per block: V and M of a block within about 2 MB (L2 + a share of L3), or within the size of the
        /// transformed filters U when they are larger. Every block reads all of U, and a U of many megabytes comes from
        /// memory each time: VGG's 512-channel layers at 28² (38 MB of U) read it 4 times per image with 2 MB blocks, at
        /// 14² twice, and those products ran at a quarter of the micro-kernel's speed.
        var rowsPerBlock: Int {
            let perTile = 36 * (channelsIn + channelsOut) * 4
            let budget = max(2 << 20, 36 * channelsIn * channelsOut * 4)
            return max(1, min(tilesH, budget / max(perTile * tilesW, 1)))
        }

        /// y = act(conv(x) + bias) for `batch` images; u from `transformFilters` (36 × channelsOut × channelsIn).
        func run(x: UnsafePointer<Float>, u: UnsafePointer<Float>, bias: UnsafePointer<Float>?, activation: Activation,
                 y: UnsafeMutablePointer<Float>, batch: Int) {
            let rows = rowsPerBlock, maxTiles = rows * tilesW, maxPanels = (maxTiles + 15) / 16
            let vCount = 36 * maxPanels * 16 * channelsIn, mCount = 36 * channelsOut * maxTiles + 8
            let v = UnsafeMutablePointer<Float>.allocate(capacity: vCount)
            let m = UnsafeMutablePointer<Float>.allocate(capacity: mCount)
            // Zeroed once: the lanes of a last, partial tile panel are multiplied but never stored.
            v.initialize(repeating: 0, count: vCount)
            m.initialize(repeating: 0, count: mCount)
            defer { v.deallocate(); m.deallocate() }
            let inPlane = inH * inW, outPlane = outH * outW
            let uRows = MicroKernel.paddedRows(channelsOut), panels = uRows / MicroKernel.mr
            for b in 0..<batch {
                let xb = x + b * channelsIn * inPlane, yb = y + b * channelsOut * outPlane
                for r0 in stride(from: 0, to: tilesH, by: rows) {
                    let r1 = min(tilesH, r0 + rows), nT = (r1 - r0) * tilesW, nTP = (nT + 15) / 16
                    Parallel.forEachChunk(channelsIn) { cs in
                        inputTransform(x: xb, channels: cs, tileRows: r0..<r1, v: v, nTP: nTP)
                    }
                    // Each thread: the 36 products for its output-channel panels, then their output transform.
                    Parallel.forEachChunk(panels) { ps in
                        for xi in 0..<36 {
                            MicroKernel.gemm(m: channelsOut, n: nT, k: channelsIn, a: u + xi * uRows * channelsIn,
                                             b: v + xi * nTP * 16 * channelsIn, c: m + xi * channelsOut * nT, ldc: nT, rowPanels: ps)
                        }
                        let channels = (ps.lowerBound * MicroKernel.mr)..<min(channelsOut, ps.upperBound * MicroKernel.mr)
                        outputTransform(m: m, nT: nT, channels: channels, tileRows: r0..<r1, bias: bias, activation: activation, y: yb)
                    }
                }
            }
        }

        /// V[ξ] = (Bᵀ d B)[ξ] for the tiles t of `tileRows` and the channels `channels`, as `MicroKernel` B panels:
        /// tile t of channel c at ((ξ · nTP + t / 16) · channelsIn + c) · 16 + t % 16.
        private func inputTransform(x: UnsafePointer<Float>, channels: Range<Int>, tileRows: Range<Int>,
                                    v: UnsafeMutablePointer<Float>, nTP: Int) {
            let pw = phaseWidth
            // phase[r][q][j] = input row r of the tile row, column 4j + q (zero outside the image).
            let phase = UnsafeMutablePointer<Float>.allocate(capacity: 24 * pw)
            let t = UnsafeMutablePointer<V8>.allocate(capacity: 36)
            // One input row at its padded columns (zero outside the image), 4·pw of them.
            let padded = UnsafeMutablePointer<Float>.allocate(capacity: 4 * pw)
            defer { phase.deallocate(); t.deallocate(); padded.deallocate() }
            let inPlane = inH * inW
            for c in channels {
                let xc = x + c * inPlane
                for tr in tileRows {
                    for r in 0..<6 {
                        let iy = tr * 4 + r - padTop
                        let dst = phase + r * 4 * pw
                        guard iy >= 0 && iy < inH else { dst.update(repeating: 0, count: 4 * pw); continue }
                        // Padded column 4j + q (image column 4j + q − padLeft) goes to phase q, index j: each 16 columns
                        // are one load, split by column mod 4 into four 4-lane stores.
                        padded.update(repeating: 0, count: 4 * pw)
                        (padded + padLeft).update(from: xc + iy * inW, count: inW)
                        var j = 0
                        while j < pw {
                            let v = UnsafeRawPointer(padded + 4 * j).loadUnaligned(as: SIMD16<Float>.self)
                            let even = v.evenHalf, odd = v.oddHalf
                            UnsafeMutableRawPointer(dst + j).storeBytes(of: even.evenHalf, as: SIMD4<Float>.self)
                            UnsafeMutableRawPointer(dst + pw + j).storeBytes(of: odd.evenHalf, as: SIMD4<Float>.self)
                            UnsafeMutableRawPointer(dst + 2 * pw + j).storeBytes(of: even.oddHalf, as: SIMD4<Float>.self)
                            UnsafeMutableRawPointer(dst + 3 * pw + j).storeBytes(of: odd.oddHalf, as: SIMD4<Float>.self)
                            j += 4
                        }
                    }
                    let tBase = (tr - tileRows.lowerBound) * tilesW
                    var j = 0
                    while j < tilesW {
                        @inline(__always) func d(_ r: Int, _ col: Int) -> V8 {
                            UnsafeRawPointer(phase + (r * 4 + (col & 3)) * pw + j + (col >> 2)).loadUnaligned(as: V8.self)
                        }
                        // Bᵀ d: rows
                        for col in 0..<6 {
                            let d0 = d(0, col), d1 = d(1, col), d2 = d(2, col), d3 = d(3, col), d4 = d(4, col), d5 = d(5, col)
                            t[col] = 4 * d0 - 5 * d2 + d4
                            t[6 + col] = -4 * (d1 + d2) + d3 + d4
                            t[12 + col] = 4 * (d1 - d2) - d3 + d4
                            t[18 + col] = 2 * (d3 - d1) - d2 + d4
                            t[24 + col] = 2 * (d1 - d3) - d2 + d4
                            t[30 + col] = 4 * d1 - 5 * d3 + d5
                        }
                        let lanes = min(8, tilesW - j), t0 = tBase + j
                        // Tiles t0 ..< t0 + lanes: the first `head` in t0's panel, the rest at the start of the next one.
                        // Eight lanes within one panel are one vector store; otherwise each run is copied lane by lane.
                        let head = min(lanes, 16 - t0 % 16), whole = lanes == 8 && head == 8
                        let firstOffset = (t0 / 16) * channelsIn * 16 + t0 % 16, nextOffset = (t0 / 16 + 1) * channelsIn * 16
                        @inline(__always) func store(_ xi: Int, _ value: V8) {
                            let panelBase = v + (xi * nTP * channelsIn + c) * 16
                            if whole {
                                UnsafeMutableRawPointer(panelBase + firstOffset).storeBytes(of: value, as: V8.self)
                            } else {
                                let first = panelBase + firstOffset, next = panelBase + nextOffset
                                for l in 0..<head { first[l] = value[l] }
                                for l in head..<lanes { next[l - head] = value[l] }
                            }
                        }
                        // (Bᵀ d) B: columns
                        for r in 0..<6 {
                            let d0 = t[r * 6], d1 = t[r * 6 + 1], d2 = t[r * 6 + 2], d3 = t[r * 6 + 3], d4 = t[r * 6 + 4], d5 = t[r * 6 + 5]
                            store(r * 6, 4 * d0 - 5 * d2 + d4)
                            store(r * 6 + 1, -4 * (d1 + d2) + d3 + d4)
                            store(r * 6 + 2, 4 * (d1 - d2) - d3 + d4)
                            store(r * 6 + 3, 2 * (d3 - d1) - d2 + d4)
                            store(r * 6 + 4, 2 * (d1 - d3) - d2 + d4)
                            store(r * 6 + 5, 4 * d1 - 5 * d3 + d5)
                        }
                        j += 8
                    }
                }
            }
        }

        /// y[c] = act(Aᵀ M A + bias[c]) for the output channels `channels` of the block's tiles.
        private func outputTransform(m: UnsafePointer<Float>, nT: Int, channels: Range<Int>, tileRows: Range<Int>,
                                     bias: UnsafePointer<Float>?, activation: Activation, y: UnsafeMutablePointer<Float>) {
            let pw = phaseWidth
            // phase[yr][yc][j] = output (4·tr + yr, 4j + yc).
            let phase = UnsafeMutablePointer<Float>.allocate(capacity: 16 * pw)
            let t = UnsafeMutablePointer<V8>.allocate(capacity: 24)
            defer { phase.deallocate(); t.deallocate() }
            let outPlane = outH * outW
            for c in channels {
                let yc0 = y + c * outPlane
                for tr in tileRows {
                    let tBase = (tr - tileRows.lowerBound) * tilesW
                    var j = 0
                    while j < tilesW {
                        let src = m + c * nT + tBase + j
                        @inline(__always) func mm(_ xi: Int) -> V8 {
                            UnsafeRawPointer(src + xi * channelsOut * nT).loadUnaligned(as: V8.self)
                        }
                        // Aᵀ M: 4 rows of 6
                        for col in 0..<6 {
                            let m0 = mm(col), m1 = mm(6 + col), m2 = mm(12 + col), m3 = mm(18 + col), m4 = mm(24 + col), m5 = mm(30 + col)
                            let s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4
                            t[col] = m0 + s12 + s34
                            t[6 + col] = d12 + 2 * d34
                            t[12 + col] = s12 + 4 * s34
                            t[18 + col] = d12 + 8 * d34 + m5
                        }
                        for r in 0..<4 {
                            let m0 = t[r * 6], m1 = t[r * 6 + 1], m2 = t[r * 6 + 2], m3 = t[r * 6 + 3], m4 = t[r * 6 + 4], m5 = t[r * 6 + 5]
                            let s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4
                            let p = phase + r * 4 * pw + j
                            UnsafeMutableRawPointer(p).storeBytes(of: m0 + s12 + s34, as: V8.self)
                            UnsafeMutableRawPointer(p + pw).storeBytes(of: d12 + 2 * d34, as: V8.self)
                            UnsafeMutableRawPointer(p + 2 * pw).storeBytes(of: s12 + 4 * s34, as: V8.self)
                            UnsafeMutableRawPointer(p + 3 * pw).storeBytes(of: d12 + 8 * d34 + m5, as: V8.self)
                        }
                        j += 8
                    }
                    for r in 0..<4 {
                        let oy = tr * 4 + r
                        guard oy < outH else { break }
                        let row = yc0 + oy * outW
                        let ph = phase + r * 4 * pw
                        // Output column 4j + q is phase q, index j: four 4-lane loads interleaved into 16 columns.
                        var ox = 0
                        while ox + 16 <= outW {
                            let j = ox >> 2
                            @inline(__always) func load(_ q: Int) -> SIMD4<Float> { UnsafeRawPointer(ph + q * pw + j).loadUnaligned(as: SIMD4<Float>.self) }
                            let a = load(0), b = load(1), c = load(2), d = load(3)
                            let lo = SIMD8<Float>(a[0], b[0], c[0], d[0], a[1], b[1], c[1], d[1])
                            let hi = SIMD8<Float>(a[2], b[2], c[2], d[2], a[3], b[3], c[3], d[3])
                            UnsafeMutableRawPointer(row + ox).storeBytes(of: SIMD16<Float>(lowHalf: lo, highHalf: hi), as: SIMD16<Float>.self)
                            ox += 16
                        }
                        while ox < outW { row[ox] = ph[(ox & 3) * pw + (ox >> 2)]; ox += 1 }
                        if activation != .identity || bias != nil { activation.apply(row, count: outW, bias: bias?[c] ?? 0) }
                    }
                }
            }
        }
    }

    /// The plan of a convolution's forward pass and of its input gradient.
    static func forwardPlan(_ c: ConvShape) -> Plan {
        Plan(channelsIn: c.cin, channelsOut: c.cout, inH: c.g.inH, inW: c.g.inW, outH: c.g.outH, outW: c.g.outW,
             padTop: c.g.padTop, padLeft: c.g.padLeft)
    }

    static func inputGradientPlan(_ c: ConvShape) -> Plan {
        Plan(channelsIn: c.cout, channelsOut: c.cin, inH: c.g.outH, inW: c.g.outW, outH: c.g.inH, outW: c.g.inW,
             padTop: 2 - c.g.padTop, padLeft: 2 - c.g.padLeft)
    }
}
