/// 2-D convolution, NCHW, with optional bias and a fused activation epilogue.
///
/// x: [N, Cin, H, W], weight: [Cout, Cin/groups, kH, kW], bias: [Cout].
/// Three paths share one definition: 1×1 stride-1 convs are a single sgemm per image, depthwise convs
/// (groups == Cin == Cout) use `DepthwiseKernel`, everything else im2col + sgemm per group.
/// Number of conv2d forward calls so far (lets tests prove a truncated forward pass stops early).
nonisolated(unsafe) var convForwardCount = 0

public func conv2d(_ x: Tensor, _ weight: Tensor, bias: Tensor? = nil, stride: Int = 1, dilation: Int = 1,
                   padding: Padding = .valid, groups: Int = 1, activation: Activation = .identity,
                   algorithm: ConvAlgorithm = .fastest) -> Tensor {
    precondition(x.rank == 4 && weight.rank == 4, "conv2d wants NCHW input and OIHW weight, got \(x.shape), \(weight.shape)")
    convForwardCount += 1
    let conv = ConvShape(x: x.shape, w: weight.shape, stride: stride, dilation: dilation, padding: padding, groups: groups)
    if let b = bias { precondition(b.count == conv.cout, "bias has \(b.count) values for \(conv.cout) channels") }
    let winograd = algorithm == .fastest && Winograd.applies(conv)
    // 1×1 convolutions: the engine's micro-kernel on weights packed once, x read in place.
    let micro = algorithm == .fastest && conv.isPointwise && conv.groups == 1
    var y = uninitializedFloats(conv.n * conv.cout * conv.g.outH * conv.g.outW)  // every path writes all of y
    x.data.withUnsafeBufferPointer { xp in weight.data.withUnsafeBufferPointer { wp in
        y.withUnsafeMutableBufferPointer { yp in
            withOptionalBuffer(bias) { bp in
                if winograd {
                    let u = weight.packedForm("winograd-4x4") { w in
                        w.withUnsafeBufferPointer { Winograd.transformFilters($0.baseAddress!, outputs: conv.cout, inputs: conv.cin, flip: false) }
                    }
                    u.withUnsafeBufferPointer { up in
                        Winograd.forwardPlan(conv).run(x: xp.baseAddress!, u: up.baseAddress!, bias: bp, activation: activation,
                                                       y: yp.baseAddress!, batch: conv.n)
                    }
                } else if micro {
                    let a = weight.packedForm("microkernel-a") { w in
                        packedPanels(w, rows: conv.cout, columns: conv.cin, transposed: false)
                    }
                    a.withUnsafeBufferPointer { ap in
                        conv.pointwiseForward(x: xp.baseAddress!, a: ap.baseAddress!, bias: bp, activation: activation, y: yp.baseAddress!)
                    }
                } else {
                    conv.forward(x: xp.baseAddress!, w: wp.baseAddress!, bias: bp, activation: activation, y: yp.baseAddress!)
                }
            }
        }
    } }
    let out = Tensor(shape: [conv.n, conv.cout, conv.g.outH, conv.g.outW], data: y)
    let opName = conv.isDepthwise ? "depthwise-conv" : conv.isPointwise ? "1x1-conv" : winograd ? "winograd-conv" : "conv"
    out.record(op: opName, parents: [x, weight] + (bias.map { [$0] } ?? [])) { [unowned out] g in
        // dy = g ⊙ act'(y), masked in place (g is ours): inside the depthwise kernels plane by plane, or per tile
        // inside the 1×1 gemm for large planes, where the data is in cache when the kernel reads it; otherwise
        // as a separate parallel pass.
        let fuseMask = activation != .identity && x.tracksGrad && (conv.isDepthwise || (conv.isPointwise && !micro && conv.outPlane >= 1024))
        // Mutable access makes the buffer unique first (copy-on-write) if another tensor shares it.
        g.withUnsafeMutableBufferPointer { d in
            let dy = d.baseAddress!
            if activation != .identity && !fuseMask {
                out.data.withUnsafeBufferPointer { y in
                    activation.maskGradientParallel(dy, output: y.baseAddress!, planes: conv.n * conv.cout, planeSize: conv.outPlane)
                }
            }
            if x.tracksGrad {
                // col2im accumulates, so only the im2col path needs a zeroed buffer.
                var dx = conv.isPointwise || conv.isDepthwise || winograd ? uninitializedFloats(x.count) : [Float](repeating: 0, count: x.count)
                if winograd {
                    // The input gradient of a 3×3 stride-1 conv is one too: dy convolved with the flipped, transposed filters.
                    let u = weight.packedForm("winograd-4x4-flipped") { w in
                        w.withUnsafeBufferPointer { Winograd.transformFilters($0.baseAddress!, outputs: conv.cout, inputs: conv.cin, flip: true) }
                    }
                    u.withUnsafeBufferPointer { up in dx.withUnsafeMutableBufferPointer { dxp in
                        Winograd.inputGradientPlan(conv).run(x: UnsafePointer(dy), u: up.baseAddress!, bias: nil, activation: .identity,
                                                             y: dxp.baseAddress!, batch: conv.n)
                    } }
                } else if micro {
                    // dx = Wᵀ · dy: the transposed weights, packed once too.
                    let a = weight.packedForm("microkernel-a-transposed") { w in
                        packedPanels(w, rows: conv.cout, columns: conv.cin, transposed: true)
                    }
                    a.withUnsafeBufferPointer { ap in dx.withUnsafeMutableBufferPointer { dxp in
                        conv.pointwiseInputGradient(dy: UnsafePointer(dy), a: ap.baseAddress!, dx: dxp.baseAddress!)
                    } }
                } else {
                    weight.data.withUnsafeBufferPointer { wp in dx.withUnsafeMutableBufferPointer { dxp in out.data.withUnsafeBufferPointer { yp in
                        conv.backwardInput(dy: dy, w: wp.baseAddress!, dx: dxp.baseAddress!, mask: fuseMask ? (yp.baseAddress!, activation) : nil)
                    } } }
                }
                x.accumulate(dx)
            }
            // From here on dy is fully masked (the fused paths mask every tile / plane they read).
            if weight.tracksGrad {
                var dw = [Float](repeating: 0, count: weight.count)
                x.data.withUnsafeBufferPointer { xp in dw.withUnsafeMutableBufferPointer { dwp in
                    conv.backwardWeight(dy: dy, x: xp.baseAddress!, dw: dwp.baseAddress!)
                } }
                weight.accumulate(dw)
            }
            if let b = bias, b.tracksGrad {
                var db = [Float](repeating: 0, count: conv.cout)
                for n in 0..<conv.n { for c in 0..<conv.cout {
                    let base = (n * conv.cout + c) * conv.outPlane
                    var s: Float = 0
                    for i in 0..<conv.outPlane { s += dy[base + i] }
                    db[c] += s
                } }
                b.accumulate(db)
            }
        }
    }
    return out
}

