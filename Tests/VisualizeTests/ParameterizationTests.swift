import Foundation
import TestSupport
import XCTest
@testable import Visualize

final class ParameterizationTests: XCTestCase {
    func testFFTAndPixelImagesAreValidRGBAndDifferentiable() {
        var gen = SeededGenerator(seed: 1)
        for batch in [1, 2] {
            let fft = FFTImage(batch: batch, height: 8, width: 6, sd: 0.5, generator: &gen)
            let img = fft.image()
            XCTAssertEqual(img.shape, [batch, 3, 8, 6])
            XCTAssertTrue(img.data.allSatisfy { $0 > 0 && $0 < 1 })
            checkGradients(fft.variables, samples: 30) { _ in fft.image() }
            let px = PixelImage(batch: batch, height: 5, width: 7, sd: 0.5, generator: &gen)
            checkGradients(px.variables, samples: 30) { _ in px.image() }
        }
    }

    func testSameSeedSameStart() {
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42), c = SeededGenerator(seed: 43)
        let x = FFTImage(height: 16, width: 16, generator: &a).image().data
        XCTAssertEqual(x, FFTImage(height: 16, width: 16, generator: &b).image().data)
        XCTAssertNotEqual(x, FFTImage(height: 16, width: 16, generator: &c).image().data)
    }

    func testAdamClimbsAndDescends() {
        // f(p) = −Σ (p − 3)²: ascending must reach 3; descending f's negative must too.
        for ascend in [true, false] {
            let p = Tensor(shape: [4], data: [0, 1, -2, 5], requiresGrad: true)
            var adam = Adam(learningRate: 0.1)
            for _ in 0..<500 {
                p.grad = nil
                let d = shift(p, by: -3)
                scale(sum(multiply(d, d)), by: ascend ? -1 : 1).backward()
                adam.update([p], ascend: ascend)
            }
            for v in p.data { XCTAssertEqual(v, 3, accuracy: 0.05, "ascend \(ascend)") }
        }
    }
}
