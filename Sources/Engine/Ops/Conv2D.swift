/// 2-D convolution, NCHW, with optional bias and a fused activation epilogue.
///
/// x: [N, Cin, H, W], weight: [Cout, Cin/groups, kH, kW], bias: [Cout].
/// The paths share one definition: 3×3 stride-1 convs with enough tiles run Winograd, 1×1 stride-1 convs one
/// micro-kernel product per image, depthwise convs (groups == Cin == Cout) `DepthwiseKernel`, other dense convs
/// im2col into the micro-kernel on AVX-512, everything else (and `.direct`) im2col + OpenBLAS sgemm per group.
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
    // Other dense convolutions (stems, strided, small planes) on AVX-512: im2col into the micro-kernel's tiles.
    let microColumns = algorithm == .fastest && !winograd && conv.takesMicroColumns
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
                } else if microColumns {
                    let a = weight.packedForm("microkernel-a") { w in
                        packedPanels(w, rows: conv.cout, columns: conv.colRows, transposed: false)
                    }
                    a.withUnsafeBufferPointer { ap in
                        conv.microColumnsForward(x: xp.baseAddress!, a: ap.baseAddress!, bias: bp, activation: activation, y: yp.baseAddress!)
                    }
                } else {
                    conv.forward(x: xp.baseAddress!, w: wp.baseAddress!, bias: bp, activation: activation, y: yp.baseAddress!)
                }
            }
        }
    } }
    let out = Tensor(shape: [conv.n, conv.cout, conv.g.outH, conv.g.outW], data: y)
    let opName = conv.isDepthwise ? "depthwise-conv" : conv.isPointwise ? "1x1-conv" : winograd ? "winograd-conv" : microColumns ? "im2col-conv" : "conv"
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
                var dx = conv.isPointwise || conv.isDepthwise || winograd || microColumns ? uninitializedFloats(x.count) : [Float](repeating: 0, count: x.count)
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
                } else if microColumns {
                    // d col = Wᵀ · dy on the micro-kernel (Wᵀ packed once), then col2im.
                    let a = weight.packedForm("microkernel-a-transposed") { w in
                        packedPanels(w, rows: conv.cout, columns: conv.colRows, transposed: true)
                    }
                    a.withUnsafeBufferPointer { ap in dx.withUnsafeMutableBufferPointer { dxp in
                        conv.microColumnsInputGradient(dy: UnsafePointer(dy), a: ap.baseAddress!, dx: dxp.baseAddress!)
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

    /// Whether `microColumnsForward` runs this conv: AVX-512, one group, not depthwise or a plain 1×1.
    var takesMicroColumns: Bool { MicroKernel.avx512 && groups == 1 && !isDepthwise && !isPointwise }

    /// Column blocks of the micro-kernel's im2col products (k = colRows), as `MicroKernel.columnBlocks`. With fewer
    /// blocks (× images) than twice the threads, or weights past L2 (1 MB) split over several blocks, the tasks split
    /// the rows instead, each over all columns (one block): then each weight panel is read once, not once per block
    /// — ResNet-50's stride-2 3×3 conv at 7×7 has 9.4 MB of weights for 49 columns, at 14×14 2.4 MB for 196.
    private var microColumnBlocks: (count: Int, width: Int, rowChunks: Int) {
        let (blocks, width) = MicroKernel.columnBlocks(n: outPlane, k: colRows)
        let panels = (cout + MicroKernel.mr - 1) / MicroKernel.mr
        if blocks * n >= 2 * Parallel.threads && (blocks == 1 || cout * colRows <= 256 * 1024) { return (blocks, width, 1) }
        return (1, outPlane, min(panels, (2 * Parallel.threads + n - 1) / n))
    }

    /// y = act(W · im2col(x) + bias) with the AVX-512 micro-kernel, W packed once (cout × cin·kH·kW). Each task
    /// writes the im2col columns of its block into a buffer of its own (in cache) and multiplies every row panel over
    /// them, the bias and activation applied in the tile's registers. When rows are split instead (small planes at
    /// batch 1), the whole im2col matrix is written first, its channels over the threads.
    func microColumnsForward(x: UnsafePointer<Float>, a: UnsafePointer<Float>, bias: UnsafePointer<Float>?, activation: Activation,
                             y: UnsafeMutablePointer<Float>) {
        let (blocks, width, rowChunks) = microColumnBlocks
        let k = colRows, panels = (cout + MicroKernel.mr - 1) / MicroKernel.mr, act = activation.kernelCode
        let shared: UnsafeMutablePointer<Float>? = rowChunks > 1 ? .allocate(capacity: n * k * outPlane) : nil
        defer { shared?.deallocate() }
        if let shared {
            Parallel.forEachChunk(n * cinG) { tasks in
                for t in tasks {
                    let b = t / cinG, c = t % cinG
                    im2col(x + b * cin * inPlane, shared + b * k * outPlane, columns: 0..<outPlane, channels: c..<(c + 1))
                }
            }
        }
        Parallel.forEachChunk(blocks * n * rowChunks) { tasks in
            let buffer: UnsafeMutablePointer<Float>? = shared == nil ? .allocate(capacity: k * width) : nil
            defer { buffer?.deallocate() }
            for task in tasks {
                let unit = task / rowChunks, chunk = task % rowChunks
                let image = unit / blocks, blk = unit % blocks
                let cols = MicroKernel.columnBlock(blk, of: blocks, n: outPlane)
                guard !cols.isEmpty else { continue }
                let ps = (panels * chunk / rowChunks)..<(panels * (chunk + 1) / rowChunks)
                let yb = y + image * cout * outPlane
                if let shared {
                    MicroKernel.avx512Block(m: cout, k: k, a: a, b: shared + image * k * outPlane, ldb: outPlane, c: yb, ldc: outPlane,
                                            panels: ps, columns: cols, bias: bias, act: act)
                } else {
                    im2col(x + image * cin * inPlane, buffer!, columns: cols, ld: cols.count, origin: cols.lowerBound)
                    MicroKernel.avx512Block(m: cout, k: k, a: a, b: buffer!, ldb: cols.count, c: yb + cols.lowerBound, ldc: outPlane,
                                            panels: ps, columns: 0..<cols.count, bias: bias, act: act)
                }
            }
        }
    }

    /// dx = col2im(Wᵀ · dy) per image with the micro-kernel (Wᵀ packed once: colRows × cout), col2im over the
    /// threads by input channel (each channel's sums in the same order on any thread count).
    func microColumnsInputGradient(dy: UnsafePointer<Float>, a: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        let col = UnsafeMutablePointer<Float>.allocate(capacity: colRows * outPlane)
        defer { col.deallocate() }
        for b in 0..<n {
            MicroKernel.gemm(m: colRows, n: outPlane, k: cout, a: a, b: dy + b * cout * outPlane, ldb: outPlane, c: col, ldc: outPlane)
            let dxb = dx + b * cin * inPlane
            Parallel.forEachChunk(cin) { cs in
                (dxb + cs.lowerBound * inPlane).update(repeating: 0, count: cs.count * inPlane)
                col2im(UnsafePointer(col), dxb, channels: cs)
            }
        }
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
    /// `origin`: the matrix's first column is output position `origin` (a buffer holding only `columns`);
    /// `channels`: only those input channels' rows.
    func im2col(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, columns: Range<Int>, ld: Int? = nil, origin: Int = 0,
                channels: Range<Int>? = nil) {
        guard !columns.isEmpty else { return }
        let firstRow = columns.lowerBound / g.outW, lastRow = (columns.upperBound - 1) / g.outW
        for c in channels ?? 0..<cinG { for ky in 0..<g.kH { for kx in 0..<g.kW {
            let row = col + ((c * g.kH + ky) * g.kW + kx) * (ld ?? outPlane)
            let valid = g.validColumns(kx: kx)
            for oy in firstRow...lastRow {
                let lo = max(columns.lowerBound - oy * g.outW, 0), hi = min(columns.upperBound - oy * g.outW, g.outW)
                let dst = row + oy * g.outW - origin
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
    func col2im(_ col: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, channels: Range<Int>? = nil) {
        for c in channels ?? 0..<cinG { for ky in 0..<g.kH { for kx in 0..<g.kW {
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
