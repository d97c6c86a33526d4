import CKernels
import Foundation

/// MobileNetV2 / EfficientNet's inverted bottleneck — expand (1×1) → depthwise → project (1×1) — as one forward
/// pass over bands of output rows, so the expanded tensor (6× the block's input) never leaves the core's L2.
///
/// Unfused, the expand conv writes that tensor to memory and the depthwise conv reads it back (4.8 MB at Lite0's
/// blocks.1, more than a core's L2); here each thread expands the input rows its next band of depthwise outputs
/// needs into a small buffer, runs the depthwise kernel on them, and projects the band straight into y. Rows shared
/// by two bands of one thread are kept (moved to the front of the buffer), not recomputed; only the first band of
/// each thread's part recomputes its halo. Small planes (14×14, 7×7) run by channels instead (`smallPlaneLimit`).
///
/// For frozen weights only. When the input needs a gradient (renders, attacks), the forward keeps a byte per
/// expanded value (where each activation passes a gradient) instead of the two expanded tensors, and its backward
/// runs the transposed block over the same bands (`backward`). AVX-512 only, on the same kernels as the unfused
/// convs (`vz_tile_6x32_avx512`, `vz_depthwise_plane_avx512`, the stride-2 gather) in the same summation order, with
/// bands starting at multiples of the depthwise kernel's four rows — so the output and the input gradient equal the
/// three separate convs' bit for bit (tested).
public enum InvertedBottleneck {
    /// Fused passes run so far (with conv2d's `convForwardCount`, lets tests see what a forward ran).
    nonisolated(unsafe) static var forwardCount = 0

    /// One conv of the block: its (BN-folded) weight, bias and fused activation.
    public struct Stage {
        public var weight: Tensor, bias: Tensor?, activation: Activation
        public init(weight: Tensor, bias: Tensor?, activation: Activation) {
            self.weight = weight; self.bias = bias; self.activation = activation
        }
    }

    /// Expanded-buffer bytes a band aims for (per thread; with the band's depthwise output, well inside a 1 MB L2).
    public static let bandBudget = 384 * 1024
    /// On one thread at batch 1, expanded tensors below this many bytes stay unfused: there every band re-reads the
    /// weights from L2, and on small planes that cost more than the traffic saved (10% slower at 14×14 × 672
    /// channels, the same at 7×7; faster from 56×56 × 144 up). With two threads or a batch, fusing was faster at every
    /// Lite0 block (see the README's benchmark section).
    public static let minimumExpandedBytes = 1 << 20
    /// Input planes of at most this many values (Lite0's 14×14 and 7×7 blocks) run by channels instead of by bands
    /// of rows: each task expands, depthwise-convolves and keeps whole planes of its channels (at most 1152 × 196
    /// values), and after a join each projects its share of the outputs. Where an image is split over threads, only
    /// planes of a quarter of that (7×7) do. Measured per block (2026-12-03, medians of 150, ms, bands → channels):
    /// one thread, 14²×672 k5 0.520 → 0.463, 14²×480 0.247 → 0.228, 7²×1152 k5 0.391 → 0.387 (backward 0.562 →
    /// 0.484, 0.270 → 0.234, 0.458 → 0.424); two threads on one image, 7²×1152 k5 0.373 → 0.341 (backward 0.421 →
    /// 0.358) but 14²×672 0.329 → 0.395 and 14²×480 0.194 → 0.266, where the row split uses both cores better.
    public static let smallPlaneLimit = 196

