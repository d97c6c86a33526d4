import XCTest
@testable import Engine
import TestSupport

/// Winograd F(4×4, 3×3) against the definition (Double sums) and against the direct path, forward and input
/// gradient, at shapes with partial border tiles, asymmetric and zero padding, several images; and its packed
/// filters re-made when the weights change.
final class WinogradTests: XCTestCase {
    typealias Case = (x: [Int], cout: Int, padding: Padding)
    let cases: [Case] = [
        ([1, 64, 28, 28], 64, .same),                                    // VGG-like, whole tiles
        ([2, 9, 13, 11], 10, .symmetric(1)),                             // partial tiles, odd sizes, 2 images
        ([1, 16, 18, 18], 8, .valid),                                    // no padding (output 16×16)
        ([1, 12, 13, 17], 20, .explicit(top: 2, bottom: 0, left: 0, right: 2)),  // asymmetric
        ([1, 256, 14, 14], 128, .same),                                  // deep, small plane
    ]

    func naive(_ x: Tensor, _ w: Tensor, _ g: WindowGeometry) -> [Float] {
        let n = x.shape[0], cin = x.shape[1], cout = w.shape[0]
        var y = [Float](repeating: 0, count: n * cout * g.outH * g.outW)
        for b in 0..<n { for o in 0..<cout { for oy in 0..<g.outH { for ox in 0..<g.outW {
            var acc: Double = 0
            for c in 0..<cin { for ky in 0..<3 { for kx in 0..<3 {
                let iy = oy + ky - g.padTop, ix = ox + kx - g.padLeft
                guard iy >= 0, iy < g.inH, ix >= 0, ix < g.inW else { continue }
                acc += Double(x.data[((b * cin + c) * g.inH + iy) * g.inW + ix]) * Double(w.data[((o * cin + c) * 3 + ky) * 3 + kx])
            } } }
            y[((b * cout + o) * g.outH + oy) * g.outW + ox] = Float(acc)
        } } } }
        return y
    }

