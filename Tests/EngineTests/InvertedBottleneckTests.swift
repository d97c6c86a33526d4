import XCTest
@testable import Engine
import TestSupport

/// The fused expand → depthwise → project pass against the three convs it replaces, bit for bit.
final class InvertedBottleneckTests: XCTestCase {
    /// Odd sizes, 3×3 and 5×5, stride 1 and 2, TF SAME and symmetric padding, biases present and absent, a batch,
    /// and band buffers small enough that every image runs several bands (kept rows moved, halos recomputed at part
    /// boundaries); on one thread and on two. Outputs must depend on the input.
    func testFusedBottleneckEqualsTheThreeConvsBitwise() throws {
        try XCTSkipUnless(MicroKernel.avx512, "the fused pass runs on AVX-512 only")
        var rng = TestRNG(seed: 23)
        let cases: [(n: Int, cin: Int, cexp: Int, cout: Int, h: Int, w: Int, k: Int, s: Int, pad: Padding, bias: Bool, band: Int)] = [
            (1, 5, 30, 7, 37, 29, 3, 1, .same, true, 8 << 10),
            (3, 7, 24, 11, 30, 31, 5, 2, .same, true, 6 << 10),
            (1, 16, 96, 24, 56, 56, 3, 2, .same, true, 40 << 10),
            (2, 8, 40, 16, 20, 20, 5, 1, .same, false, 4 << 10),
            (1, 6, 36, 6, 19, 23, 3, 1, .symmetric(1), true, 1 << 10),
            (1, 4, 12, 4, 9, 70, 3, 2, .symmetric(1), true, 1 << 30),
        ]
        let threads = Parallel.threads
        defer { Parallel.setThreads(threads) }
        for c in cases {
            let x = rng.tensor([c.n, c.cin, c.h, c.w], grad: false)
            func stage(_ shape: [Int], _ act: Activation) -> InvertedBottleneck.Stage {
                InvertedBottleneck.Stage(weight: rng.tensor(shape, in: -0.5...0.5, grad: false),
                                         bias: c.bias ? rng.tensor([shape[0]], grad: false) : nil, activation: act)
            }
            let e = stage([c.cexp, c.cin, 1, 1], .relu6), d = stage([c.cexp, 1, c.k, c.k], .relu6), p = stage([c.cout, c.cexp, 1, 1], .identity)
            let unfused = conv2d(conv2d(conv2d(x, e.weight, bias: e.bias, activation: e.activation),
                                        d.weight, bias: d.bias, stride: c.s, padding: c.pad, groups: c.cexp, activation: d.activation),
                                 p.weight, bias: p.bias, activation: p.activation)
            for t in [1, 2] {
                Parallel.setThreads(t)
                let fused = InvertedBottleneck.forward(x, expand: e, depthwise: d, stride: c.s, padding: c.pad, project: p, bandBytes: c.band)
                XCTAssertEqual(fused.shape, unfused.shape, "\(c)")
                let diffs = zip(fused.data, unfused.data).enumerated().filter { $0.1.0 != $0.1.1 }
                let worst = diffs.map { abs($0.1.0 - $0.1.1) }.max() ?? 0
                XCTAssertTrue(diffs.isEmpty, "\(c), \(t) threads: \(diffs.count) of \(fused.count) differ, worst \(worst), first at \(diffs.first.map { $0.0 } ?? -1)")
            }
            let other = InvertedBottleneck.forward(rng.tensor(x.shape, grad: false), expand: e, depthwise: d, stride: c.s,
                                                   padding: c.pad, project: p, bandBytes: c.band)
            XCTAssertNotEqual(other.data, unfused.data, "\(c): the output must depend on the input")
        }
    }

    func testAppliesOnlyToTheShapesItCovers() {
        let x = [1, 8, 64, 64]
        func t(_ s: [Int]) -> Tensor { Tensor(shape: s, data: [Float](repeating: 0, count: s.reduce(1, *))) }
        let e = t([48, 8, 1, 1]), d3 = t([48, 1, 3, 3]), p = t([8, 48, 1, 1])
        XCTAssertEqual(InvertedBottleneck.applies(input: x, expand: e, depthwise: d3, stride: 1, padding: .same, project: p, minimumBytes: 0),
                       MicroKernel.avx512)
        XCTAssertFalse(InvertedBottleneck.applies(input: x, expand: e, depthwise: t([48, 1, 7, 7]), stride: 1, padding: .same, project: p, minimumBytes: 0))
        XCTAssertFalse(InvertedBottleneck.applies(input: x, expand: e, depthwise: d3, stride: 3, padding: .same, project: p, minimumBytes: 0))
        XCTAssertFalse(InvertedBottleneck.applies(input: x, expand: t([48, 8, 3, 3]), depthwise: d3, stride: 1, padding: .same, project: p, minimumBytes: 0))
        XCTAssertFalse(InvertedBottleneck.applies(input: x, expand: e, depthwise: d3, stride: 1, padding: .same, project: t([8, 40, 1, 1]), minimumBytes: 0))
        // 48 × 64 × 64 × 4 = 786 KB: below the default size, left unfused on one thread at batch 1 only.
        let threads = Parallel.threads
        defer { Parallel.setThreads(threads) }
        Parallel.setThreads(1)
        XCTAssertFalse(InvertedBottleneck.applies(input: x, expand: e, depthwise: d3, stride: 1, padding: .same, project: p))
        XCTAssertEqual(InvertedBottleneck.applies(input: [2, 8, 64, 64], expand: e, depthwise: d3, stride: 1, padding: .same, project: p),
                       MicroKernel.avx512)
        Parallel.setThreads(2)
        XCTAssertEqual(InvertedBottleneck.applies(input: x, expand: e, depthwise: d3, stride: 1, padding: .same, project: p), MicroKernel.avx512)
    }
}
