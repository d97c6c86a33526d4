import XCTest
@testable import Engine
import TestSupport

/// Every op's backward against central finite differences (random shapes, stride 2, odd sizes, depthwise 5×5).
final class OpGradientTests: XCTestCase {
    var rng = TestRNG(seed: 42)

    func testConvGeneral3x3ExplicitPadding() {
        let x = rng.tensor([2, 3, 9, 7]), w = rng.tensor([4, 3, 3, 3]), b = rng.tensor([4])
        checkGradients([x, w, b]) { conv2d($0[0], $0[1], bias: $0[2], stride: 1, padding: .symmetric(1)) }
    }

    func testConvStride2SameOddSize() {
        let x = rng.tensor([1, 3, 11, 13]), w = rng.tensor([5, 3, 3, 3]), b = rng.tensor([5])
        checkGradients([x, w, b]) { conv2d($0[0], $0[1], bias: $0[2], stride: 2, padding: .same) }
    }

    func testConvGrouped() {
        let x = rng.tensor([1, 4, 6, 5]), w = rng.tensor([6, 2, 3, 3])
        checkGradients([x, w]) { conv2d($0[0], $0[1], stride: 1, padding: .same, groups: 2) }
    }

    func testPointwiseConv() {
        let x = rng.tensor([2, 8, 5, 6]), w = rng.tensor([7, 8, 1, 1]), b = rng.tensor([7])
        checkGradients([x, w, b]) { conv2d($0[0], $0[1], bias: $0[2]) }
    }

    func testDepthwise3x3Stride1() {
        let x = rng.tensor([2, 3, 19, 21]), w = rng.tensor([3, 1, 3, 3]), b = rng.tensor([3])
        checkGradients([x, w, b], samples: 40) { conv2d($0[0], $0[1], bias: $0[2], padding: .same, groups: 3) }
    }

    func testDepthwise5x5Stride2OddSize() {
        let x = rng.tensor([1, 4, 37, 35]), w = rng.tensor([4, 1, 5, 5]), b = rng.tensor([4])
        checkGradients([x, w, b], samples: 40) { conv2d($0[0], $0[1], bias: $0[2], stride: 2, padding: .same, groups: 4) }
    }

    func testDepthwise3x3Stride2Wide() {
        // 56 wide: exercises the 16-lane vector path as well as the scalar border.
        let x = rng.tensor([1, 2, 10, 56]), w = rng.tensor([2, 1, 3, 3])
        checkGradients([x, w], samples: 40) { conv2d($0[0], $0[1], stride: 2, padding: .same, groups: 2) }
    }

    func testDepthwiseNarrowPlanesChannelsLast() {
        // Planes narrower than 16 columns take the channels-last kernel (as 7×7 and 14×14 layers do).
        for (size, k, stride, channels) in [(7, 5, 1, 12), (14, 5, 2, 9), (9, 3, 2, 16), (14, 3, 1, 70)] {
            let x = rng.tensor([2, channels, size, size]), w = rng.tensor([channels, 1, k, k]), b = rng.tensor([channels])
            checkGradients([x, w, b], samples: 40) {
                conv2d($0[0], $0[1], bias: $0[2], stride: stride, padding: .same, groups: channels)
            }
        }
    }

    func testConvFusedRelu6() {
        // Inputs scaled so pre-activations straddle both kinks but rarely sit within a step of them.
        let x = rng.tensor([1, 3, 8, 8], in: -3...3), w = rng.tensor([4, 3, 3, 3]), b = rng.tensor([4], in: 2...4)
        checkGradients([x, w, b], step: 1e-3, tolerance: 5e-2) {
            conv2d($0[0], $0[1], bias: $0[2], padding: .same, activation: .relu6)
        }
    }

    func testMaskedGradientsSharedBetweenBranchesStayIndependent() {
        // add() hands one gradient buffer to both branches; each ReLU6 conv masks its gradient in place (fused into
        // the depthwise kernel / the 1×1 gemm tiles), which must not leak into the other branch.
        let x = rng.tensor([1, 4, 32, 32], in: -2...2)
        let dw = rng.tensor([4, 1, 3, 3], in: -1...1), db = rng.tensor([4], in: 1...3)
        let pw = rng.tensor([4, 4, 1, 1], in: -1...1), pb = rng.tensor([4], in: 1...3)
        checkGradients([x, dw, pw], samples: 40, step: 1e-3, tolerance: 5e-2) {
            add(conv2d($0[0], $0[1], bias: db, padding: .same, groups: 4, activation: .relu6),
                conv2d($0[0], $0[2], bias: pb, activation: .relu6))
        }
    }

