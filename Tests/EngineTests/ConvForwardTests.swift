import XCTest
@testable import Engine
import TestSupport

/// The fast conv paths against a direct six-loop convolution written from the definition.
final class ConvForwardTests: XCTestCase {
    func naiveConv(_ x: Tensor, _ w: Tensor, stride: Int, padding: Padding, groups: Int) -> [Float] {
        let n = x.shape[0], cin = x.shape[1], cout = w.shape[0], k = w.shape[2]
        let g = WindowGeometry(inH: x.shape[2], inW: x.shape[3], kH: k, kW: w.shape[3], stride: stride, padding: padding)
        let cinG = cin / groups, coutG = cout / groups
        var y = [Float](repeating: 0, count: n * cout * g.outH * g.outW)
        for b in 0..<n { for o in 0..<cout { for oy in 0..<g.outH { for ox in 0..<g.outW {
            var acc: Double = 0
            let grp = o / coutG
            for ci in 0..<cinG { for ky in 0..<k { for kx in 0..<g.kW {
                let iy = oy * stride + ky - g.padTop, ix = ox * stride + kx - g.padLeft
                guard iy >= 0, iy < g.inH, ix >= 0, ix < g.inW else { continue }
                let c = grp * cinG + ci
                acc += Double(x.data[((b * cin + c) * g.inH + iy) * g.inW + ix]) * Double(w.data[((o * cinG + ci) * k + ky) * g.kW + kx])
            } } }
            y[((b * cout + o) * g.outH + oy) * g.outW + ox] = Float(acc)
        } } } }
        return y
    }

    func testAllPathsMatchDefinition() {
        var rng = TestRNG(seed: 7)
        let cases: [(x: [Int], w: [Int], stride: Int, padding: Padding, groups: Int)] = [
            ([1, 3, 224, 224], [32, 3, 3, 3], 2, .same, 1),      // the stem
            ([2, 8, 15, 17], [6, 8, 1, 1], 1, .valid, 1),        // pointwise
            ([1, 16, 112, 112], [16, 1, 3, 3], 1, .same, 16),    // depthwise, vector interior
            ([1, 6, 112, 112], [6, 1, 3, 3], 2, .same, 6),       // depthwise stride 2
            ([2, 5, 29, 31], [5, 1, 5, 5], 2, .same, 5),         // depthwise 5×5 stride 2, odd sizes
            ([1, 4, 14, 14], [4, 1, 5, 5], 1, .same, 4),
            ([1, 4, 9, 11], [6, 2, 3, 3], 1, .symmetric(1), 2),  // grouped
        ]
        for c in cases {
            let x = rng.tensor(c.x, grad: false), w = rng.tensor(c.w, grad: false)
            let fast = conv2d(x, w, stride: c.stride, padding: c.padding, groups: c.groups).data
            let ref = naiveConv(x, w, stride: c.stride, padding: c.padding, groups: c.groups)
            XCTAssertEqual(fast.count, ref.count, "\(c)")
            let worst = zip(fast, ref).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThan(worst, 1e-4, "case \(c): max abs diff \(worst)")
        }
    }

    func testSamePaddingMatchesTensorFlow() {
        // TF SAME at 224: stride-2 3×3 pads (0, 1), stride-2 5×5 pads (1, 2).
        let g3 = WindowGeometry(inH: 224, inW: 224, kH: 3, kW: 3, stride: 2, padding: .same)
        XCTAssertEqual([g3.outH, g3.padTop], [112, 0])
        let g5 = WindowGeometry(inH: 56, inW: 56, kH: 5, kW: 5, stride: 2, padding: .same)
        XCTAssertEqual([g5.outH, g5.padTop], [28, 1])
    }

    /// Input and weight gradients of depthwise convs at every shape EfficientNet-Lite0 uses, element by element,
    /// against the definition (finite differences sample a few coordinates; this checks all of them).
    func testDepthwiseBackwardMatchesDefinitionAtModelShapes() {
        var rng = TestRNG(seed: 11)
        let shapes = [(112, 3, 1), (112, 3, 2), (56, 3, 1), (56, 5, 2), (28, 5, 1), (28, 3, 2), (14, 5, 1), (14, 3, 1),
                      (14, 5, 2), (7, 5, 1), (7, 3, 1)]
        for (size, k, stride) in shapes {
            let channels = 3
            let x = rng.tensor([1, channels, size, size]), w = rng.tensor([channels, 1, k, k])
            let y = conv2d(x, w, stride: stride, padding: .same, groups: channels)
            let yRef = naiveConv(x, w, stride: stride, padding: .same, groups: channels)
            let yErr = zip(y.data, yRef).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(yErr, 1e-4, "y at \(size)x\(size) k\(k) s\(stride)")
            let dy = rng.uniform(y.count)
            y.backward(seed: dy)
            let g = WindowGeometry(inH: size, inW: size, kH: k, kW: k, stride: stride, padding: .same)
            var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
            for c in 0..<channels { for oy in 0..<g.outH { for ox in 0..<g.outW {
                let d = Double(dy[(c * g.outH + oy) * g.outW + ox])
                for ky in 0..<k { for kx in 0..<k {
                    let iy = oy * stride + ky - g.padTop, ix = ox * stride + kx - g.padLeft
                    guard iy >= 0, iy < size, ix >= 0, ix < size else { continue }
                    dx[(c * size + iy) * size + ix] += d * Double(w.data[(c * k + ky) * k + kx])
                    dw[(c * k + ky) * k + kx] += d * Double(x.data[(c * size + iy) * size + ix])
                } }
            } } }
            let dxErr = zip(x.grad!, dx).map { abs(Double($0) - $1) }.max()!
            let dwErr = zip(w.grad!, dw).map { abs(Double($0) - $1) / max(1, abs($1)) }.max()!
            XCTAssertLessThan(dxErr, 1e-4, "dx at \(size)x\(size) k\(k) s\(stride)")
            XCTAssertLessThan(dwErr, 1e-4, "dw at \(size)x\(size) k\(k) s\(stride)")
        }
    }
}