    /// Whether the fused pass covers this block on this CPU (and is worth it at this size and thread count), with or
    /// without a gradient to the input.
    public static func applies(input x: [Int], expand: Tensor, depthwise: Tensor, stride: Int, padding: Padding,
                               project: Tensor, minimumBytes: Int = minimumExpandedBytes) -> Bool {
        guard MicroKernel.avx512, x.count == 4, expand.rank == 4, depthwise.rank == 4, project.rank == 4 else { return false }
        let cin = x[1], cexp = expand.shape[0], k = depthwise.shape[2]
        guard expand.shape == [cexp, cin, 1, 1], depthwise.shape == [cexp, 1, k, k], (k == 3 || k == 5),
              stride == 1 || stride == 2, project.shape.count == 4, project.shape[1] == cexp,
              project.shape[2] == 1, project.shape[3] == 1,
              WindowGeometry.outputSize(inH: x[2], inW: x[3], kH: k, kW: k, stride: stride, padding: padding) != nil
        else { return false }
        let g = WindowGeometry(inH: x[2], inW: x[3], kH: k, kW: k, stride: stride, padding: padding)
        guard g.padTop < k && g.padLeft < k else { return false }  // bands' pads are within a window
        return x[0] > 1 || Parallel.threads > 1 || cexp * x[2] * x[3] * 4 >= minimumBytes
    }

