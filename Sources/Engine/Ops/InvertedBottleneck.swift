import CKernels
import Foundation

/// MobileNetV2 / EfficientNet's inverted bottleneck — expand (1×1) → depthwise → project (1×1) — as one forward
/// pass over bands of output rows, so the expanded tensor (6× the block's input) never leaves the core's L2.
///
/// Unfused, the expand conv writes that tensor to memory and the depthwise conv reads it back (4.8 MB at Lite0's
/// blocks.1, more than a core's L2); here each thread expands the input rows its next band of depthwise outputs
/// needs into a small buffer, runs the depthwise kernel on them, and projects the band straight into y. Rows shared
/// by two bands of one thread are kept (moved to the front of the buffer), not recomputed; only the first band of
/// each thread's part recomputes its halo.
///
/// Forward only: nothing is recorded for a backward pass (callers fuse only when the input needs no gradient and
/// the weights are frozen). AVX-512 only, on the same kernels as the unfused path (`vz_tile_6x32_avx512`,
/// `vz_depthwise_plane_avx512`) in the same summation order, with bands starting at multiples of the depthwise
/// kernel's four rows — so the result equals the three separate convs bit for bit (tested).
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

    /// Whether the fused pass covers this block on this CPU (and is worth it at this size and thread count).
    public static func applies(input x: [Int], expand: Tensor, depthwise: Tensor, stride: Int, padding: Padding,
                               project: Tensor, minimumBytes: Int = minimumExpandedBytes) -> Bool {
        guard MicroKernel.avx512, x.count == 4, expand.rank == 4, depthwise.rank == 4, project.rank == 4 else { return false }
        let cin = x[1], cexp = expand.shape[0], k = depthwise.shape[2]
        guard expand.shape == [cexp, cin, 1, 1], depthwise.shape == [cexp, 1, k, k], (k == 3 || k == 5),
              stride == 1 || stride == 2, project.shape.count == 4, project.shape[1] == cexp,
              project.shape[2] == 1, project.shape[3] == 1,
              WindowGeometry.outputSize(inH: x[2], inW: x[3], kH: k, kW: k, stride: stride, padding: padding) != nil
        else { return false }
        return x[0] > 1 || Parallel.threads > 1 || cexp * x[2] * x[3] * 4 >= minimumBytes
    }

    /// y = project(depthwise(expand(x))), each stage with its bias and activation. Call only when `applies` (at any
    /// size). `bandBytes`: the expanded buffer's target size (tests make it small to run many bands).
    public static func forward(_ x: Tensor, expand: Stage, depthwise: Stage, stride: Int, padding: Padding,
                               project: Stage, bandBytes: Int = bandBudget) -> Tensor {
        precondition(applies(input: x.shape, expand: expand.weight, depthwise: depthwise.weight, stride: stride,
                             padding: padding, project: project.weight, minimumBytes: 0),
                     "fused bottleneck called for shapes it does not cover")
        forwardCount += 1
        let n = x.shape[0], cin = x.shape[1], H = x.shape[2], W = x.shape[3]
        let cexp = expand.weight.shape[0], cout = project.weight.shape[0], k = depthwise.weight.shape[2], s = stride
        let g = WindowGeometry(inH: H, inW: W, kH: k, kW: k, stride: s, padding: padding)
        let oH = g.outH, oW = g.outW
        // Parts of one image's output rows per thread (at a batch smaller than the thread count), at multiples of 4.
        let parts = n >= Parallel.threads ? 1 : (Parallel.threads + n - 1) / n
        let quads = (oH + 3) / 4
        let bounds = (0...parts).map { min(oH, 4 * (quads * $0 / parts)) }
        // Band height: a multiple of 4 rows whose expanded input rows fit the budget.
        let rowBytes = cexp * W * 4
        let fit = max(1, (bandBytes / rowBytes - k) / s + 1)
        let longest = zip(bounds, bounds.dropFirst()).map { $1 - $0 }.max() ?? oH
        let band = min(max(4, fit / 4 * 4), max(4, (longest + 3) / 4 * 4))
        let maxInRows = (band - 1) * s + k
        let ldE = maxInRows * W, ldD = band * oW
        let aExp = expand.weight.packedForm("microkernel-a") { packedPanels($0, rows: cexp, columns: cin, transposed: false) }
        let aProj = project.weight.packedForm("microkernel-a") { packedPanels($0, rows: cout, columns: cexp, transposed: false) }
        var y = uninitializedFloats(n * cout * oH * oW)
        x.data.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
        aExp.withUnsafeBufferPointer { ae in aProj.withUnsafeBufferPointer { ap in depthwise.weight.data.withUnsafeBufferPointer { wd in
        withOptionalBuffer(expand.bias) { be in withOptionalBuffer(depthwise.bias) { bd in withOptionalBuffer(project.bias) { bp in
            let x = xp.baseAddress!, y = yp.baseAddress!
            Parallel.forEachChunk(n * parts) { tasks in
                let e = UnsafeMutablePointer<Float>.allocate(capacity: cexp * ldE)
                let d = UnsafeMutablePointer<Float>.allocate(capacity: cexp * ldD)
                defer { e.deallocate(); d.deallocate() }
                for task in tasks {
                    let image = task / parts, part = task % parts
                    let xi = x + image * cin * H * W, yi = y + image * cout * oH * oW
                    var held = 0..<0  // input rows now in e (row 0 of e is held.lowerBound)
                    for r0 in Swift.stride(from: bounds[part], to: bounds[part + 1], by: band) {
                        let r1 = min(r0 + band, bounds[part + 1])
                        let need = max(0, r0 * s - g.padTop)..<min(H, (r1 - 1) * s - g.padTop + k)
                        // Keep the rows this band shares with the last one; expand the rest.
                        var kept = 0
                        if held.contains(need.lowerBound) {
                            kept = held.upperBound - need.lowerBound
                            let shift = (need.lowerBound - held.lowerBound) * W
                            if shift > 0 { for c in 0..<cexp { memmove(e + c * ldE, e + c * ldE + shift, kept * W * 4) } }
                        }
                        let fresh = need.count - kept
                        if fresh > 0 {
                            gemm(m: cexp, n: fresh * W, k: cin, a: ae.baseAddress!, b: xi + (need.lowerBound + kept) * W, ldb: H * W,
                                 c: e + kept * W, ldc: ldE, bias: be, activation: expand.activation)
                        }
                        held = need
                        let padTop = need.lowerBound - (r0 * s - g.padTop)
                        for c in 0..<cexp {
                            let done = vz_depthwise_plane_avx512(e + c * ldE, d + c * ldD, wd.baseAddress! + c * k * k, bd?[c] ?? 0,
                                                                 need.count, W, r1 - r0, oW, padTop, g.padLeft, k, s,
                                                                 depthwise.activation.kernelCode)
                            precondition(done != 0)
                        }
                        gemm(m: cout, n: (r1 - r0) * oW, k: cexp, a: ap.baseAddress!, b: d, ldb: ldD,
                             c: yi + r0 * oW, ldc: oH * oW, bias: bp, activation: project.activation)
                    }
                }
            }
        } } } } } }
        } }
        return Tensor(shape: [n, cout, oH, oW], data: y)
    }

    /// C (m × n, rows ldc apart) = act(A · B + bias) on the calling thread: A packed in 6-row panels, B read in place
    /// (rows ldb apart). `MicroKernel.gemm`'s AVX-512 block loop, so each element has the same bits; column blocks
    /// within L2.
    static func gemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, ldb: Int,
                     c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>?, activation: Activation) {
        let tile = 2 * MicroKernel.nr
        let blockCols = max(tile, (96 * 1024 / max(k, 1)) / tile * tile)
        for c0 in stride(from: 0, to: n, by: blockCols) {
            MicroKernel.avx512Block(m: m, k: k, a: a, b: b, ldb: ldb, c: c, ldc: ldc, panels: 0..<(m + MicroKernel.mr - 1) / MicroKernel.mr,
                                    columns: c0..<min(n, c0 + blockCols), bias: bias, act: activation.kernelCode)
        }
    }
}
