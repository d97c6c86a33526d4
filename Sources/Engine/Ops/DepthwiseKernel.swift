/// Depthwise (one filter per channel) convolution kernels on single NCHW planes.
///
/// SIMD8 + FMA over output columns: the interior of each row runs vectorized with every tap in bounds,
/// the few border columns run scalar with bounds checks, so no padded copy of the input is made.
/// Stride 2 reads 16 lanes and keeps the even half.
enum DepthwiseKernel {
    @inline(__always)
    static func load8(_ p: UnsafePointer<Float>, stride: Int) -> SIMD8<Float> {
        stride == 1 ? UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
                    : UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self).evenHalf
    }

    /// Output columns whose taps are all inside the row and whose vector loads stay inside the row.
    @inline(__always)
    static func vectorColumns(_ g: WindowGeometry) -> Range<Int> {
        guard g.stride <= 2 else { return 0..<0 }
        let lo = g.validColumns(kx: 0).lowerBound
        var hi = g.validColumns(kx: g.kW - 1).upperBound
        if g.stride == 2 {
            // A chunk starting at ox reads up to ox*2 + 15 + (kW-1) - padLeft; keep that inside the row.
            let lastStart = (g.inW - 1 - 15 - (g.kW - 1) + g.padLeft)
            hi = lastStart < 0 ? lo : min(hi, lastStart / 2 + 8)
        }
        return lo..<max(lo, hi)
    }

    /// y = bias + sum_{ky,kx} w[ky,kx] * x[oy*s+ky-padTop, ox*s+kx-padLeft]  (zero outside the image).
    static func forwardPlane(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>,
                             bias: Float, _ g: WindowGeometry) {
        let s = g.stride, vcols = vectorColumns(g)
        for oy in 0..<g.outH {
            let kyLo = max(0, g.padTop - oy * s), kyHi = min(g.kH, g.inH + g.padTop - oy * s)
            let yRow = y + oy * g.outW
            var ox = 0
            // Scalar border on the left, vector interior, scalar rest.
            func scalar(_ ox: Int) {
                var acc = bias
                for ky in kyLo..<kyHi {
                    let xRow = x + (oy * s + ky - g.padTop) * g.inW
                    for kx in 0..<g.kW {
                        let ix = ox * s + kx - g.padLeft
                        if ix >= 0 && ix < g.inW { acc += w[ky * g.kW + kx] * xRow[ix] }
                    }
                }
                yRow[ox] = acc
            }
            while ox < vcols.lowerBound && ox < g.outW { scalar(ox); ox += 1 }
            while ox + 8 <= vcols.upperBound {
                var acc = SIMD8<Float>(repeating: bias)
                for ky in kyLo..<kyHi {
                    let xRow = x + (oy * s + ky - g.padTop) * g.inW + ox * s - g.padLeft
                    let wRow = w + ky * g.kW
                    for kx in 0..<g.kW {
                        acc.addProduct(SIMD8(repeating: wRow[kx]), load8(xRow + kx, stride: s))
                    }
                }
                UnsafeMutableRawPointer(yRow + ox).storeBytes(of: acc, as: SIMD8<Float>.self)
                ox += 8
            }
            while ox < g.outW { scalar(ox); ox += 1 }
        }
    }

    /// dx += d y / d x for one plane (dx must be zeroed by the caller).
    static func backwardInputPlane(dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                   w: UnsafePointer<Float>, _ g: WindowGeometry) {
        let s = g.stride
        for oy in 0..<g.outH {
            let kyLo = max(0, g.padTop - oy * s), kyHi = min(g.kH, g.inH + g.padTop - oy * s)
            let dyRow = dy + oy * g.outW
            for ky in kyLo..<kyHi {
                let dxRow = dx + (oy * s + ky - g.padTop) * g.inW
                for kx in 0..<g.kW {
                    let wv = w[ky * g.kW + kx]
                    let cols = g.validColumns(kx: kx)
                    var ox = cols.lowerBound
                    let base = kx - g.padLeft
                    if s == 1 {
                        while ox + 8 <= cols.upperBound {
                            let p = UnsafeMutableRawPointer(dxRow + ox + base)
                            var v = p.loadUnaligned(as: SIMD8<Float>.self)
                            v.addProduct(SIMD8(repeating: wv), UnsafeRawPointer(dyRow + ox).loadUnaligned(as: SIMD8<Float>.self))
                            p.storeBytes(of: v, as: SIMD8<Float>.self)
                            ox += 8
                        }
                    } else if s == 2 {
                        // 16-lane read-modify-write touching only even lanes; needs p[15] inside the row.
                        while ox + 8 <= cols.upperBound && ox * 2 + base + 15 < g.inW {
                            let p = UnsafeMutableRawPointer(dxRow + ox * 2 + base)
                            var v = p.loadUnaligned(as: SIMD16<Float>.self)
                            var even = v.evenHalf
                            even.addProduct(SIMD8(repeating: wv), UnsafeRawPointer(dyRow + ox).loadUnaligned(as: SIMD8<Float>.self))
                            v.evenHalf = even
                            p.storeBytes(of: v, as: SIMD16<Float>.self)
                            ox += 8
                        }
                    }
                    while ox < cols.upperBound { dxRow[ox * s + base] += wv * dyRow[ox]; ox += 1 }
                }
            }
        }
    }

    /// dw[ky,kx] += sum over the plane of dy[oy,ox] * x[oy*s+ky-padTop, ox*s+kx-padLeft].
    static func backwardWeightPlane(dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                                    dw: UnsafeMutablePointer<Float>, _ g: WindowGeometry) {
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