    /// y = project(depthwise(expand(x))), each stage with its bias and activation. Call only when `applies` (at any
    /// size). `bandBytes`: the expanded buffer's target size (tests make it small to run many bands).
    ///
    /// When x needs a gradient (a render, an attack: the weights frozen), the pass also writes a byte per expanded
    /// value saying where each activation passed a gradient (`vz_activation_codes`: a quarter of the two expanded
    /// tensors the unfused convs keep), and records a backward pass over bands too (`backward`).
    public static func forward(_ x: Tensor, expand: Stage, depthwise: Stage, stride: Int, padding: Padding,
                               project: Stage, bandBytes: Int = bandBudget, smallPlane: Int = smallPlaneLimit) -> Tensor {
        let gradient = Tensor.needsGrad([x])
        precondition(applies(input: x.shape, expand: expand.weight, depthwise: depthwise.weight, stride: stride,
                             padding: padding, project: project.weight, minimumBytes: 0),
                     "fused bottleneck called for shapes it does not cover")
        precondition(![expand, depthwise, project].contains { $0.weight.tracksGrad || $0.bias?.tracksGrad == true },
                     "the fused bottleneck is for frozen weights")
        forwardCount += 1
        let b = Shapes(x.shape, expand: expand, depthwise: depthwise, stride: stride, padding: padding, project: project)
        let (n, cin, H, W, cexp, cout, k, s, g) = (b.n, b.cin, b.H, b.W, b.cexp, b.cout, b.k, b.s, b.g)
        let oH = g.outH, oW = g.outW
        let bounds = b.parts(rows: oH)
        // Band height: a multiple of 4 rows whose expanded input rows fit the budget.
        let fit = max(1, (bandBytes / (cexp * W * 4) - k) / s + 1)
        let band = b.bandRows(fit: fit, bounds: bounds)
        let maxInRows = (band - 1) * s + k
        let ldE = maxInRows * W, ldD = band * oW
        let aExp = expand.weight.packedForm("microkernel-a") { packedPanels($0, rows: cexp, columns: cin, transposed: false) }
        let aProj = project.weight.packedForm("microkernel-a") { packedPanels($0, rows: cout, columns: cexp, transposed: false) }
        // Activation codes of the two expanded tensors, for the backward pass (rows no output reads stay 0: their
        // gradient is 0 whatever the code).
        // (An empty array's buffer may still have a base address: the flags, not the pointers, say which are kept.)
        let keep1 = gradient && expand.activation != .identity, keep2 = gradient && depthwise.activation != .identity
        var codes1 = [UInt8](repeating: 0, count: keep1 ? n * cexp * H * W : 0)
        var codes2 = [UInt8](repeating: 0, count: keep2 ? n * cexp * oH * oW : 0)
        var y = uninitializedFloats(n * cout * oH * oW)
        // A narrow stride-2 depthwise's input gradient is the unfused one's channels-last kernel, for whole planes.
        let byChannels = b.byChannels(smallPlane) || (gradient && s == 2 && oW < DepthwiseKernel.wideThreshold)
        x.data.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
        aExp.withUnsafeBufferPointer { ae in aProj.withUnsafeBufferPointer { ap in depthwise.weight.data.withUnsafeBufferPointer { wd in
        withOptionalBuffer(expand.bias) { be in withOptionalBuffer(depthwise.bias) { bd in withOptionalBuffer(project.bias) { bp in
        codes1.withUnsafeMutableBufferPointer { c1 in codes2.withUnsafeMutableBufferPointer { c2 in
            let x = xp.baseAddress!, y = yp.baseAddress!
            if byChannels {
                // Small planes: the channels split over the threads, each plane whole (see `smallPlaneLimit`).
                let d = UnsafeMutablePointer<Float>.allocate(capacity: n * cexp * oH * oW)
                defer { d.deallocate() }
                let taps = k * k
                Parallel.forEachChunk(n * b.parts) { tasks in
                    for task in tasks {
                        let (image, cs) = b.channels(task: task, of: cexp)
                        let e = UnsafeMutablePointer<Float>.allocate(capacity: cs.count * H * W)
                        defer { e.deallocate() }
                        let di = d + (image * cexp + cs.lowerBound) * oH * oW
                        gemm(m: cs.count, n: H * W, k: cin, a: ae.baseAddress! + cs.lowerBound * cin, b: x + image * cin * H * W, ldb: H * W,
                             c: e, ldc: H * W, bias: be.map { $0 + cs.lowerBound }, activation: expand.activation)
                        if keep1 { vz_activation_codes(e, c1.baseAddress! + (image * cexp + cs.lowerBound) * H * W, cs.count * H * W, expand.activation.kernelCode) }
                        for (j, c) in cs.enumerated() {
                            DepthwiseKernel.forwardPlane(x: e + j * H * W, y: di + j * oH * oW, w: wd.baseAddress! + c * taps, bias: bd?[c] ?? 0,
                                                         activation: depthwise.activation, g)
                        }
                        if keep2 { vz_activation_codes(di, c2.baseAddress! + (image * cexp + cs.lowerBound) * oH * oW, cs.count * oH * oW, depthwise.activation.kernelCode) }
                    }
                }
                Parallel.forEachChunk(n * b.parts) { tasks in
                    for task in tasks {
                        let (image, os) = b.channels(task: task, of: cout)
                        gemm(m: os.count, n: oH * oW, k: cexp, a: ap.baseAddress! + os.lowerBound * cexp, b: d + image * cexp * oH * oW,
                             ldb: oH * oW, c: y + (image * cout + os.lowerBound) * oH * oW, ldc: oH * oW, bias: bp.map { $0 + os.lowerBound },
                             activation: project.activation)
                    }
                }
                return
            }
            Parallel.forEachChunk(n * b.parts) { tasks in
                let e = UnsafeMutablePointer<Float>.allocate(capacity: cexp * ldE)
                let d = UnsafeMutablePointer<Float>.allocate(capacity: cexp * ldD)
                defer { e.deallocate(); d.deallocate() }
                for task in tasks {
                    let (image, bands) = b.bands(task: task, bounds: bounds, band: band)
                    let xi = x + image * cin * H * W, yi = y + image * cout * oH * oW
                    var held = 0..<0  // input rows now in e (row 0 of e is held.lowerBound)
                    for rows in bands {
                        let (r0, r1) = (rows.lowerBound, rows.upperBound)
                        let need = max(0, r0 * s - g.padTop)..<min(H, (r1 - 1) * s - g.padTop + k)
                        // Keep the rows this band shares with the last one; expand the rest.
                        let kept = keep(need, held: &held, buffer: e, ld: ldE, channels: cexp, rowLength: W)
                        let fresh = need.count - kept
                        if fresh > 0 {
                            gemm(m: cexp, n: fresh * W, k: cin, a: ae.baseAddress!, b: xi + (need.lowerBound + kept) * W, ldb: H * W,
                                 c: e + kept * W, ldc: ldE, bias: be, activation: expand.activation)
                            if keep1, let c1 = c1.baseAddress {
                                for c in 0..<cexp {
                                    vz_activation_codes(e + c * ldE + kept * W, c1 + ((image * cexp + c) * H + need.lowerBound + kept) * W,
                                                        fresh * W, expand.activation.kernelCode)
                                }
                            }
                        }
                        let rowsGeometry = WindowGeometry(inH: need.count, inW: W, k: k, stride: s, outH: r1 - r0, outW: oW,
                                                          padTop: need.lowerBound - (r0 * s - g.padTop), padLeft: g.padLeft)
                        for c in 0..<cexp {
                            DepthwiseKernel.forwardPlane(x: e + c * ldE, y: d + c * ldD, w: wd.baseAddress! + c * k * k, bias: bd?[c] ?? 0,
                                                         activation: depthwise.activation, rowsGeometry)
                            if keep2, let c2 = c2.baseAddress {
                                vz_activation_codes(d + c * ldD, c2 + ((image * cexp + c) * oH + r0) * oW, (r1 - r0) * oW,
                                                    depthwise.activation.kernelCode)
                            }
                        }
                        gemm(m: cout, n: (r1 - r0) * oW, k: cexp, a: ap.baseAddress!, b: d, ldb: ldD,
                             c: yi + r0 * oW, ldc: oH * oW, bias: bp, activation: project.activation)
                    }
                }
            }
        } }
        } } } } } }
        } }
        let out = Tensor(shape: [n, cout, oH, oW], data: y)
        if gradient {
            let (c1, c2) = (codes1, codes2)
            out.record(op: "inverted-bottleneck", parents: [x]) { [unowned out] gy in
                gy.withUnsafeMutableBufferPointer { d in
                    out.data.withUnsafeBufferPointer { yp in
                        project.activation.maskGradientParallel(d.baseAddress!, output: yp.baseAddress!, planes: n * cout, planeSize: oH * oW)
                    }
                }
                x.accumulate(backward(gy, b, codes1: c1, codes2: c2, bandBytes: bandBytes, byChannels: byChannels))
            }
        }
        return out
    }

    /// dx for dy = gy (already masked by the project's activation): projectᵀ → mask → depthwiseᵀ → mask → expandᵀ over
    /// bands of input rows, the same way round as the forward. Each band's depthwise-output gradient rows (with the
    /// halo its input rows read) are made by the transposed project product; rows shared with the last band are kept.
    /// The transposed products are `MicroKernel`'s on the transposed weights the unfused convs pack (the same bits);
    /// the depthwise transpose is the unfused one's per-plane kernel on the band (stride 1: the forward kernel with
    /// the flipped filter; stride 2: the polyphase gather), bands at multiples of 4 rows — so dx equals the unfused
    /// backward's bit for bit (tested).
    static func backward(_ gy: [Float], _ b: Shapes, codes1: [UInt8], codes2: [UInt8], bandBytes: Int, byChannels: Bool) -> [Float] {
        let mask1 = b.expand.activation != .identity, mask2 = b.depthwise.activation != .identity
        let (n, cin, H, W, cexp, cout, k, s, g) = (b.n, b.cin, b.H, b.W, b.cexp, b.cout, b.k, b.s, b.g)
        let oH = g.outH, oW = g.outW
        let bounds = b.parts(rows: H)
        let band = b.bandRows(fit: max(1, bandBytes / (cexp * W * 4)), bounds: bounds)
        let maxOutRows = min(oH, (band + k - 2) / s + 2)
        let ldG2 = maxOutRows * oW, ldG1 = band * W
        let aProjT = b.project.weight.packedForm("microkernel-a-transposed") { packedPanels($0, rows: cout, columns: cexp, transposed: true) }
        let aExpT = b.expand.weight.packedForm("microkernel-a-transposed") { packedPanels($0, rows: cexp, columns: cin, transposed: true) }
        let taps = k * k
        let filters = s == 1 ? b.depthwise.weight.packedForm("depthwise-flipped") { w in
            (0..<w.count).map { w[$0 / taps * taps + taps - 1 - $0 % taps] }
        } : b.depthwise.weight.data
        let redirect: Int32 = ClampGradient.redirect ? 1 : 0
        var dx = uninitializedFloats(n * cin * H * W)
        gy.withUnsafeBufferPointer { gp in dx.withUnsafeMutableBufferPointer { dp in
        aProjT.withUnsafeBufferPointer { ap in aExpT.withUnsafeBufferPointer { ae in filters.withUnsafeBufferPointer { wf in
        codes1.withUnsafeBufferPointer { c1 in codes2.withUnsafeBufferPointer { c2 in
            if byChannels {
                // Small planes: as the forward, channels over threads and each plane whole.
                let g1 = UnsafeMutablePointer<Float>.allocate(capacity: n * cexp * H * W)
                defer { g1.deallocate() }
                Parallel.forEachChunk(n * b.parts) { tasks in
                    for task in tasks {
                        let (image, cs) = b.channels(task: task, of: cexp)
                        let g2 = UnsafeMutablePointer<Float>.allocate(capacity: cs.count * oH * oW)
                        defer { g2.deallocate() }
                        gemm(m: cs.count, n: oH * oW, k: cout, a: ap.baseAddress! + cs.lowerBound * cout, b: gp.baseAddress! + image * cout * oH * oW,
                             ldb: oH * oW, c: g2, ldc: oH * oW, bias: nil, activation: .identity)
                        if mask2 { vz_mask_by_codes(g2, c2.baseAddress! + (image * cexp + cs.lowerBound) * oH * oW, cs.count * oH * oW, redirect) }
                        let gi = g1 + (image * cexp + cs.lowerBound) * H * W
                        if s == 2 && oW < DepthwiseKernel.wideThreshold {
                            DepthwiseKernel.ChannelsLast.backwardInput(dy: g2, w: wf.baseAddress! + cs.lowerBound * taps, dx: gi, batch: 1,
                                                                       channels: cs.count, g)
                        } else if s == 2 {
                            for (j, c) in cs.enumerated() {
                                DepthwiseKernel.gatherStride2Plane(dy: g2 + j * oH * oW, dx: gi + j * H * W, w: wf.baseAddress! + c * taps, g)
                            }
                        } else {
                            // Stride 1: the forward kernel with the flipped filter and the complementary padding.
                            let t = WindowGeometry(inH: oH, inW: oW, k: k, stride: 1, outH: H, outW: W, padTop: k - 1 - g.padTop,
                                                   padLeft: k - 1 - g.padLeft)
                            for (j, c) in cs.enumerated() {
                                DepthwiseKernel.forwardPlane(x: g2 + j * oH * oW, y: gi + j * H * W, w: wf.baseAddress! + c * taps, bias: 0,
                                                             activation: .identity, t)
                            }
                        }
                        if mask1 { vz_mask_by_codes(gi, c1.baseAddress! + (image * cexp + cs.lowerBound) * H * W, cs.count * H * W, redirect) }
                    }
                }
                Parallel.forEachChunk(n * b.parts) { tasks in
                    for task in tasks {
                        let (image, rs) = b.channels(task: task, of: cin)
                        gemm(m: rs.count, n: H * W, k: cexp, a: ae.baseAddress! + rs.lowerBound * cexp, b: g1 + image * cexp * H * W, ldb: H * W,
                             c: dp.baseAddress! + (image * cin + rs.lowerBound) * H * W, ldc: H * W, bias: nil, activation: .identity)
                    }
                }
                return
            }
            Parallel.forEachChunk(n * b.parts) { tasks in
                let g2 = UnsafeMutablePointer<Float>.allocate(capacity: cexp * ldG2)
                let g1 = UnsafeMutablePointer<Float>.allocate(capacity: cexp * ldG1)
                defer { g2.deallocate(); g1.deallocate() }
                for task in tasks {
                    let (image, bands) = b.bands(task: task, bounds: bounds, band: band)
                    let gyi = gp.baseAddress! + image * cout * oH * oW, dxi = dp.baseAddress! + image * cin * H * W
                    var held = 0..<0  // depthwise-output rows now in g2
                    for inputRows in bands {
                        let (i0, i1) = (inputRows.lowerBound, inputRows.upperBound)
                        // Output rows whose windows reach input rows i0..<i1: o·s − padTop + ky ∈ [i0, i1) for some ky.
                        let first = i0 + g.padTop - (k - 1)
                        let rows = max(0, first <= 0 ? 0 : (first + s - 1) / s)..<min(oH, (i1 - 1 + g.padTop) / s + 1)
                        guard !rows.isEmpty else {
                            // Rows no window reads (a valid conv's leftover): no gradient.
                            for c in 0..<cin { (dxi + c * H * W + i0 * W).update(repeating: 0, count: (i1 - i0) * W) }
                            continue
                        }
                        let kept = keep(rows, held: &held, buffer: g2, ld: ldG2, channels: cexp, rowLength: oW)
                        let fresh = rows.count - kept
                        if fresh > 0 {
                            gemm(m: cexp, n: fresh * oW, k: cout, a: ap.baseAddress!, b: gyi + (rows.lowerBound + kept) * oW, ldb: oH * oW,
                                 c: g2 + kept * oW, ldc: ldG2, bias: nil, activation: .identity)
                            if mask2, let c2 = c2.baseAddress {
                                for c in 0..<cexp {
                                    vz_mask_by_codes(g2 + c * ldG2 + kept * oW, c2 + ((image * cexp + c) * oH + rows.lowerBound + kept) * oW,
                                                     fresh * oW, redirect)
                                }
                            }
                        }
                        // The band's top padding in the forward direction (input row i0 is row 0 here).
                        let top = g.padTop + i0 - rows.lowerBound * s
                        for c in 0..<cexp {
                            if s == 1 {
                                let t = WindowGeometry(inH: rows.count, inW: oW, k: k, stride: 1, outH: i1 - i0, outW: W,
                                                       padTop: k - 1 - top, padLeft: k - 1 - g.padLeft)
                                DepthwiseKernel.forwardPlane(x: g2 + c * ldG2, y: g1 + c * ldG1, w: wf.baseAddress! + c * taps, bias: 0,
                                                             activation: .identity, t)
                            } else {
                                let t = WindowGeometry(inH: i1 - i0, inW: W, k: k, stride: 2, outH: rows.count, outW: oW,
                                                       padTop: top, padLeft: g.padLeft)
                                DepthwiseKernel.gatherStride2Plane(dy: g2 + c * ldG2, dx: g1 + c * ldG1, w: wf.baseAddress! + c * taps, t)
                            }
                            if mask1, let c1 = c1.baseAddress {
                                vz_mask_by_codes(g1 + c * ldG1, c1 + ((image * cexp + c) * H + i0) * W, (i1 - i0) * W, redirect)
                            }
                        }
                        gemm(m: cin, n: (i1 - i0) * W, k: cexp, a: ae.baseAddress!, b: g1, ldb: ldG1,
                             c: dxi + i0 * W, ldc: H * W, bias: nil, activation: .identity)
                    }
                }
            }
        } }
        } } }
        } }
        return dx
    }

    /// One block's shapes, and how its rows are split over threads and bands.
    struct Shapes {
        let n, cin, H, W, cexp, cout, k, s: Int
        let g: WindowGeometry
        let expand, depthwise, project: Stage
        /// Parts of one image per thread — of its rows, or on small planes of its channels (at a batch smaller than the
        /// thread count).
        let parts: Int

        init(_ x: [Int], expand: Stage, depthwise: Stage, stride: Int, padding: Padding, project: Stage) {
            (n, cin, H, W) = (x[0], x[1], x[2], x[3])
            (cexp, cout, k, s) = (expand.weight.shape[0], project.weight.shape[0], depthwise.weight.shape[2], stride)
            g = WindowGeometry(inH: H, inW: W, kH: k, kW: k, stride: s, padding: padding)
            (self.expand, self.depthwise, self.project) = (expand, depthwise, project)
            parts = n >= Parallel.threads ? 1 : (Parallel.threads + n - 1) / n
        }

        /// Whether the block runs by channels, for `smallPlaneLimit` = `limit`.
        func byChannels(_ limit: Int) -> Bool { H * W <= (parts == 1 ? limit : limit / 4) }

        /// Task `task` of the `n · parts` on small planes: its image and its part of `count` channels, in whole 6-row
        /// panels of the packed weights.
        func channels(task: Int, of count: Int) -> (image: Int, channels: Range<Int>) {
            let panels = (count + MicroKernel.mr - 1) / MicroKernel.mr, j = task % parts
            return (task / parts, min(count, panels * j / parts * MicroKernel.mr)..<min(count, panels * (j + 1) / parts * MicroKernel.mr))
        }

        /// Task `task` of the `n · parts` by bands: its image and its part's bands of `band` rows, in order
        /// (`bounds` from `parts(rows:)`).
        func bands(task: Int, bounds: [Int], band: Int) -> (image: Int, bands: [Range<Int>]) {
            let part = task % parts
            return (task / parts, Swift.stride(from: bounds[part], to: bounds[part + 1], by: band).map { $0..<min($0 + band, bounds[part + 1]) })
        }

        /// Where each part's rows start (and the last one ends), at multiples of 4.
        func parts(rows: Int) -> [Int] {
            let quads = (rows + 3) / 4
            return (0...parts).map { min(rows, 4 * (quads * $0 / parts)) }
        }

        /// A band height in rows: a multiple of 4 near `fit`, at least 4, no longer than the longest part needs.
        func bandRows(fit: Int, bounds: [Int]) -> Int {
            let longest = zip(bounds, bounds.dropFirst()).map { $1 - $0 }.max() ?? 4
            return min(max(4, fit / 4 * 4), max(4, (longest + 3) / 4 * 4))
        }
    }

    /// Rows `need` are next in a band buffer (per channel `ld` apart) that holds rows `held`: moves the rows they
    /// share to the buffer's front and returns how many; `held` becomes `need`.
    private static func keep(_ need: Range<Int>, held: inout Range<Int>, buffer: UnsafeMutablePointer<Float>, ld: Int,
                             channels: Int, rowLength: Int) -> Int {
        var kept = 0
        if held.contains(need.lowerBound) {
            kept = min(held.upperBound, need.upperBound) - need.lowerBound
            let shift = (need.lowerBound - held.lowerBound) * rowLength
            if shift > 0 { for c in 0..<channels { memmove(buffer + c * ld, buffer + c * ld + shift, kept * rowLength * 4) } }
        }
        held = need
        return kept
    }

    /// C (m × n, rows ldc apart) = act(A · B + bias) on the calling thread: A packed in 6-row panels, B read in place
    /// (rows ldb apart). `MicroKernel.gemm`'s AVX-512 block loop, so each element has the same bits; column blocks
    /// within L2.
    static func gemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, ldb: Int,
                     c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>?, activation: Activation) {
        let blocks = MicroKernel.columnBlocks(n: n, k: k).count
        for blk in 0..<blocks {
            MicroKernel.avx512Block(m: m, k: k, a: a, b: b, ldb: ldb, c: c, ldc: ldc, panels: 0..<(m + MicroKernel.mr - 1) / MicroKernel.mr,
                                    columns: MicroKernel.columnBlock(blk, of: blocks, n: n), bias: bias, act: activation.kernelCode)
        }
    }
}
