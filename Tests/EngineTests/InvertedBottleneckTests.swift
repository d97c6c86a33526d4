import XCTest
@testable import Engine
import TestSupport

/// The fused expand → depthwise → project pass against the three convs it replaces, bit for bit.
final class InvertedBottleneckTests: XCTestCase {
    /// Odd sizes, 3×3 and 5×5, stride 1 and 2, TF SAME and symmetric padding, biases present and absent, a batch,
    /// and band buffers small enough that every image runs several bands (kept rows moved, halos recomputed at part
    /// boundaries); on one thread and on two; split by rows (bands) and by channels (whole planes, as small planes
    /// run). Outputs must depend on the input.
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
            for t in [1, 2] { for small in [0, 1 << 30] {
                Parallel.setThreads(t)
                let fused = InvertedBottleneck.forward(x, expand: e, depthwise: d, stride: c.s, padding: c.pad, project: p, bandBytes: c.band,
                                                       smallPlane: small)
                XCTAssertEqual(fused.shape, unfused.shape, "\(c)")
                let diffs = zip(fused.data, unfused.data).enumerated().filter { $0.1.0 != $0.1.1 }
                let worst = diffs.map { abs($0.1.0 - $0.1.1) }.max() ?? 0
                XCTAssertTrue(diffs.isEmpty, "\(c), \(t) threads, \(small == 0 ? "bands" : "channels"): \(diffs.count) of \(fused.count) differ, worst \(worst), first at \(diffs.first.map { $0.0 } ?? -1)")
            } }
            let other = InvertedBottleneck.forward(rng.tensor(x.shape, grad: false), expand: e, depthwise: d, stride: c.s,
                                                   padding: c.pad, project: p, bandBytes: c.band)
            XCTAssertNotEqual(other.data, unfused.data, "\(c): the output must depend on the input")
        }
    }

    /// The fused backward (gradient to the input through frozen weights) against the three convs' backward, bit for
    /// bit: the same shapes as above plus a valid conv whose last input rows no window reads and narrow stride-2
    /// planes (their backward channels-last), ReLU and identity stages, inputs scaled so both ReLU6 clamps occur,
    /// Lucid's redirected gradient on and off, one and two threads, by bands and by channels.
    func testFusedBackwardEqualsTheThreeConvsBackwardBitwise() throws {
        try XCTSkipUnless(MicroKernel.avx512, "the fused pass runs on AVX-512 only")
        var rng = TestRNG(seed: 29)
        let cases: [(n: Int, cin: Int, cexp: Int, cout: Int, h: Int, w: Int, k: Int, s: Int, pad: Padding, acts: [Activation], band: Int)] = [
            (1, 5, 30, 7, 37, 29, 3, 1, .same, [.relu6, .relu6, .identity], 8 << 10),
            (3, 7, 24, 11, 30, 36, 5, 2, .same, [.relu6, .relu6, .identity], 6 << 10),
            (1, 16, 96, 24, 56, 56, 3, 2, .same, [.relu6, .relu6, .identity], 40 << 10),
            (2, 8, 40, 16, 20, 20, 5, 1, .same, [.relu, .relu6, .relu], 4 << 10),
            (1, 6, 36, 6, 19, 23, 3, 1, .symmetric(1), [.identity, .relu, .identity], 1 << 10),
            (1, 12, 24, 4, 34, 70, 3, 2, .valid, [.relu6, .identity, .relu6], 2 << 10),
            (1, 8, 48, 16, 14, 14, 5, 1, .same, [.relu6, .relu6, .identity], 1 << 30),
            (1, 16, 60, 16, 14, 14, 5, 2, .same, [.relu6, .relu6, .identity], 1 << 30),
            (2, 12, 27, 5, 13, 17, 3, 2, .symmetric(1), [.relu6, .relu6, .relu], 1 << 30),
        ]
        let threads = Parallel.threads
        defer { Parallel.setThreads(threads) }
        for c in cases {
            func stage(_ shape: [Int], _ act: Activation) -> InvertedBottleneck.Stage {
                InvertedBottleneck.Stage(weight: rng.tensor(shape, in: -0.5...0.5, grad: false),
                                         bias: rng.tensor([shape[0]], grad: false), activation: act)
            }
            let e = stage([c.cexp, c.cin, 1, 1], c.acts[0]), d = stage([c.cexp, 1, c.k, c.k], c.acts[1])
            let p = stage([c.cout, c.cexp, 1, 1], c.acts[2])
            XCTAssertTrue(InvertedBottleneck.applies(input: [c.n, c.cin, c.h, c.w], expand: e.weight, depthwise: d.weight, stride: c.s,
                                                     padding: c.pad, project: p.weight, minimumBytes: 0), "\(c)")
            let x = rng.tensor([c.n, c.cin, c.h, c.w], in: -4...4, grad: true)
            for redirect in [false, true] {
                func unfused() -> (y: [Float], dx: [Float]) {
                    let y = conv2d(conv2d(conv2d(x, e.weight, bias: e.bias, activation: e.activation),
                                          d.weight, bias: d.bias, stride: c.s, padding: c.pad, groups: c.cexp, activation: d.activation),
                                   p.weight, bias: p.bias, activation: p.activation)
                    var seed = TestRNG(seed: 5)
                    x.grad = nil
                    ClampGradient.redirecting(redirect) { y.backward(seed: seed.uniform(y.count)) }
                    return (y.data, x.grad!)
                }
                let reference = unfused()
                if redirect && e.activation == .relu6 {
                    let h = GradMode.withoutGrad { conv2d(x, e.weight, bias: e.bias, activation: e.activation) }.data
                    XCTAssertTrue(h.contains(0) && h.contains(6), "\(c): both clamps must occur")
                }
                for t in [1, 2] { for small in [0, 1 << 30] {
                    Parallel.setThreads(t)
                    let y = InvertedBottleneck.forward(x, expand: e, depthwise: d, stride: c.s, padding: c.pad, project: p, bandBytes: c.band,
                                                       smallPlane: small)
                    XCTAssertEqual(y.data, reference.y, "\(c): forward")
                    var seed = TestRNG(seed: 5)
                    x.grad = nil
                    ClampGradient.redirecting(redirect) { y.backward(seed: seed.uniform(y.count)) }
                    let dx = try XCTUnwrap(x.grad)
                    let diffs = zip(dx, reference.dx).enumerated().filter { $0.1.0.bitPattern != $0.1.1.bitPattern }
                    let worst = diffs.map { abs($0.1.0 - $0.1.1) }.max() ?? 0
                    XCTAssertTrue(diffs.isEmpty, "\(c), redirect \(redirect), \(t) threads, \(small == 0 ? "bands" : "channels"): \(diffs.count) of \(dx.count) differ, worst \(worst), first at \(diffs.first.map { $0.0 } ?? -1)")
                    XCTAssertGreaterThan(Set(dx).count, dx.count / 4, "\(c): the gradient must vary")
                } }
            }
            // The gradient depends on the input (through the activation codes) and on the seed.
            let y = InvertedBottleneck.forward(x, expand: e, depthwise: d, stride: c.s, padding: c.pad, project: p, bandBytes: c.band)
            var seed = TestRNG(seed: 5)
            x.grad = nil
            y.backward(seed: seed.uniform(y.count))
            let first = x.grad!
            let x2 = rng.tensor(x.shape, in: -4...4, grad: true)
            let y2 = InvertedBottleneck.forward(x2, expand: e, depthwise: d, stride: c.s, padding: c.pad, project: p, bandBytes: c.band)
            seed = TestRNG(seed: 5)
            y2.backward(seed: seed.uniform(y2.count))
            if c.acts.contains(where: { $0 != .identity }) { XCTAssertNotEqual(x2.grad!, first, "\(c): the gradient must depend on the input") }
        }
    }

    /// The fused backward's banded transposes against central finite differences. Identity stages: with ReLUs a
    /// step of 1e-2 crosses kinks here (the unfused convs fail the same way, by the same amounts); the activation codes
    /// are checked above, bit for bit against the unfused masks.
    func testFusedBackwardMatchesFiniteDifferences() throws {
        try XCTSkipUnless(MicroKernel.avx512, "the fused pass runs on AVX-512 only")
        var rng = TestRNG(seed: 31)
        for (k, s) in [(3, 1), (5, 2), (3, 2)] {
            let e = InvertedBottleneck.Stage(weight: rng.tensor([24, 4, 1, 1], in: -0.5...0.5, grad: false), bias: rng.tensor([24], grad: false), activation: .identity)
            let d = InvertedBottleneck.Stage(weight: rng.tensor([24, 1, k, k], in: -0.5...0.5, grad: false), bias: rng.tensor([24], grad: false), activation: .identity)
            let p = InvertedBottleneck.Stage(weight: rng.tensor([6, 24, 1, 1], in: -0.5...0.5, grad: false), bias: nil, activation: .identity)
            let x = rng.tensor([1, 4, 36, 33], grad: true)
            for small in [0, 1 << 30] {
                checkGradients([x], samples: 40) { t in
                    InvertedBottleneck.forward(t[0], expand: e, depthwise: d, stride: s, padding: .same, project: p, bandBytes: 4 << 10,
                                               smallPlane: small)
                }
            }
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
        // A narrow stride-2 depthwise (its backward channels-last, as unfused) is covered.
        XCTAssertEqual(InvertedBottleneck.applies(input: [1, 8, 28, 28], expand: e, depthwise: d3, stride: 2, padding: .same, project: p,
                                                  minimumBytes: 0), MicroKernel.avx512)
        XCTAssertFalse(InvertedBottleneck.applies(input: x, expand: e, depthwise: d3, stride: 1, padding: .symmetric(3), project: p, minimumBytes: 0))
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
