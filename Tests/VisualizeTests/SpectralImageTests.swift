import Foundation
import TestSupport
import XCTest
@testable import Visualize

final class SpectralImageTests: XCTestCase {
    /// numpy-style rfft2 of a real [H, W] image, computed from the definition in double precision.
    func rfft2(_ x: [Double], h: Int, w: Int) -> (re: [Float], im: [Float]) {
        let fw = w / 2 + 1
        var re = [Float](), im = [Float]()
        for fy in 0..<h { for fx in 0..<fw {
            var sr = 0.0, si = 0.0
            for y in 0..<h { for n in 0..<w {
                let a = -2 * Double.pi * (Double(fy * y) / Double(h) + Double(fx * n) / Double(w))
                sr += x[y * w + n] * cos(a); si += x[y * w + n] * sin(a)
            } }
            re.append(Float(sr)); im.append(Float(si))
        } }
        return (re, im)
    }

    func testInverseRoundTripsTheForwardTransform() {
        var rng = TestRNG(seed: 3)
        for (h, w) in [(6, 8), (5, 7), (7, 6), (16, 14)] {
            let image = (0..<(h * w)).map { _ in Double.random(in: -1...1, using: &rng) }
            let (re, im) = rfft2(image, h: h, w: w)
            let basis = SpectralBasis(height: h, width: w)
            let fw = basis.spectrumWidth
            let back = basis.inverse(Tensor(shape: [1, 2, h, 1, fw], data: re + im))
            XCTAssertEqual(back.shape, [1, 1, h, w])
            let worst = zip(back.data, image).map { abs(Double($0) - $1) }.max()!
            XCTAssertLessThan(worst, 1e-4, "\(h)x\(w): irfft2(rfft2(x)) differs from x by \(worst)")
        }
    }

    func testInverseGradient() {
        var rng = TestRNG(seed: 4)
        for (h, w) in [(6, 8), (5, 7)] {
            let basis = SpectralBasis(height: h, width: w)
            let spectrum = rng.tensor([2, 2, h, 3, basis.spectrumWidth])
            let scale = rng.uniform(h * basis.spectrumWidth, in: 0.5...2)
            checkGradients([spectrum], samples: 40) { basis.inverse($0[0], scale: scale) }
        }
    }

    func testChannelsAndImagesAreIndependentTransforms() {
        // Image b, channel c of the batched op equals the single-plane transform of its own spectrum.
        var rng = TestRNG(seed: 6)
        let (h, w) = (5, 8), basis = SpectralBasis(height: h, width: w), fw = basis.spectrumWidth
        let spectrum = rng.tensor([2, 2, h, 3, fw], grad: false)
        let all = basis.inverse(spectrum)
        for b in 0..<2 { for c in 0..<3 {
            var single = [Float]()
            for part in 0..<2 { for row in 0..<h { for f in 0..<fw { single.append(spectrum.data[(((b * 2 + part) * h + row) * 3 + c) * fw + f]) } } }
            let one = basis.inverse(Tensor(shape: [1, 2, h, 1, fw], data: single))
            let part = Array(all.data[((b * 3 + c) * h * w)..<((b * 3 + c + 1) * h * w)])
            XCTAssertLessThan(zip(part, one.data).map { abs($0 - $1) }.max()!, 1e-5)
        } }
    }

    func testFrequencyScaleMatchesLucid() {
        // 1 / max(|f|, 1/max(H, W)) · √(H·W); DC uses the floor 1/max(H, W).
        let basis = SpectralBasis(height: 4, width: 6)
        let s = basis.frequencyScale()
        XCTAssertEqual(s.count, 4 * 4)
        XCTAssertEqual(s[0], Float(6 * 24.0.squareRoot()), accuracy: 1e-4)
        // fy = 1 (1/4), fx = 0: |f| = 0.25.
        XCTAssertEqual(s[4], Float(4 * 24.0.squareRoot()), accuracy: 1e-4)
        // fy = 2 is numpy's -0.5 (Nyquist), fx = 3 (0.5): |f| = √0.5.
        XCTAssertEqual(s[2 * 4 + 3], Float(24.0.squareRoot() / 0.5.squareRoot()), accuracy: 1e-4)
    }
}
