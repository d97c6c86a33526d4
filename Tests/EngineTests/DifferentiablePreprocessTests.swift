import Foundation
import XCTest
import TestSupport
@testable import Engine

/// The float, differentiable copy of the model's input pipeline (used by attacks on full-resolution photos).
final class DifferentiablePreprocessTests: XCTestCase {
    func testGradientMatchesFiniteDifferences() {
        var rng = TestRNG(seed: 3)
        // Downscale (47×31 → shorter side 20, crop 16) and upscale (12×9 → 20), both axes resampled.
        for (h, w, resize, crop) in [(31, 47, 20, 16), (9, 12, 20, 18), (20, 33, 20, 20)] {
            let x = rng.tensor([1, 3, h, w], in: 0...255)
            checkGradients([x], samples: 40, step: 0.5) { Preprocess.differentiableModelInput($0[0], resize: resize, crop: crop) }
        }
    }

    /// Against the exact (8-bit) pipeline on random images of odd sizes: the float version skips PIL's rounding
    /// after each pass, so it may differ by about a level.
    func testForwardMatchesExactPipeline() {
        var rng = TestRNG(seed: 5)
        for (h, w) in [(300, 451), (512, 512), (259, 260), (700, 333), (256, 256)] {
            // Photo-like content: smooth shading plus a little noise, so bicubic overshoot stays inside 0…255
            // (where PIL clips an overshoot the float version keeps it — a different, rarer difference).
            var pixels = [UInt8](repeating: 255, count: h * w * 4)
            let phases = rng.uniform(9, in: 0...6)
            for y in 0..<h { for x in 0..<w { for c in 0..<3 {
                let fy = Float(y) / 37, fx = Float(x) / 23
                let v = 128 + 50 * sin(fx + phases[c]) * cos(fy + phases[3 + c]) + 40 * sin(0.3 * fx + 0.7 * fy + phases[6 + c])
                    + Float.random(in: -4...4, using: &rng)
                pixels[(y * w + x) * 4 + c] = UInt8(min(250, max(5, v)).rounded())
            } } }
            let image = RGBAImage(width: w, height: h, pixels: pixels)
            let exact = Preprocess.modelInput(image)
            var planar = [Float](repeating: 0, count: 3 * h * w)
            for i in 0..<(h * w) { for c in 0..<3 { planar[c * h * w + i] = Float(pixels[i * 4 + c]) } }
            let float = Preprocess.differentiableModelInput(Tensor(shape: [1, 3, h, w], data: planar))
            XCTAssertEqual(float.shape, [1, 3, 224, 224])
            let worst = zip(exact.data, float.data).map { abs($0 - $1) * 128 }.max()!
            let mean = zip(exact.data, float.data).map { Double(abs($0 - $1) * 128) }.reduce(0, +) / Double(exact.count)
            print("differentiable preprocess \(w)x\(h): max |Δ| \(worst) levels, mean \(mean)")
            XCTAssertLessThanOrEqual(worst, 1.5, "\(w)x\(h)")
            XCTAssertLessThan(mean, 0.6, "\(w)x\(h)")
        }
    }
}
