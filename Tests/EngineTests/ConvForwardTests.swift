import XCTest
@testable import Engine
import TestSupport
import CKernels

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
    /// against the definition (finite differences sample a few coordinates; this checks all of them). Then the
    /// narrow planes of fine-tuning at 112² (4×4, 7×7) with several images and more than one channel block (70
    /// channels: a full block of 64 and a partial one), where the weight gradient sums over images channels-last.
    func testDepthwiseBackwardMatchesDefinitionAtModelShapes() {
        var rng = TestRNG(seed: 11)
        let shapes = [(112, 3, 1), (112, 3, 2), (56, 3, 1), (56, 5, 2), (28, 5, 1), (28, 3, 2), (14, 5, 1), (14, 3, 1),
                      (14, 5, 2), (7, 5, 1), (7, 3, 1)].map { (batch: 1, channels: 3, size: $0.0, k: $0.1, stride: $0.2) }
            + [(4, 5, 1), (4, 3, 1), (7, 5, 2), (8, 3, 2), (7, 3, 1)].map { (batch: 3, channels: 70, size: $0.0, k: $0.1, stride: $0.2) }
        for (batch, channels, size, k, stride) in shapes {
            let x = rng.tensor([batch, channels, size, size]), w = rng.tensor([channels, 1, k, k])
            let y = conv2d(x, w, stride: stride, padding: .same, groups: channels)
            let yRef = naiveConv(x, w, stride: stride, padding: .same, groups: channels)
            let yErr = zip(y.data, yRef).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(yErr, 1e-4, "y at \(size)x\(size) k\(k) s\(stride)")
            let dy = rng.uniform(y.count)
            y.backward(seed: dy)
            let g = WindowGeometry(inH: size, inW: size, kH: k, kW: k, stride: stride, padding: .same)
            var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
            for b in 0..<batch { for c in 0..<channels { for oy in 0..<g.outH { for ox in 0..<g.outW {
                let p = b * channels + c
                let d = Double(dy[(p * g.outH + oy) * g.outW + ox])
                for ky in 0..<k { for kx in 0..<k {
                    let iy = oy * stride + ky - g.padTop, ix = ox * stride + kx - g.padLeft
                    guard iy >= 0, iy < size, ix >= 0, ix < size else { continue }
                    dx[(p * size + iy) * size + ix] += d * Double(w.data[(c * k + ky) * k + kx])
                    dw[(c * k + ky) * k + kx] += d * Double(x.data[(p * size + iy) * size + ix])
                } }
            } } } }
            let dxErr = zip(x.grad!, dx).map { abs(Double($0) - $1) }.max()!
            let dwErr = zip(w.grad!, dw).map { abs(Double($0) - $1) / max(1, abs($1)) }.max()!
            XCTAssertLessThan(dxErr, 1e-4, "dx at \(batch)x\(channels)x\(size)x\(size) k\(k) s\(stride)")
            XCTAssertLessThan(dwErr, 1e-4, "dw at \(batch)x\(channels)x\(size)x\(size) k\(k) s\(stride)")
        }
    }

    /// The AVX-512 depthwise plane kernel (vz_depthwise_plane_avx512) called directly, against the definition with
    /// bias and each activation: wide and odd planes, narrow outputs (7, 4 and 1 columns: masked loads only),
    /// TF SAME's asymmetric stride-2 padding and the transposed geometry of a stride-1 backward (explicit pads up
    /// to k − 1). Inputs are scaled so relu6 clips. Nothing past the plane is written; other shapes are refused.
    func testAVX512DepthwisePlaneKernelMatchesDefinition() throws {
        try XCTSkipUnless(MicroKernel.avx512, "no AVX-512 on this CPU")
        var rng = TestRNG(seed: 17)
        let cases: [(h: Int, w: Int, k: Int, s: Int, pad: Padding)] = [
            (37, 29, 3, 1, .same), (37, 29, 3, 2, .same), (31, 33, 5, 1, .same), (29, 31, 5, 2, .same),
            (112, 112, 3, 2, .same), (7, 7, 5, 1, .same), (7, 7, 3, 1, .same), (4, 4, 3, 1, .same), (1, 1, 3, 1, .same),
            (7, 7, 5, 2, .same), (8, 8, 3, 2, .same), (2, 1, 5, 2, .same), (18, 17, 3, 2, .same),
            (14, 14, 3, 1, .explicit(top: 2, bottom: 0, left: 2, right: 0)),
            (9, 20, 5, 1, .explicit(top: 1, bottom: 3, left: 4, right: 0)),
            (16, 16, 3, 2, .explicit(top: 0, bottom: 1, left: 0, right: 1)),
        ]
        for c in cases {
            let g = WindowGeometry(inH: c.h, inW: c.w, kH: c.k, kW: c.k, stride: c.s, padding: c.pad)
            let x = rng.uniform(g.inH * g.inW, in: -4...4), w = rng.uniform(c.k * c.k)
            let bias = rng.uniform(1)[0]
            let sums = naiveConv(Tensor(shape: [1, 1, c.h, c.w], data: x), Tensor(shape: [1, 1, c.k, c.k], data: w),
                                 stride: c.s, padding: c.pad, groups: 1)
            for act in [Activation.identity, .relu, .relu6] {
                let canary: Float = 12345
                var y = [Float](repeating: canary, count: g.outH * g.outW + 16)
                let done = y.withUnsafeMutableBufferPointer {
                    vz_depthwise_plane_avx512(x, $0.baseAddress!, w, bias, g.inH, g.inW, g.outH, g.outW, g.padTop,
                                              g.padLeft, g.kW, g.stride, act.kernelCode)
                }
                XCTAssertEqual(done, 1, "\(c)")
                var worst: Float = 0, clipped = 0
                for i in 0..<(g.outH * g.outW) {
                    var r = sums[i] + bias
                    if act != .identity { r = max(r, 0) }
                    if act == .relu6 { if r > 6 { clipped += 1 }; r = min(r, 6) }
                    worst = max(worst, abs(y[i] - r))
                }
                XCTAssertLessThan(worst, 1e-4, "\(c) \(act): max abs diff \(worst)")
                XCTAssertEqual(Array(y[(g.outH * g.outW)...]), [Float](repeating: canary, count: 16), "\(c): wrote past the plane")
                if act == .relu6 && g.outH * g.outW >= 49 { XCTAssertGreaterThan(clipped, 0, "\(c): relu6 never clipped") }
            }
        }
        for (k, s) in [(7, 1), (3, 3), (1, 1)] {
            var y = [Float](repeating: 0, count: 64)
            let x = [Float](repeating: 1, count: 64), w = [Float](repeating: 1, count: 49)
            XCTAssertEqual(vz_depthwise_plane_avx512(x, &y, w, 0, 8, 8, 8, 8, 0, 0, k, s, 0), 0, "k\(k) s\(s) accepted")
        }
    }

    /// Weight gradients of the gemm paths (1×1, im2col, grouped) against the definition, element by element, at
    /// shapes that take each way of forming the product: several images side by side (small planes), one image
    /// gathered (a large 3×3 plane), one image read in place (a large 1×1 plane), and more than one chunk.
    func testWeightGradientsMatchDefinition() {
        var rng = TestRNG(seed: 13)
        let cases: [(x: [Int], w: [Int], stride: Int, padding: Padding, groups: Int)] = [
            ([5, 24, 4, 4], [40, 24, 1, 1], 1, .valid, 1),        // fine-tuning's 4×4 planes: the batch in one product
            ([3, 8, 9, 7], [36, 8, 3, 3], 2, .same, 1),           // stride 2, odd sizes, images side by side
            ([3, 4, 9, 11], [6, 2, 3, 3], 1, .symmetric(1), 2),   // grouped
            ([1, 16, 160, 160], [16, 16, 3, 3], 1, .same, 1),     // one image a chunk, im2col gathered
            ([2, 64, 192, 192], [64, 64, 1, 1], 1, .valid, 1),    // one image a chunk, read in place
            ([40, 512, 16, 16], [40, 512, 1, 1], 1, .valid, 1),   // several chunks of images
        ]
        for c in cases {
            let x = rng.tensor(c.x, grad: false), w = rng.tensor(c.w)
            let y = conv2d(x, w, stride: c.stride, padding: c.padding, groups: c.groups)
            let dy = rng.uniform(y.count)
            y.backward(seed: dy)
            let n = c.x[0], cin = c.x[1], cout = c.w[0], kh = c.w[2], kw = c.w[3], inH = c.x[2], inW = c.x[3]
            let g = WindowGeometry(inH: inH, inW: inW, kH: kh, kW: kw, stride: c.stride, padding: c.padding)
            let cinG = cin / c.groups, coutG = cout / c.groups
            var dw = [Double](repeating: 0, count: w.count)
            x.data.withUnsafeBufferPointer { xp in
                for b in 0..<n { for o in 0..<cout { for oy in 0..<g.outH { for ox in 0..<g.outW {
                    let d = Double(dy[((b * cout + o) * g.outH + oy) * g.outW + ox])
                    let grp = o / coutG
                    for ci in 0..<cinG { for ky in 0..<kh { for kx in 0..<kw {
                        let iy = oy * c.stride + ky - g.padTop, ix = ox * c.stride + kx - g.padLeft
                        guard iy >= 0, iy < inH, ix >= 0, ix < inW else { continue }
                        dw[((o * cinG + ci) * kh + ky) * kw + kx] += d * Double(xp[((b * cin + grp * cinG + ci) * inH + iy) * inW + ix])
                    } } }
                } } } }
            }
            // Relative to the largest entry: sums run over up to 73,728 products here (a wrong image or column
            // offset is off by the order of the entries themselves).
            let scale = dw.map(abs).max()!
            let err = zip(w.grad!, dw).map { abs(Double($0) - $1) }.max()! / scale
            XCTAssertLessThan(err, 1e-5, "dw for x \(c.x), w \(c.w)")
        }
    }
}