    func testBatchNorm() {
        var r = rng
        let p = BatchNormParameters(gamma: r.uniform(3, in: 0.5...2), beta: r.uniform(3), mean: r.uniform(3),
                                    variance: r.uniform(3, in: 0.1...2))
        let x = rng.tensor([2, 3, 4, 5])
        checkGradients([x]) { batchNorm($0[0], p) }
    }

    func testReluAndRelu6() {
        // Keep values away from the kinks at 0 and 6 so finite differences are meaningful.
        let data = rng.uniform(60, in: -8...8).map { abs($0) < 0.1 || abs($0 - 6) < 0.1 ? $0 + 0.3 : $0 }
        let x = Tensor(shape: [60], data: data, requiresGrad: true)
        checkGradients([x]) { relu($0[0]) }
        checkGradients([x]) { relu6($0[0]) }
    }

    func testRedirectedClampGradient() {
        // Pre-activations below 0, inside, above 6; upstream gradients of both signs.
        let x = Tensor(shape: [6], data: [-1, -1, 3, 3, 7, 7], requiresGrad: true)
        let seed: [Float] = [1, -1, 1, -1, 1, -1]
        for (redirect, expected) in [(false, [0, 0, 1, -1, 0, 0] as [Float]), (true, [1, 0, 1, -1, 0, -1])] {
            x.grad = nil
            ClampGradient.redirecting(redirect) { relu6(x).backward(seed: seed) }
            XCTAssertEqual(x.grad, expected, "redirect \(redirect)")
        }
        // The same through a conv's fused ReLU6 (the path the model uses).
        let input = Tensor(shape: [1, 1, 1, 2], data: [1, 1], requiresGrad: true)
        let w = Tensor(shape: [2, 1, 1, 1], data: [-1, 1])
        for redirect in [false, true] {
            input.grad = nil
            ClampGradient.redirecting(redirect) {
                conv2d(input, w, activation: .relu6).backward(seed: [1, 1, 1, 1])   // channel 0 is clamped at 0
            }
            XCTAssertEqual(input.grad, redirect ? [0, 0] : [1, 1], "redirect \(redirect)")
        }
        XCTAssertFalse(ClampGradient.redirect)
    }

    func testAddScaleMultiply() {
        let a = rng.tensor([3, 4]), b = rng.tensor([3, 4])
        checkGradients([a, b]) { add($0[0], $0[1]) }
        checkGradients([a, b]) { multiply($0[0], scale($0[1], by: -2.5)) }
    }

    func testPooling() {
        let x = rng.tensor([2, 3, 7, 5])
        checkGradients([x]) { globalAveragePool($0[0]) }
        checkGradients([x]) { maxPool2d($0[0], kernel: 3, stride: 2, padding: .same) }
    }

