import XCTest
@testable import Engine
import TestSupport

/// The ops the model graphs added (dilated convs, pools with their padding rules, swish / hard swish / hard
/// sigmoid, concat, channels-last flatten, zero padding, the input normalization): backward by finite
/// differences, forward against the definition.
final class GraphOpTests: XCTestCase {
    var rng = TestRNG(seed: 7)

    func testDilatedConvForwardMatchesDefinitionAndGradients() {
        let x = rng.tensor([1, 2, 9, 8]), w = rng.tensor([3, 2, 3, 3]), b = rng.tensor([3])
        let y = GradMode.withoutGrad { conv2d(x, w, bias: b, dilation: 2, padding: .symmetric(2)) }
        XCTAssertEqual(y.shape, [1, 3, 9, 8])
        // y[o, i, j] = b[o] + Σ w[o, c, ky, kx] · x[c, i + 2ky − 2, j + 2kx − 2]
        for (o, i, j) in [(0, 0, 0), (1, 4, 3), (2, 8, 7), (1, 1, 6)] {
            var s = b.data[o]
            for c in 0..<2 { for ky in 0..<3 { for kx in 0..<3 {
                let yy = i + 2 * ky - 2, xx = j + 2 * kx - 2
                guard yy >= 0 && yy < 9 && xx >= 0 && xx < 8 else { continue }
                s += w.data[((o * 2 + c) * 3 + ky) * 3 + kx] * x.data[(c * 9 + yy) * 8 + xx]
            } } }
            XCTAssertEqual(y.data[(o * 9 + i) * 8 + j], s, accuracy: 1e-5)
        }
        checkGradients([x, w, b]) { conv2d($0[0], $0[1], bias: $0[2], dilation: 2, padding: .symmetric(2)) }
        // A dilated depthwise conv takes the grouped im2col path.
        let xd = rng.tensor([1, 3, 10, 10]), wd = rng.tensor([3, 1, 3, 3])
        checkGradients([xd, wd]) { conv2d($0[0], $0[1], stride: 2, dilation: 2, padding: .same, groups: 3) }
    }

    func testAveragePoolingPaddingRules() {
        let x = Tensor(shape: [1, 1, 3, 3], data: (1...9).map(Float.init))
        // PyTorch count_include_pad=True: the corner window of a 3×3/1 pool with padding 1 divides by 9.
        let counted = avgPool2d(x, kernel: 3, stride: 1, padding: .symmetric(1), countPadding: true)
        XCTAssertEqual(counted.data[0], (1 + 2 + 4 + 5) / 9, accuracy: 1e-6)
        // Keras "same" / count_include_pad=False: only the 4 inside pixels count.
        let inside = avgPool2d(x, kernel: 3, stride: 1, padding: .symmetric(1), countPadding: false)
        XCTAssertEqual(inside.data[0], (1 + 2 + 4 + 5) / 4, accuracy: 1e-6)
        XCTAssertEqual(inside.data[4], 5, accuracy: 1e-6)
        let t = rng.tensor([2, 3, 7, 6])
        checkGradients([t]) { avgPool2d($0[0], kernel: 3, stride: 2, padding: .symmetric(1), countPadding: true) }
        checkGradients([t]) { avgPool2d($0[0], kernel: 2, stride: 2, padding: .same, countPadding: false) }
    }

    func testAdaptiveAveragePool() {
        let x = rng.tensor([1, 2, 5, 7])
        let y = GradMode.withoutGrad { adaptiveAvgPool2d(x, outH: 3, outW: 2) }
        // Cell (1, 1) averages rows ⌊5/3⌋…⌈10/3⌉ = 1..<4 and columns ⌊7/2⌋…⌈14/2⌉ = 3..<7.
        var s: Float = 0
        for r in 1..<4 { for c in 3..<7 { s += x.data[r * 7 + c] } }
        XCTAssertEqual(y.data[1 * 2 + 1], s / 12, accuracy: 1e-6)
        checkGradients([x]) { adaptiveAvgPool2d($0[0], outH: 3, outW: 2) }
        XCTAssertEqual(GradMode.withoutGrad { adaptiveAvgPool2d(x, outH: 5, outW: 7) }.data, x.data)
    }

    func testSmoothActivations() {
        let x = rng.tensor([3, 17], in: -5...5)
        checkGradients([x]) { swish($0[0]) }
        checkGradients([x]) { hardSwish($0[0]) }
        checkGradients([x]) { hardSigmoid($0[0]) }
        let y = GradMode.withoutGrad { hardSwish(Tensor(shape: [3], data: [-4, 1, 4])) }
        XCTAssertEqual(y.data, [0, 1 * 4 / 6, 4])
    }

    func testConcatFlattenPadAndChannelAffine() {
        let a = rng.tensor([2, 3, 4, 5]), b = rng.tensor([2, 2, 4, 5])
        let c = GradMode.withoutGrad { concatChannels([a, b]) }
        XCTAssertEqual(c.shape, [2, 5, 4, 5])
        let inB = 1 * 2 * 20 + 7, inC = (1 * 5 + 3) * 20 + 7  // batch 1, b's channel 0 = the concat's channel 3
        XCTAssertEqual(c.data[inC], b.data[inB])
        checkGradients([a, b]) { concatChannels($0) }
        let f = GradMode.withoutGrad { flattenChannelsLast(a) }
        let nhwc = 1 * 60 + (2 * 5 + 3) * 3 + 1, nchw = ((1 * 3 + 1) * 4 + 2) * 5 + 3  // batch 1, channel 1, h 2, w 3
        XCTAssertEqual(f.data[nhwc], a.data[nchw])
        checkGradients([a]) { flattenChannelsLast($0[0]) }
        let p = GradMode.withoutGrad { zeroPad2d(a, top: 0, bottom: 1, left: 1, right: 0) }
        XCTAssertEqual(p.shape, [2, 3, 5, 6])
        XCTAssertEqual(p.data[0], 0)
        XCTAssertEqual(p.data[1], a.data[0])
        checkGradients([a]) { zeroPad2d($0[0], top: 2, bottom: 0, left: 1, right: 3) }
        let img = rng.tensor([2, 3, 4, 4], in: 0...255)
        let caffe = GradMode.withoutGrad { channelAffine(img, source: [2, 1, 0], scale: [1, 1, 1], shift: [-103.939, -116.779, -123.68]) }
        XCTAssertEqual(caffe.data[5], img.data[2 * 16 + 5] - 103.939, accuracy: 1e-4)  // BGR: output channel 0 reads input channel 2
        checkGradients([img], step: 0.5) { channelAffine($0[0], source: [2, 1, 0], scale: [0.5, 2, -1], shift: [1, 2, 3]) }
    }
}
