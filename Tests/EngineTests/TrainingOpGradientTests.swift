import XCTest
@testable import Engine
import TestSupport

/// The training-only ops' backward against central finite differences, for inputs and parameters.
final class TrainingOpGradientTests: XCTestCase {
    var rng = TestRNG(seed: 7)

    func testFrozenBatchNormLearnsScaleAndShift() {
        let x = rng.tensor([3, 4, 5, 6]), gamma = rng.tensor([4], in: 0.5...1.5), beta = rng.tensor([4])
        let mean = rng.uniform(4), variance = rng.uniform(4, in: 0.2...2)
        checkGradients([x, gamma, beta]) { batchNorm($0[0], gamma: $0[1], beta: $0[2], mean: mean, variance: variance, eps: 1e-3) }
        // Same values as the eval-mode op it generalizes.
        let a = batchNorm(x, gamma: gamma, beta: beta, mean: mean, variance: variance, eps: 1e-3)
        let b = batchNorm(x, BatchNormParameters(gamma: gamma.data, beta: beta.data, mean: mean, variance: variance, eps: 1e-3))
        for (u, v) in zip(a.data, b.data) { XCTAssertEqual(u, v, accuracy: 1e-5) }
    }

    func testBatchNormTrainingThroughTheStatistics() {
        let x = rng.tensor([4, 3, 3, 5], in: -2...2), gamma = rng.tensor([3], in: 0.5...1.5), beta = rng.tensor([3])
        checkGradients([x, gamma, beta], step: 1e-2, tolerance: 3e-2) { batchNormTraining($0[0], gamma: $0[1], beta: $0[2], eps: 1e-5).output }
        // Rank 2 (after a dense layer) too.
        let y = rng.tensor([6, 5])
        let g2 = rng.tensor([5], in: 0.5...1.5), b2 = rng.tensor([5])
        checkGradients([y, g2, b2]) { batchNormTraining($0[0], gamma: $0[1], beta: $0[2], eps: 1e-5).output }
        // Statistics: per channel mean 0, variance 1 before the affine.
        let (out, mean, variance) = batchNormTraining(x, gamma: Tensor(shape: [3], data: [1, 1, 1]), beta: Tensor(zeros: [3]), eps: 0)
        XCTAssertEqual(mean.count, 3); XCTAssertEqual(variance.count, 3)
        for c in 0..<3 {
            var vals: [Float] = []
            for n in 0..<4 { for i in 0..<15 { vals.append(out.data[(n * 3 + c) * 15 + i]) } }
            let m = vals.reduce(0, +) / Float(vals.count)
            let v = vals.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Float(vals.count)
            XCTAssertEqual(m, 0, accuracy: 1e-5); XCTAssertEqual(v, 1, accuracy: 1e-4)
        }
    }

    func testDropoutMaskIsSeededAndItsGradientMatches() {
        let x = rng.tensor([8, 50])
        // Finite differences need the same mask on every call: a fresh generator with one seed each time.
        checkGradients([x]) { t in var g = SeededGenerator(seed: 3); return dropout(t[0], rate: 0.5, using: &g) }
        var g1 = SeededGenerator(seed: 3), g2 = SeededGenerator(seed: 3), g3 = SeededGenerator(seed: 4)
        let a = dropout(x, rate: 0.5, using: &g1), b = dropout(x, rate: 0.5, using: &g2), c = dropout(x, rate: 0.5, using: &g3)
        XCTAssertEqual(a.data, b.data)
        XCTAssertNotEqual(a.data, c.data)
        let kept = a.data.enumerated().filter { $0.element != 0 }
        XCTAssertEqual(Double(kept.count) / 400, 0.5, accuracy: 0.08)
        for (i, v) in kept { XCTAssertEqual(v, 2 * x.data[i], accuracy: 1e-6) }
    }

    func testSoftmaxCrossEntropyWeightedAndNot() {
        let logits = rng.tensor([5, 4], in: -3...3), labels = [0, 3, 1, 1, 2]
        checkGradients([logits]) { softmaxCrossEntropy($0[0], labels: labels).loss }
        checkGradients([logits]) { softmaxCrossEntropy($0[0], labels: labels, classWeights: [0.5, 2, 1, 3]).loss }
        // Against log-softmax by hand.
        let ls = logSoftmax(logits)
        let expected = -labels.enumerated().map { Double(ls.data[$0.offset * 4 + $0.element]) }.reduce(0, +) / 5
        XCTAssertEqual(Double(softmaxCrossEntropy(logits, labels: labels).loss.item), expected, accuracy: 1e-5)
        let w: [Float] = [0.5, 2, 1, 3]
        let num = labels.enumerated().map { -Double(w[$0.element]) * Double(ls.data[$0.offset * 4 + $0.element]) }.reduce(0, +)
        let den = labels.map { Double(w[$0]) }.reduce(0, +)
        XCTAssertEqual(Double(softmaxCrossEntropy(logits, labels: labels, classWeights: w).loss.item), num / den, accuracy: 1e-5)
    }

    /// A dense layer's parameters get gradients (the head), and a conv's weight and bias (fine-tuning).
    func testParameterGradientsOfTheTrainingPath() {
        let x = rng.tensor([4, 12], grad: false), w = rng.tensor([6, 12]), b = rng.tensor([6])
        checkGradients([x, w, b]) { softmaxCrossEntropy(linear($0[0], $0[1], bias: $0[2]), labels: [0, 5, 2, 2]).loss }
        let xi = rng.tensor([2, 3, 6, 6], grad: false), cw = rng.tensor([4, 3, 3, 3]), cb = rng.tensor([4])
        let gamma = rng.tensor([4], in: 0.5...1.5), beta = rng.tensor([4])
        checkGradients([cw, cb, gamma, beta], tolerance: 3e-2) { p in
            let y = conv2d(xi, p[0], bias: p[1], padding: .same)
            return swish(batchNorm(y, gamma: p[2], beta: p[3], mean: [0.1, -0.2, 0, 0.3], variance: [1, 2, 0.5, 1], eps: 1e-3))
        }
    }
}
