import Engine
import Foundation
import TestSupport
import XCTest
@testable import Visualize

/// Cairo drawing, blur and photo-initialized parameterizations.
final class FigureTests: XCTestCase {
    func testCanvasDrawsPicturesPixelExactAtTheirOwnSize() {
        var rng = TestRNG(seed: 3)
        let picture = RGBImage(width: 7, height: 5, pixels: (0..<105).map { _ in UInt8.random(in: 0...255, using: &rng) })
        let canvas = Canvas(width: 20, height: 10)
        canvas.draw(picture, x: 3, y: 2, width: 7, height: 5)
        let out = canvas.image()
        for y in 0..<5 { for x in 0..<7 { for c in 0..<3 { XCTAssertEqual(out[x + 3, y + 2, c], picture[x, y, c]) } } }
        XCTAssertEqual(out[0, 0, 0], 255)  // background stays white
    }

    func testGridAndPlotHaveContent() {
        let tile = RGBImage(width: 4, height: 4, pixels: [UInt8](repeating: 0, count: 48))
        let grid = Figures.grid((0..<5).map { Figures.Tile(image: tile, caption: ["unit \($0)", "act 1.0"]) }, tileSize: 40, title: "t")
        // 5 tiles → 3 columns × 2 rows of 40 px tiles with 12 px gaps.
        XCTAssertEqual(grid.width, 3 * 52 + 12)
        let dark = stride(from: 0, to: grid.pixels.count, by: 3).filter { grid.pixels[$0] < 50 }.count
        XCTAssertGreaterThan(dark, 5 * 40 * 40)  // the five black tiles, plus caption text
        let plot = Figures.plot([("objective", (0..<50).map { Float($0) }), ("penalty", [Float](repeating: 3, count: 50))], title: "p")
        XCTAssertEqual(plot.width, 640)
        let blue = stride(from: 0, to: plot.pixels.count, by: 3).filter { plot.pixels[$0 + 2] > 150 && plot.pixels[$0] < 100 }.count
        XCTAssertGreaterThan(blue, 200)  // the rising line was drawn
    }

    func testSpectralBlurMatchesGaussianOnSmoothImage() {
        // Blurring in the frequency domain lowers total variation and keeps the mean (DC response is 1).
        var g = SeededGenerator(seed: 4)
        let image = FFTImage(height: 32, width: 32, decorrelate: false, sd: 0.5, generator: &g)
        let before = GradMode.withoutGrad { image.image() }
        image.blur(sigma: 1.5)
        let after = GradMode.withoutGrad { image.image() }
        XCTAssertLessThan(totalVariation(after).item, 0.6 * totalVariation(before).item)
        let basis = SpectralBasis(height: 32, width: 32)
        XCTAssertEqual(basis.gaussianResponse(sigma: 1.5)[0], 1)
        // The pixel blur keeps a constant plane constant.
        let flat = Tensor(shape: [1, 1, 6, 6], data: [Float](repeating: 0.25, count: 36))
        XCTAssertEqual(gaussianBlur(flat, sigma: 1).data.map { ($0 * 1e4).rounded() }, [Float](repeating: 2500, count: 36))
    }

    func testPixelImageStartsFromThePhoto() {
        var rng = TestRNG(seed: 5)
        let photo = Tensor(shape: [1, 3, 5, 4], data: rng.uniform(60, in: 0.05...0.95))
        for decorrelate in [false, true] {
            let p = PixelImage(photo: photo, decorrelate: decorrelate)
            let back = GradMode.withoutGrad { p.image() }
            let worst = zip(back.data, photo.data).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst, 1e-4, "decorrelate \(decorrelate)")
        }
    }
}
