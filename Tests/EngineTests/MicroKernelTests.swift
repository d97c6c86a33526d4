import XCTest
@testable import Engine
import TestSupport
import CKernels

/// The engine's own packed matrix product against Double sums, at sizes with partial row panels, partial column
/// panels and several column blocks; the 1×1 convolutions on it (forward, input gradient, fused epilogue) against
/// the OpenBLAS path; the fused residual add + ReLU by finite differences.
final class MicroKernelTests: XCTestCase {
    func testProductMatchesDefinition() {
        var rng = TestRNG(seed: 21)
        // (m, n, k): partial panels both ways; n over one block of B; k over several k blocks of ≤ 256, split unevenly.
        for (m, n, k) in [(1, 1, 1), (6, 16, 8), (7, 17, 3), (13, 49, 192), (20, 300, 1000), (64, 12544, 16), (5, 40, 700), (13, 33, 513), (192, 49, 1152)] {
            let a = rng.uniform(m * k), b = rng.uniform(k * n)
            var packed = [Float](repeating: 0, count: MicroKernel.paddedRows(m) * k)
            var c = [Float](repeating: .nan, count: m * n)
            a.withUnsafeBufferPointer { ap in packed.withUnsafeMutableBufferPointer { pp in
                MicroKernel.packA(ap.baseAddress!, m: m, k: k, lda: k, into: pp.baseAddress!)
            } }
            packed.withUnsafeBufferPointer { pp in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                MicroKernel.gemm(m: m, n: n, k: k, a: pp.baseAddress!, b: bp.baseAddress!, ldb: n, c: cp.baseAddress!, ldc: n)
            } } }
            var worst: Double = 0
            for i in Swift.stride(from: 0, to: m, by: max(1, m / 7)) { for j in Swift.stride(from: 0, to: n, by: max(1, n / 97)) {
                var s = 0.0
                for kk in 0..<k { s += Double(a[i * k + kk]) * Double(b[kk * n + j]) }
                worst = max(worst, abs(s - Double(c[i * n + j])) / max(1, abs(s)))
            } }
            // float32 rounding grows with the length of the sum
            XCTAssertLessThan(worst, 1e-6 + 3e-8 * Double(k), "m \(m) n \(n) k \(k)")
            XCTAssertFalse(c.contains { $0.isNaN }, "m \(m) n \(n) k \(k): every element written")
        }
    }

    /// The AVX-512 tile gives the AVX2 tile's bits (the same fused multiply-adds in the same order), full and partial,
    /// with B read in place (packed panels are the same code with other pointers; WinogradTests run them end to end);
    /// columns past the tile's are not written.
    func testAVX512TileEqualsAVX2TileBitwise() throws {
        try XCTSkipUnless(vz_cpu_has_avx512() != 0, "this CPU has no AVX-512")
        var rng = TestRNG(seed: 29)
        for (k, rows, cols) in [(1, 6, 32), (16, 6, 32), (96, 6, 32), (37, 5, 32), (24, 6, 17), (24, 3, 16), (7, 6, 9), (300, 1, 1)] {
            let a = rng.uniform(6 * k), ldb = 40, b = rng.uniform(k * ldb)
            var fast = [Float](repeating: .nan, count: 6 * 40), swift = fast
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
                fast.withUnsafeMutableBufferPointer { cp in
                    vz_tile_6x32_avx512(k, ap.baseAddress!, bp.baseAddress!, bp.baseAddress! + 16, ldb, cp.baseAddress!, 40, rows, cols, nil, 0, 0)
                }
                swift.withUnsafeMutableBufferPointer { cp in
                    MicroKernel.tile(k: k, a: ap.baseAddress!, b: bp.baseAddress!, ldb: ldb, c: cp.baseAddress!, ldc: 40, rows: rows, cols: min(16, cols))
                    if cols > 16 {
                        MicroKernel.tile(k: k, a: ap.baseAddress!, b: bp.baseAddress! + 16, ldb: ldb, c: cp.baseAddress! + 16, ldc: 40, rows: rows, cols: cols - 16)
                    }
                }
            } }
            XCTAssertEqual(fast.map(\.bitPattern), swift.map(\.bitPattern), "k \(k) rows \(rows) cols \(cols)")
            XCTAssertEqual(fast.enumerated().filter { !$0.element.isNaN }.count, rows * cols, "k \(k): only the tile written")
        }
    }

    /// The AVX-512 tile's fused bias + activation gives `Activation.apply`'s bits on the plain product, for each
    /// activation with and without a bias, on products that land on the clamps' edges: −0, +0, 6, just past them,
    /// NaN and ±infinity (A is 1 in its first column, B's first row the chosen values, the rest 0). A sum that starts
    /// at +0 is never −0; a bias of −0 is among the biases.
    func testAVX512FusedEpilogueEqualsApplyBitwise() throws {
        try XCTSkipUnless(vz_cpu_has_avx512() != 0, "this CPU has no AVX-512")
        let edges: [Float] = [-0.0, 0, 6, 6.0000005, 5.9999995, -1e-30, 1e-30, .nan, .infinity, -.infinity, -3, 3, 7, -0.5, 0.25, 100]
        let k = 4, ldb = 32
        var b = [Float](repeating: 0, count: k * ldb)
        for j in 0..<ldb { b[j] = edges[j % edges.count] * (j < 16 ? 1 : -1) }
        var a = [Float](repeating: 0, count: 6 * k)
        for r in 0..<6 { a[r] = 1 }  // kk = 0: every row gets B's first row
        let biases: [Float] = [0, -0.0, 6, -6, 0.5, -1e-30]
        for act in [Activation.identity, .relu, .relu6] {
            for withBias in [false, true] {
                for (rows, cols) in [(6, 32), (4, 19)] {
                    var fused = [Float](repeating: .nan, count: 6 * ldb), plain = fused
                    a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in biases.withUnsafeBufferPointer { biasp in
                        let code: Int32 = act == .identity ? 0 : act == .relu ? 1 : 2
                        fused.withUnsafeMutableBufferPointer { cp in
                            vz_tile_6x32_avx512(k, ap.baseAddress!, bp.baseAddress!, bp.baseAddress! + 16, ldb, cp.baseAddress!, ldb,
                                                rows, cols, withBias ? biasp.baseAddress! : nil, code, 0)
                        }
                        plain.withUnsafeMutableBufferPointer { cp in
                            vz_tile_6x32_avx512(k, ap.baseAddress!, bp.baseAddress!, bp.baseAddress! + 16, ldb, cp.baseAddress!, ldb, rows, cols, nil, 0, 0)
                            // The engine runs no epilogue with neither (MicroKernel.gemm's `fused`), nor does the tile.
                            if act != .identity || withBias {
                                for r in 0..<rows { act.apply(cp.baseAddress! + r * ldb, count: cols, bias: withBias ? biases[r] : 0) }
                            }
                        }
                    } } }
                    XCTAssertEqual(fused.map(\.bitPattern), plain.map(\.bitPattern), "\(act) bias \(withBias) \(rows)×\(cols)")
                }
            }
        }
    }

    /// The 12×16 tile (two A panels, one B vector per k) gives the 6×32 tile's bits for the same elements, full and
    /// partial, with bias + ReLU6 and in accumulate mode; nothing past its rows and columns is written.
    func testNarrowTileEqualsWideTileBitwise() throws {
        try XCTSkipUnless(vz_cpu_has_avx512() != 0, "this CPU has no AVX-512")
        var rng = TestRNG(seed: 37)
        for (k, rows, cols) in [(1, 12, 16), (64, 12, 16), (37, 7, 16), (100, 12, 5), (9, 3, 1), (300, 6, 16)] {
            let a = rng.uniform(12 * k, in: -2...2), ldb = 20, b = rng.uniform(k * ldb, in: -2...2), bias = rng.uniform(12)
            let start = rng.uniform(12 * ldb)
            for accumulate: Int32 in [0, 1] {
                var narrow = start, wide = start
                for r in 0..<12 { for j in cols..<ldb { narrow[r * ldb + j] = .nan; wide[r * ldb + j] = .nan } }
                for r in rows..<12 { for j in 0..<ldb { narrow[r * ldb + j] = .nan; wide[r * ldb + j] = .nan } }
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in bias.withUnsafeBufferPointer { biasp in
                    let a0 = ap.baseAddress!, a1 = ap.baseAddress! + 6 * k
                    narrow.withUnsafeMutableBufferPointer { cp in
                        vz_tile_12x16_avx512(k, a0, rows > 6 ? a1 : a0, bp.baseAddress!, ldb, cp.baseAddress!, ldb, rows, cols,
                                             biasp.baseAddress!, 2, accumulate)
                    }
                    wide.withUnsafeMutableBufferPointer { cp in
                        vz_tile_6x32_avx512(k, a0, bp.baseAddress!, bp.baseAddress! + 16, ldb, cp.baseAddress!, ldb, min(6, rows), cols,
                                            biasp.baseAddress!, 2, accumulate)
                        if rows > 6 {
                            vz_tile_6x32_avx512(k, a1, bp.baseAddress!, bp.baseAddress! + 16, ldb, cp.baseAddress! + 6 * ldb, ldb, rows - 6, cols,
                                                biasp.baseAddress! + 6, 2, accumulate)
                        }
                    }
                } } }
                XCTAssertEqual(narrow.map(\.bitPattern), wide.map(\.bitPattern), "k \(k) rows \(rows) cols \(cols) accumulate \(accumulate)")
                XCTAssertEqual(narrow.filter(\.isNaN).count, 12 * ldb - rows * cols, "k \(k): only the tile written")
                XCTAssertTrue(narrow.contains(0) || narrow.contains(6) || k < 37, "k \(k): a clamp occurs")
            }
        }
    }

    /// `avx512Block` runs k in blocks (accumulating into C, the bias and activation on the last) and the 32-column
    /// tiles outside the row panels: the bits of one unblocked tile per (panel, tile) over the whole k, for depths of
    /// one block, an uneven split into two and several blocks, with partial panels and tiles, a sub-range of columns.
    func testDepthBlockedProductEqualsOnePassBitwise() throws {
        try XCTSkipUnless(vz_cpu_has_avx512() != 0, "this CPU has no AVX-512")
        XCTAssertEqual(MicroKernel.depthBlocks(256), [0..<256])
        XCTAssertEqual(MicroKernel.depthBlocks(385), [0..<192, 192..<385])
        XCTAssertEqual(MicroKernel.depthBlocks(4608).count, 18)
        var rng = TestRNG(seed: 31)
        for (m, n, k) in [(13, 70, 300), (20, 49, 700), (7, 33, 1025), (12, 64, 4608)] {
            let a = rng.uniform(m * k), b = rng.uniform(k * n, in: -1...1), bias = rng.uniform(m)
            var packed = [Float](repeating: 0, count: MicroKernel.paddedRows(m) * k)
            a.withUnsafeBufferPointer { ap in packed.withUnsafeMutableBufferPointer { pp in
                MicroKernel.packA(ap.baseAddress!, m: m, k: k, lda: k, into: pp.baseAddress!)
            } }
            let panels = MicroKernel.paddedRows(m) / MicroKernel.mr, columns = 3..<n
            var blocked = [Float](repeating: .nan, count: m * n), onePass = blocked
            packed.withUnsafeBufferPointer { pp in b.withUnsafeBufferPointer { bp in bias.withUnsafeBufferPointer { biasp in
                blocked.withUnsafeMutableBufferPointer { cp in
                    MicroKernel.avx512Block(m: m, k: k, a: pp.baseAddress!, b: bp.baseAddress!, ldb: n, c: cp.baseAddress!, ldc: n,
                                            panels: 0..<panels, columns: columns, bias: biasp.baseAddress!, act: 2)
                }
                onePass.withUnsafeMutableBufferPointer { cp in
                    for p in 0..<panels {
                        for col in Swift.stride(from: columns.lowerBound, to: n, by: 32) {
                            vz_tile_6x32_avx512(k, pp.baseAddress! + p * 6 * k, bp.baseAddress! + col, bp.baseAddress! + col + 16, n,
                                                cp.baseAddress! + p * 6 * n + col, n, min(6, m - p * 6), min(32, n - col),
                                                biasp.baseAddress! + p * 6, 2, 0)
                        }
                    }
                }
            } } }
            XCTAssertEqual(blocked.map(\.bitPattern), onePass.map(\.bitPattern), "m \(m) n \(n) k \(k)")
            XCTAssertEqual(blocked.filter { !$0.isNaN }.count, m * columns.count, "m \(m) n \(n) k \(k): only the columns asked for")
            XCTAssertTrue(blocked.contains(6) && blocked.contains(0), "m \(m) n \(n) k \(k): both clamps occur")
        }
    }

    func testPointwiseConvMatchesBLASPath() {
        var rng = TestRNG(seed: 23)
        for (cin, cout, hw, batch) in [(16, 96, 112, 1), (192, 1152, 7, 2), (1152, 192, 7, 1), (7, 13, 5, 3)] {
            let w = rng.tensor([cout, cin, 1, 1], in: -0.1...0.1, grad: false), b = rng.tensor([cout], grad: false)
            let xd = rng.tensor([batch, cin, hw, hw]), xm = Tensor(shape: xd.shape, data: xd.data, requiresGrad: true)
            let direct = conv2d(xd, w, bias: b, activation: .relu6, algorithm: .direct)
            let micro = conv2d(xm, w, bias: b, activation: .relu6)
            let scale = direct.data.map(abs).max()!
            let err = zip(micro.data, direct.data).map { abs($0 - $1) }.max()! / scale
            XCTAssertLessThan(err, 1e-5, "\(cin)→\(cout) @\(hw)² ×\(batch) forward")
            let seed = rng.uniform(direct.count)
            direct.backward(seed: seed); micro.backward(seed: seed)
            let gScale = xd.grad!.map(abs).max()!
            let gErr = zip(xm.grad!, xd.grad!).map { abs($0 - $1) }.max()! / gScale
            XCTAssertLessThan(gErr, 1e-5, "\(cin)→\(cout) @\(hw)² ×\(batch) input gradient")
        }
    }

    /// Dense non-1×1 convs on the micro-kernel (im2col per column block in each task's buffer, or the whole matrix
    /// with rows split on small planes) against the im2col + OpenBLAS path: forward with bias and ReLU6, and the input
    /// gradient (Wᵀ · dy on the micro-kernel, col2im by channel). Stems, strided, a 7×7 plane that leaves Winograd,
    /// a strided 1×1, odd sizes and several images.
    func testIm2colConvMatchesBLASPath() throws {
        try XCTSkipUnless(MicroKernel.avx512, "the im2col path runs on AVX-512 only")
        var rng = TestRNG(seed: 29)
        let cases: [(x: [Int], w: [Int], stride: Int, padding: Padding)] = [
            ([1, 3, 224, 224], [32, 3, 3, 3], 2, .same),                                   // Lite0's stem: many blocks
            ([2, 3, 64, 64], [64, 3, 7, 7], 2, .symmetric(3)),                             // ResNet's stem, 2 images
            ([1, 64, 7, 7], [48, 64, 3, 3], 1, .same),                                     // small plane: rows split
            ([1, 96, 14, 14], [100, 96, 3, 3], 2, .symmetric(1)),                          // strided, rows split
            ([2, 40, 28, 28], [70, 40, 1, 1], 2, .valid),                                  // strided 1×1 (downsample)
            ([3, 7, 19, 23], [9, 7, 5, 5], 1, .explicit(top: 2, bottom: 1, left: 0, right: 2)),  // odd, asymmetric
        ]
        for c in cases {
            let w = rng.tensor(c.w, grad: false), b = rng.tensor([c.w[0]], grad: false)
            let xd = rng.tensor(c.x, in: -3...3), xm = Tensor(shape: xd.shape, data: xd.data, requiresGrad: true)
            let direct = conv2d(xd, w, bias: b, stride: c.stride, padding: c.padding, activation: .relu6, algorithm: .direct)
            let micro = conv2d(xm, w, bias: b, stride: c.stride, padding: c.padding, activation: .relu6)
            XCTAssertEqual(micro.op, "im2col-conv", "\(c)")
            let scale = direct.data.map(abs).max()!
            let err = zip(micro.data, direct.data).map { abs($0 - $1) }.max()! / scale
            XCTAssertLessThan(err, 1e-5, "\(c) forward")
            XCTAssertTrue(direct.data.contains(6) && direct.data.contains(0), "\(c): both clamps occur")
            let seed = rng.uniform(direct.count)
            direct.backward(seed: seed); micro.backward(seed: seed)
            let gScale = xd.grad!.map(abs).max()!
            let gErr = zip(xm.grad!, xd.grad!).map { abs($0 - $1) }.max()! / gScale
            XCTAssertLessThan(gErr, 1e-5, "\(c) input gradient")
            XCTAssertGreaterThan(gScale, 0)
        }
    }

    func testFusedResidualAddFiniteDifferences() {
        var rng = TestRNG(seed: 25)
        let a = rng.tensor([2, 3, 5, 7]), b = rng.tensor([2, 3, 5, 7])
        for act in [Activation.relu, .relu6] {
            checkGradients([a, b], samples: 40, step: 1e-3) { t in add(scale(t[0], by: 4), t[1], activation: act) }
            let fused = add(a, b, activation: act).data, plain = activate(add(a, b), act).data
            XCTAssertEqual(fused, plain)
        }
    }
}