    /// maxPool2d's interior fast paths (unchecked columns; 8 outputs per step for stride-2 windows of 2 and 3 without
    /// a gradient) against the definition: the window's first value, then each later one that is greater. Planes
    /// wide enough for several vector steps and borders, ties (values on a coarse grid) and NaNs (first in a window:
    /// kept; later: passed over), with and without a gradient (which goes to the definition's argmax).
    func testMaxPoolEqualsTheDefinition() {
        func reference(_ x: Tensor, _ k: Int, _ s: Int, _ padding: Padding) -> (y: [Float], arg: [Int]) {
            let g = WindowGeometry(inH: x.shape[2], inW: x.shape[3], kH: k, kW: k, stride: s, padding: padding)
            var y: [Float] = [], arg: [Int] = []
            for p in 0..<(x.shape[0] * x.shape[1]) { for oy in 0..<g.outH { for ox in 0..<g.outW {
                var best = -Float.infinity, at = -1
                for ky in 0..<k { for kx in 0..<k {
                    let iy = oy * s + ky - g.padTop, ix = ox * s + kx - g.padLeft
                    guard (0..<g.inH).contains(iy), (0..<g.inW).contains(ix) else { continue }
                    let i = (p * g.inH + iy) * g.inW + ix
                    if at < 0 || x.data[i] > best { best = x.data[i]; at = i }
                } }
                y.append(best); arg.append(at)
            } } }
            return (y, arg)
        }
        let cases: [(shape: [Int], k: Int, s: Int, padding: Padding)] = [
            ([1, 3, 37, 53], 2, 2, .valid), ([2, 2, 40, 64], 2, 2, .valid), ([1, 3, 33, 57], 3, 2, .explicit(top: 1, bottom: 1, left: 1, right: 1)),
            ([2, 2, 31, 70], 3, 2, .same), ([1, 2, 29, 41], 3, 2, .valid), ([1, 2, 23, 35], 3, 1, .same),
            ([1, 2, 19, 44], 2, 1, .valid), ([1, 1, 9, 9], 3, 3, .explicit(top: 1, bottom: 2, left: 2, right: 1)),
        ]
        for (i, c) in cases.enumerated() {
            var values = rng.uniform(c.shape.reduce(1, *), in: -4...4).map { ($0 * 2).rounded() / 2 }  // ties
            for j in stride(from: i, to: values.count, by: 97) { values[j] = .nan }
            for grad in [false, true] {
                let x = Tensor(shape: c.shape, data: values, requiresGrad: grad)
                let ref = reference(x, c.k, c.s, c.padding)
                let y = grad ? maxPool2d(x, kernel: c.k, stride: c.s, padding: c.padding)
                             : GradMode.withoutGrad { maxPool2d(x, kernel: c.k, stride: c.s, padding: c.padding) }
                XCTAssertEqual(y.count, ref.y.count)
                let same = zip(y.data, ref.y).allSatisfy { $0.bitPattern == $1.bitPattern }
                XCTAssertTrue(same, "case \(i) grad \(grad): values differ from the definition")
                XCTAssertTrue(ref.y.contains { $0.isNaN } && ref.y.contains { !$0.isNaN })
                guard grad else { continue }
                let r = rng.uniform(y.count)
                y.backward(seed: r)
                var expected = [Float](repeating: 0, count: x.count)
                for (o, a) in ref.arg.enumerated() where a >= 0 { expected[a] += r[o] }
                XCTAssertEqual(x.grad!, expected, "case \(i): the gradient goes elsewhere than the definition's argmax")
            }
        }
    }

    func testLinear() {
        let x = rng.tensor([3, 10]), w = rng.tensor([6, 10]), b = rng.tensor([6])
        checkGradients([x, w, b]) { linear($0[0], $0[1], bias: $0[2]) }
    }

    func testSoftmaxAndLogSoftmax() {
        let x = rng.tensor([2, 7], in: -3...3)
        checkGradients([x], step: 1e-3) { softmax($0[0]) }
        checkGradients([x], step: 1e-3) { logSoftmax($0[0]) }
    }

    func testReductionsAndSlices() {
        let x = rng.tensor([2, 3, 4, 5])
        checkGradients([x]) { sum($0[0]) }
        checkGradients([x]) { mean($0[0]) }
        checkGradients([x]) { selectChannel($0[0], 2) }
        checkGradients([x]) { selectNeuron($0[0], channel: 1, y: 2, x: 3) }
        checkGradients([x]) { selectColumn($0[0].reshaped([2, 60]), 17) }
    }

    func testGradientsAccumulateThroughSharedInput() {
        // y = x*x + x uses x three times; d/dx = 2x + 1.
        let x = rng.tensor([5])
        let y = sum(add(multiply(x, x), x))
        y.backward()
        for i in 0..<5 { XCTAssertEqual(x.grad![i], 2 * x.data[i] + 1, accuracy: 1e-5) }
    }
}

final class ShapeOpGradientTests: XCTestCase {
    var rng = TestRNG(seed: 5)

    func testSigmoidTransposeMatmulStackPlane() {
        let x = rng.tensor([3, 4], in: -3...3), y = rng.tensor([4, 5]), z = rng.tensor([3, 4])
        checkGradients([x]) { sigmoid($0[0]) }
        checkGradients([x]) { transpose($0[0]) }
        checkGradients([x, y]) { matmul($0[0], $0[1]) }
        checkGradients([x, z]) { stack([$0[0], $0[1]]) }
        checkGradients([x]) { plane($0[0], 2) }
        XCTAssertEqual(matmul(Tensor(shape: [1, 2], data: [1, 2]), Tensor(shape: [2, 2], data: [3, 4, 5, 6])).data, [13, 16])
    }
}
