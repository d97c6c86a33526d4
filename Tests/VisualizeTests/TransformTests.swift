import Foundation
import TestSupport
import XCTest
@testable import Visualize

final class TransformTests: XCTestCase {
    var rng = TestRNG(seed: 9)

    func testPadCropResampleGradients() {
        let x = rng.tensor([1, 2, 7, 9])
        checkGradients([x]) { pad($0[0], 2, value: 0.5) }
        checkGradients([x]) { crop($0[0], top: 1, left: 2, height: 4, width: 5) }
        // Bilinear weights are piecewise linear in x, so the sampler is exactly linear: FD is exact up to rounding.
        checkGradients([x], samples: 40) { affineResample($0[0], scale: 1.07, angle: 7 * .pi / 180, outHeight: 8, outWidth: 10) }
        checkGradients([x], samples: 40) { affineResample($0[0], scale: 0.9, angle: -0.1, outHeight: 6, outWidth: 8) }
    }

    func testIdentityResampleIsExact() {
        let x = rng.tensor([1, 3, 6, 5], grad: false)
        XCTAssertEqual(affineResample(x, scale: 1, angle: 0, outHeight: 6, outWidth: 5).data, x.data)
    }

    func testRotationBy90DegreesMovesPixels() {
        // A 3×3 image with one bright pixel at (0, 1) (top middle); a 90° rotation about the centre moves it
        // to a side middle, and nothing is lost.
        var data = [Float](repeating: 0, count: 9); data[1] = 1
        let y = affineResample(Tensor(shape: [1, 1, 3, 3], data: data), scale: 1, angle: .pi / 2, outHeight: 3, outWidth: 3)
        XCTAssertEqual(y.data.reduce(0, +), 1, accuracy: 1e-5)
        XCTAssertEqual(max(y.data[3], y.data[5]), 1, accuracy: 1e-5)
    }

    func testStandardTransformsShapeAndDeterminism() {
        let settings = TransformSettings()
        var a = SeededGenerator(seed: 5), b = SeededGenerator(seed: 5)
        let img = Tensor(shape: [1, 3, 32, 32], data: [Float](repeating: 0.3, count: 3 * 32 * 32))
        let da = settings.draw(&a), db = settings.draw(&b)
        XCTAssertEqual(da, db)
        let out = settings.apply(img, da)
        // 32 + 24 − 8, scaled, − 4.
        let side = Int((Double(48) * da.scale).rounded()) - 4
        XCTAssertEqual(out.shape, [1, 3, side, side])
        XCTAssertEqual(TransformSettings.none.apply(img, TransformSettings.none.draw(&a)).data, img.data)
    }
}