/// A row-major matrix (rows × columns), or its transpose, packed in `MicroKernel` A panels.
func packedPanels(_ w: [Float], rows: Int, columns: Int, transposed: Bool) -> [Float] {
    let (m, k) = transposed ? (columns, rows) : (rows, columns)
    let source = transposed ? (0..<(m * k)).map { i in w[(i % k) * columns + i / k] } : w
    var out = [Float](repeating: 0, count: MicroKernel.paddedRows(m) * k)
    source.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { o in
        MicroKernel.packA(s.baseAddress!, m: m, k: k, lda: k, into: o.baseAddress!)
    } }
    return out
}

/// `body` with the tensor's values, or with nil when there is no tensor (an optional bias).
@inline(__always)
func withOptionalBuffer<R>(_ t: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let t else { return body(nil) }
    return t.data.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// How a convolution is computed. `fastest` picks per shape (Winograd F(4×4, 3×3) for 3×3 stride-1 convolutions,
/// the 1×1 gemm, the depthwise kernels, im2col + gemm otherwise); `direct` never uses Winograd (its reference).
public enum ConvAlgorithm: String, Sendable, CaseIterable {
    case fastest, direct
}

/// Shapes of one convolution and the three computations on raw buffers.
struct ConvShape {
    let n, cin, cout, groups: Int
    let g: WindowGeometry

    init(x: [Int], w: [Int], stride: Int, dilation: Int = 1, padding: Padding, groups: Int) {
        n = x[0]; cin = x[1]; cout = w[0]; self.groups = groups
        precondition(groups >= 1 && cin % groups == 0 && cout % groups == 0 && w[1] == cin / groups,
                     "conv2d: input \(x) and weight \(w) do not fit groups=\(groups)")
        g = WindowGeometry(inH: x[2], inW: x[3], kH: w[2], kW: w[3], stride: stride, dilation: dilation, padding: padding)
    }

    var cinG: Int { cin / groups }
    var coutG: Int { cout / groups }
    var inPlane: Int { g.inH * g.inW }
    var outPlane: Int { g.outH * g.outW }
    var isPointwise: Bool { g.kH == 1 && g.kW == 1 && g.stride == 1 && g.padTop == 0 && g.padLeft == 0 && g.outH == g.inH && g.outW == g.inW }
    /// Depthwise kernels are written for dense windows; a dilated depthwise conv takes the grouped im2col path.
    var isDepthwise: Bool { groups == cin && groups == cout && g.dilation == 1 }
    /// Rows of the im2col matrix of one group.
    var colRows: Int { cinG * g.kH * g.kW }

    /// y = act(conv(x, w) + bias), the bias and activation applied to each tile right after it is computed.
    func forward(x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?, activation: Activation,
                 y: UnsafeMutablePointer<Float>) {
        if isDepthwise {
            DepthwiseKernel.forward(x: x, w: w, bias: bias, activation: activation, y: y, batch: n, channels: cout, g)
            return
        }
        withColumns { col in
            for b in 0..<n {
                for grp in 0..<groups {
                    let xg = x + (b * cin + grp * cinG) * inPlane
                    // Large planes: each column tile's task writes its own columns of the im2col matrix right before
                    // multiplying them (in parallel, in cache); small ones are filled at once (rows are split then).
                    let tileColumns = !isPointwise && outPlane >= 2048
                    if !isPointwise && !tileColumns { im2col(xg, col, columns: 0..<outPlane) }
                    let yg = y + (b * cout + grp * coutG) * outPlane
                    let biasG = bias.map { $0 + grp * coutG }
                    tiledGemm(m: coutG, n: outPlane, k: colRows, a: w + grp * coutG * colRows, lda: colRows,
                              b: isPointwise ? xg : UnsafePointer(col), ldb: outPlane, c: yg, ldc: outPlane,
                              prologue: tileColumns ? { cols in im2col(xg, col, columns: cols) } : nil, epilogue: { rows, cols in
                        if activation == .identity && biasG == nil { return }
                        for o in rows { activation.apply(yg + o * outPlane + cols.lowerBound, count: cols.count, bias: biasG?[o] ?? 0) }
                    })
                }
            }
        }
    }

    /// y = act(W · x + bias) per image for a 1×1 stride-1 conv, W packed in micro-kernel panels; the bias and
    /// activation are fused into the product (see `MicroKernel.gemm`).
    func pointwiseForward(x: UnsafePointer<Float>, a: UnsafePointer<Float>, bias: UnsafePointer<Float>?, activation: Activation,
                          y: UnsafeMutablePointer<Float>) {
        MicroKernel.gemm(m: cout, n: outPlane, k: cin, a: a, b: x, ldb: outPlane, c: y, ldc: outPlane,
                         batch: n, strideB: cin * inPlane, strideC: cout * outPlane, bias: bias, activation: activation)
    }

    /// dx = Wᵀ · dy per image for a 1×1 stride-1 conv, Wᵀ packed in micro-kernel panels (the batch in one pool of tasks).
    func pointwiseInputGradient(dy: UnsafePointer<Float>, a: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        MicroKernel.gemm(m: cin, n: outPlane, k: cout, a: a, b: dy, ldb: outPlane, c: dx, ldc: inPlane,
                         batch: n, strideB: cout * outPlane, strideC: cin * inPlane)
    }

    /// dx = convᵀ(dy). With `mask`, dy is first multiplied in place by act'(y), tile by tile or plane by plane.
    func backwardInput(dy: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                       mask: (y: UnsafePointer<Float>, activation: Activation)? = nil) {
        precondition(mask == nil || (isPointwise && groups == 1) || isDepthwise, "fused gradient mask is for 1×1 and depthwise convs")
        if isDepthwise {
            DepthwiseKernel.backwardInput(dy: dy, w: w, dx: dx, batch: n, channels: cout, g, mask: mask)
            return
        }
        withColumns { col in
            for b in 0..<n {
                for grp in 0..<groups {
                    let dxg = dx + (b * cin + grp * cinG) * inPlane
                    // d col = W_gᵀ · dY_g, written straight into dx for 1×1 convs.
                    let dyg = dy + (b * cout + grp * coutG) * outPlane
                    let prologue = mask.map { m in { (cols: Range<Int>) in
                        let yg = m.y + (b * cout + grp * coutG) * outPlane
                        for o in 0..<coutG {
                            m.activation.maskGradient(dyg + o * outPlane + cols.lowerBound, output: yg + o * outPlane + cols.lowerBound, count: cols.count)
                        }
                    } }
                    tiledGemm(transA: true, m: colRows, n: outPlane, k: coutG, a: w + grp * coutG * colRows, lda: colRows,
                              b: dyg, ldb: outPlane, c: isPointwise ? dxg : col, ldc: outPlane, prologue: prologue)
                    if !isPointwise { col2im(col, dxg) }
                }
            }
        }
    }

    /// dW += Σ_images dY · colᵀ per group, as few wide products as memory allows: the im2col matrices (for 1×1
    /// convs the inputs themselves) of a chunk of images laid side by side, so one product runs over k = images × plane.
    /// Per image, small planes (4×4, 7×7 in fine-tuning) made k tiny and every call re-read and re-wrote all of dW.
    /// The products' rows are split over our threads (deterministic for a thread count); gathers run in parallel.
    func backwardWeight(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>) {
        if isDepthwise {
            DepthwiseKernel.backwardWeight(dy: dy, x: x, dw: dw, batch: n, channels: cout, g)
            return
        }
        _ = blasIsSingleThreaded
        // Images per product: both gathered operands within ~16 MB (at least one image).
        let perImage = (colRows + coutG) * outPlane
        let chunk = max(1, min(n, (4 << 20) / max(perImage, 1)))
        let direct = chunk == 1 && isPointwise  // one image of a 1×1 conv: both operands read in place
        let width = chunk * outPlane
        let bBuf: UnsafeMutablePointer<Float>? = direct ? nil : .allocate(capacity: colRows * width)
        let aBuf: UnsafeMutablePointer<Float>? = chunk == 1 ? nil : .allocate(capacity: coutG * width)
        defer { bBuf?.deallocate(); aBuf?.deallocate() }
        let rowTasks = coutG >= 32 ? Parallel.threads : 1
        for grp in 0..<groups {
            for first in stride(from: 0, to: n, by: chunk) {
                let images = min(chunk, n - first), k = images * outPlane
                let dyg = { (b: Int) in dy + (b * cout + grp * coutG) * outPlane }
                let xg = { (b: Int) in x + (b * cin + grp * cinG) * inPlane }
                // B: [colRows, k], image i's columns at i·plane; A: dY rows [coutG, k] likewise.
                if let bBuf {
                    Parallel.forEachChunk(images) { range in
                        for i in range {
                            if isPointwise {
                                for c in 0..<cinG { (bBuf + c * k + i * outPlane).update(from: xg(first + i) + c * inPlane, count: outPlane) }
                            } else {
                                im2col(xg(first + i), bBuf + i * outPlane, columns: 0..<outPlane, ld: k)
                            }
                            if let aBuf {
                                for o in 0..<coutG { (aBuf + o * k + i * outPlane).update(from: dyg(first + i) + o * outPlane, count: outPlane) }
                            }
                        }
                    }
                }
                let a: UnsafePointer<Float> = aBuf.map { UnsafePointer($0) } ?? dyg(first)
                let b: UnsafePointer<Float> = bBuf.map { UnsafePointer($0) } ?? xg(first)
                Parallel.forEachChunk(rowTasks) { tasks in
                    for t in tasks {
                        let rows = (coutG * t / rowTasks)..<(coutG * (t + 1) / rowTasks)
                        guard !rows.isEmpty else { continue }
                        sgemm(transB: true, m: rows.count, n: colRows, k: k, a: a + rows.lowerBound * k, lda: k, b: b, ldb: k,
                              beta: 1, c: dw + (grp * coutG + rows.lowerBound) * colRows, ldc: colRows)
                    }
                }
            }
        }
    }

    /// Scratch for one group's im2col matrix (none needed for 1×1 convs).
    private func withColumns(_ body: (UnsafeMutablePointer<Float>) -> Void) {
        let size = isPointwise ? 1 : colRows * outPlane
        let col = UnsafeMutablePointer<Float>.allocate(capacity: size)
        defer { col.deallocate() }
        body(col)
    }

    /// col[(c*kH + ky)*kW + kx, p] = x[c, oy*s + ky - padTop, ox*s + kx - padLeft] or 0, for the output positions
    /// p = oy*outW + ox in `columns`; the matrix's rows are `ld` apart (the plane, unless images sit side by side).
    func im2col(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, columns: Range<Int>, ld: Int? = nil) {
        guard !columns.isEmpty else { return }
        let firstRow = columns.lowerBound / g.outW, lastRow = (columns.upperBound - 1) / g.outW
        for c in 0..<cinG { for ky in 0..<g.kH { for kx in 0..<g.kW {
            let row = col + ((c * g.kH + ky) * g.kW + kx) * (ld ?? outPlane)
            let valid = g.validColumns(kx: kx)
            for oy in firstRow...lastRow {
                let lo = max(columns.lowerBound - oy * g.outW, 0), hi = min(columns.upperBound - oy * g.outW, g.outW)
                let dst = row + oy * g.outW
                let iy = oy * g.stride + ky * g.dilation - g.padTop
                guard iy >= 0 && iy < g.inH else { (dst + lo).update(repeating: 0, count: hi - lo); continue }
                let src = x + c * inPlane + iy * g.inW + kx * g.dilation - g.padLeft
                let a = min(max(valid.lowerBound, lo), hi), b = max(min(valid.upperBound, hi), a)
                for ox in lo..<a { dst[ox] = 0 }
                if g.stride == 1 { (dst + a).update(from: src + a, count: b - a) } else { for ox in a..<b { dst[ox] = src[ox * g.stride] } }
                for ox in b..<hi { dst[ox] = 0 }
            }
        } } }
    }

    /// The adjoint of im2col: scatter-add columns back into the image.
    func col2im(_ col: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>) {
        for c in 0..<cinG { for ky in 0..<g.kH { for kx in 0..<g.kW {
            let row = col + ((c * g.kH + ky) * g.kW + kx) * outPlane
            let cols = g.validColumns(kx: kx)
            for oy in g.validRows(ky: ky) {
                let dst = dx + c * inPlane + (oy * g.stride + ky * g.dilation - g.padTop) * g.inW + kx * g.dilation - g.padLeft
                let src = row + oy * g.outW
                for ox in cols { dst[ox * g.stride] += src[ox] }
            }
        } } }
    }
}
