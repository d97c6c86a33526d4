import XCTest
@testable import Engine
import TestSupport

/// The general N-D ops the ONNX importer runs on (numpy broadcasting, any axis): forward against the definition,
/// backward by finite differences for every input.
final class GeneralOpTests: XCTestCase {
    var rng = TestRNG(seed: 11)

    func testBroadcastBinaryOps() {
        let a = rng.tensor([2, 3, 4]), b = rng.tensor([3, 1]), c = rng.tensor([4])
        let y = GradMode.withoutGrad { binary(a, b, .mul) }
        XCTAssertEqual(y.shape, [2, 3, 4])
        XCTAssertEqual(y.data[1 * 12 + 2 * 4 + 3], a.data[1 * 12 + 2 * 4 + 3] * b.data[2], accuracy: 1e-6)
        XCTAssertEqual(broadcastShape([2, 1, 4], [3, 1]), [2, 3, 4])
        XCTAssertNil(broadcastShape([2, 3], [4]))
        for kind in [BinaryKind.add, .sub, .mul] {
            checkGradients([a, b]) { binary($0[0], $0[1], kind) }
            checkGradients([a, c]) { binary($0[0], $0[1], kind) }
        }
        let positive = Tensor(shape: [3, 1], data: [0.7, 1.3, 2.1], requiresGrad: true)
        checkGradients([a, positive]) { binary($0[0], $0[1], .div) }
    }

    func testPermuteReduceSoftmaxConcat() {
        let x = rng.tensor([2, 3, 4, 5])
        let p = GradMode.withoutGrad { permute(x, [2, 0, 3, 1]) }
        XCTAssertEqual(p.shape, [4, 2, 5, 3])
        let pi: Int = ((3 * 2 + 1) * 5 + 4) * 3 + 2, xi: Int = ((1 * 3 + 2) * 4 + 3) * 5 + 4
        XCTAssertEqual(p.data[pi], x.data[xi])
        checkGradients([x]) { permute($0[0], [2, 0, 3, 1]) }
        let m = GradMode.withoutGrad { reduceMean(x, axes: [1, -1], keepDims: false) }
        XCTAssertEqual(m.shape, [2, 4])
        var s: Float = 0
        for c in 0..<3 { for w in 0..<5 { s += x.data[((1 * 3 + c) * 4 + 2) * 5 + w] } }
        XCTAssertEqual(m.data[1 * 4 + 2], s / 15, accuracy: 1e-5)
        checkGradients([x]) { reduceMean($0[0], axes: [1, 3], keepDims: true) }
        checkGradients([x]) { reduceSum($0[0], axes: [0], keepDims: false) }
        let sm = GradMode.withoutGrad { softmax(x, axis: 2) }
        var total: Float = 0
        for h in 0..<4 { total += sm.data[((1 * 3 + 1) * 4 + h) * 5 + 2] }
        XCTAssertEqual(total, 1, accuracy: 1e-5)
        checkGradients([x]) { softmax($0[0], axis: 2) }
        let y = rng.tensor([2, 2, 4, 5])
        let cat = GradMode.withoutGrad { concat([x, y], axis: 1) }
        XCTAssertEqual(cat.shape, [2, 5, 4, 5])
        let ci: Int = ((1 * 5 + 4) * 4 + 3) * 5 + 1, yi: Int = ((1 * 2 + 1) * 4 + 3) * 5 + 1
        XCTAssertEqual(cat.data[ci], y.data[yi])
        checkGradients([x, y]) { concat($0, axis: 1) }
        checkGradients([rng.tensor([3, 2]), rng.tensor([3, 4])]) { concat($0, axis: -1) }
    }

    func testBatchedMatmulAndPointwise() {
        let a = rng.tensor([2, 3, 4]), b = rng.tensor([4, 5]), v = rng.tensor([4])
        let y = GradMode.withoutGrad { batchMatmul(a, b) }
        XCTAssertEqual(y.shape, [2, 3, 5])
        var s: Float = 0
        for k in 0..<4 { s += a.data[(1 * 3 + 2) * 4 + k] * b.data[k * 5 + 3] }
        XCTAssertEqual(y.data[(1 * 3 + 2) * 5 + 3], s, accuracy: 1e-5)
        checkGradients([a, b]) { batchMatmul($0[0], $0[1]) }
        checkGradients([a, v]) { batchMatmul($0[0], $0[1]) }
        checkGradients([rng.tensor([2, 1, 3, 4]), rng.tensor([3, 4, 2])]) { batchMatmul($0[0], $0[1]) }
        let x = Tensor(shape: [7], data: [-2, -0.7, -0.2, 0.3, 0.8, 1.6, 3], requiresGrad: true)
        XCTAssertEqual(GradMode.withoutGrad { clip(x, min: -0.5, max: 1) }.data, [-0.5, -0.5, -0.2, 0.3, 0.8, 1, 1])
        checkGradients([x], step: 1e-3) { clip($0[0], min: -0.5, max: 1) }
        checkGradients([x], step: 1e-3) { leakyRelu($0[0], alpha: 0.1) }
        checkGradients([x], step: 1e-3) { hardSigmoid($0[0], alpha: 0.2, beta: 0.5) }
    }

    func testPadAndSlice() {
        let x = rng.tensor([2, 3, 4])
        let p = GradMode.withoutGrad { pad(x, pads: [0, 1, -1, 0, 2, 1], value: 0.5) }
        XCTAssertEqual(p.shape, [2, 6, 4])
        XCTAssertEqual(p.data[0], 0.5)                                   // row 0 is padding
        XCTAssertEqual(p.data[(1 * 6 + 1) * 4 + 0], x.data[(1 * 3 + 0) * 4 + 1])  // the first column was cropped
        checkGradients([x]) { pad($0[0], pads: [0, 1, -1, 0, 2, 1], value: 0.5) }
        let s = GradMode.withoutGrad { slice(x, ranges: [(axis: 2, start: 3, end: -1, step: -2), (axis: 1, start: 1, end: 3, step: 1)]) }
        XCTAssertEqual(s.shape, [2, 2, 2])
        XCTAssertEqual(s.data[(1 * 2 + 1) * 2 + 1], x.data[(1 * 3 + 2) * 4 + 1])
        checkGradients([x]) { slice($0[0], ranges: [(axis: 2, start: 3, end: -1, step: -2), (axis: 0, start: 1, end: 2, step: 1)]) }
        let g = GradMode.withoutGrad { gather(x, axis: 1, indices: [2, 0, 2], indicesShape: [3]) }
        XCTAssertEqual(g.shape, [2, 3, 4])
        XCTAssertEqual(g.data[(1 * 3 + 2) * 4 + 3], x.data[(1 * 3 + 2) * 4 + 3])
        XCTAssertEqual(g.data[(0 * 3 + 1) * 4 + 1], x.data[(0 * 3 + 0) * 4 + 1])
        checkGradients([x]) { gather($0[0], axis: 1, indices: [2, 0, 2], indicesShape: [3, 1]) }  // a repeated index sums
    }
}