    /// max |a − b| / max |b|.
    func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        XCTAssertEqual(a.count, b.count)
        let scale = b.map(abs).max() ?? 1
        return (zip(a, b).map { abs($0 - $1) }.max() ?? 0) / max(scale, 1e-12)
    }

    func testShapesTakeTheWinogradPath() {
        for c in cases {
            let shape = ConvShape(x: c.x, w: [c.cout, c.x[1], 3, 3], stride: 1, padding: c.padding, groups: 1)
            XCTAssertTrue(Winograd.applies(shape), "\(c)")
        }
        // Not: stride 2, 3 input channels, grouped, 5×5, dilated, fewer than 4 tiles.
        XCTAssertFalse(Winograd.applies(ConvShape(x: [1, 16, 32, 32], w: [16, 16, 3, 3], stride: 2, padding: .same, groups: 1)))
        XCTAssertFalse(Winograd.applies(ConvShape(x: [1, 3, 224, 224], w: [64, 3, 3, 3], stride: 1, padding: .same, groups: 1)))
        XCTAssertFalse(Winograd.applies(ConvShape(x: [1, 16, 32, 32], w: [16, 8, 3, 3], stride: 1, padding: .same, groups: 2)))
        XCTAssertFalse(Winograd.applies(ConvShape(x: [1, 16, 32, 32], w: [16, 16, 5, 5], stride: 1, padding: .same, groups: 1)))
        XCTAssertFalse(Winograd.applies(ConvShape(x: [1, 16, 32, 32], w: [16, 16, 3, 3], stride: 1, dilation: 2, padding: .same, groups: 1)))
        XCTAssertFalse(Winograd.applies(ConvShape(x: [1, 64, 4, 4], w: [64, 64, 3, 3], stride: 1, padding: .same, groups: 1)))
        // A 7×7 plane (4 tiles) goes to im2col on the micro-kernel when the CPU has AVX-512.
        XCTAssertEqual(Winograd.applies(ConvShape(x: [1, 64, 7, 7], w: [64, 64, 3, 3], stride: 1, padding: .same, groups: 1)), !MicroKernel.avx512)
    }

    func testForwardMatchesDefinition() {
        var rng = TestRNG(seed: 3)
        for c in cases {
            let x = rng.tensor(c.x, grad: false), w = rng.tensor([c.cout, c.x[1], 3, 3], in: -0.2...0.2, grad: false)
            let b = rng.tensor([c.cout], grad: false)
            let g = WindowGeometry(inH: c.x[2], inW: c.x[3], kH: 3, kW: 3, stride: 1, padding: c.padding)
            let ref = naive(x, w, g)
            let fast = conv2d(x, w, padding: c.padding).data
            let direct = conv2d(x, w, padding: c.padding, algorithm: .direct).data
            let errW = relativeError(fast, ref), errD = relativeError(direct, ref)
            XCTAssertLessThan(errW, 2e-5, "\(c): Winograd relative error \(errW) (direct: \(errD))")
            // The fused bias + ReLU epilogue.
            let fused = conv2d(x, w, bias: b, padding: c.padding, activation: .relu).data
            let plane = g.outH * g.outW
            let expected = ref.enumerated().map { i, v in max(0, v + b.data[(i / plane) % c.cout]) }
            XCTAssertLessThan(relativeError(fused, expected), 2e-5, "\(c) with bias + relu")
        }
    }

    func testInputGradientMatchesDirectPath() {
        var rng = TestRNG(seed: 5)
        for c in cases {
            let w = rng.tensor([c.cout, c.x[1], 3, 3], in: -0.2...0.2, grad: false)
            let xd = rng.tensor(c.x), xw = Tensor(shape: c.x, data: xd.data, requiresGrad: true)
            let direct = conv2d(xd, w, padding: c.padding, algorithm: .direct)
            let fast = conv2d(xw, w, padding: c.padding)
            XCTAssertEqual(fast.op, "winograd-conv")
            let seed = rng.uniform(direct.count)
            direct.backward(seed: seed); fast.backward(seed: seed)
            let err = relativeError(xw.grad!, xd.grad!)
            XCTAssertLessThan(err, 2e-5, "\(c): input-gradient relative error \(err)")
        }
    }

    /// Finite differences through the Winograd path, for the input, the weights (each step re-packs them) and the
    /// bias; then with the fused ReLU6 for the input (a weight or bias step moves every output of a channel, so
    /// some across the kinks).
    func testFiniteDifferences() {
        var rng = TestRNG(seed: 9)
        let x = rng.tensor([2, 8, 17, 18]), w = rng.tensor([8, 8, 3, 3], in: -0.3...0.3), b = rng.tensor([8])
        XCTAssertEqual(conv2d(x, w, bias: b, padding: .same).op, "winograd-conv")
        checkGradients([x, w, b], samples: 30, step: 1e-2, tolerance: 5e-3) { t in
            conv2d(t[0], t[1], bias: t[2], padding: .same)
        }
        w.requiresGrad = false; b.requiresGrad = false
        checkGradients([x, w, b], samples: 30, step: 1e-3, tolerance: 1e-2) { t in
            conv2d(t[0], t[1], bias: t[2], padding: .same, activation: .relu6)
        }
    }

    /// Packed filters follow the weights: after an in-place update the output is the new weights' convolution.
    func testPackedFiltersFollowWeightChanges() {
        var rng = TestRNG(seed: 13)
        let x = rng.tensor([1, 16, 16, 16], grad: false), w = rng.tensor([16, 16, 3, 3], grad: false)
        let before = conv2d(x, w, padding: .same).data
        XCTAssertNotNil(w.packed?["winograd-4x4"])
        w.data.withUnsafeMutableBufferPointer { for i in 0..<$0.count { $0[i] *= -2 } }
        XCTAssertNil(w.packed, "changing the values drops the packed forms")
        let after = conv2d(x, w, padding: .same).data
        let expected = conv2d(x, w, padding: .same, algorithm: .direct).data
        XCTAssertLessThan(relativeError(after, expected), 2e-5)
        XCTAssertGreaterThan(relativeError(after, before), 1)
    }

    /// Writing one value drops the packed forms and mutates the storage in place (no copy of the array: with a
    /// `didSet` observer every element write copied it, and element-wise loops went quadratic).
    func testElementWritesDropPackedFormsInPlace() {
        var rng = TestRNG(seed: 14)
        let x = rng.tensor([1, 16, 12, 12], grad: false), w = rng.tensor([16, 16, 3, 3], grad: false)  // 9 tiles: Winograd on any CPU
        _ = conv2d(x, w, padding: .same)
        XCTAssertNotNil(w.packed?["winograd-4x4"])
        let base = w.data.withUnsafeBufferPointer { $0.baseAddress }
        w.data[5] = 0.25
        XCTAssertNil(w.packed, "an element write drops the packed forms")
        XCTAssertEqual(w.data.withUnsafeBufferPointer { $0.baseAddress }, base, "the element write copied the array")
        XCTAssertEqual(w.data[5], 0.25)
        for i in 0..<w.count { w.data[i] += 1 }
        XCTAssertEqual(w.data.withUnsafeBufferPointer { $0.baseAddress }, base)
        XCTAssertLessThan(relativeError(conv2d(x, w, padding: .same).data, conv2d(x, w, padding: .same, algorithm: .direct).data), 2e-5)
    }
}
