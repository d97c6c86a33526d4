import Foundation
import XCTest
import TestSupport
@testable import Adversarial

/// Budgets, goals and losses without the model: property tests over random images and perturbations.
final class BudgetTests: XCTestCase {
    /// Whatever the iterate, the saved (quantized) image is whole levels in 0…255 and inside the budget
    /// measured against the original's pixels.
    func testQuantizedImageNeverLeavesTheBudget() {
        var rng = TestRNG(seed: 11)
        for trial in 0..<400 {
            let n = Int.random(in: 3...300, using: &rng)
            let original = (0..<n).map { _ in Float(Int.random(in: 0...255, using: &rng)) }
            let norm: Norm = trial % 2 == 0 ? .linf : .l2
            let eps = norm == .linf ? Double(Int.random(in: 1...16, using: &rng)) + (trial % 4 == 0 ? 0.6 : 0)
                                    : Double.random(in: 0.001...0.5, using: &rng)
            let budget = Budget(norm: norm, epsilon: eps)
            // Iterates well outside the ball and the box, as a big step would produce.
            let spread = Float(norm == .linf ? eps * 3 : eps * 255)
            let x = original.map { $0 + Float.random(in: -spread...spread, using: &rng) * (Bool.random(using: &rng) ? 1 : 20) }
            let q = budget.quantize(x, around: original)
            XCTAssertTrue(q.allSatisfy { $0 >= 0 && $0 <= 255 && $0 == $0.rounded() }, "trial \(trial): not whole levels in 0…255")
            XCTAssertTrue(budget.contains(q, around: original), "trial \(trial) \(norm) ε \(eps): \(Distances(q, original))")
            let d = Distances(q, original)
            if norm == .linf { XCTAssertLessThanOrEqual(Double(d.linfLevels), eps) } else { XCTAssertLessThanOrEqual(d.l2, eps + 1e-9) }
        }
    }

    func testProjectionIsIdempotentAndKeepsPointsInside() {
        var rng = TestRNG(seed: 12)
        for norm in Norm.allCases {
            let original = (0..<200).map { _ in Float(Int.random(in: 0...255, using: &rng)) }
            let budget = Budget(norm: norm, epsilon: norm == .linf ? 6 : 0.2)
            var x = original.map { $0 + Float.random(in: -40...40, using: &rng) }
            budget.project(&x, around: original)
            var again = x
            budget.project(&again, around: original)
            for i in x.indices { XCTAssertEqual(x[i], again[i], accuracy: 1e-3) }
            let inside = original.map { min(255, max(0, $0 + 0.5)) }
            var kept = inside
            budget.project(&kept, around: original)
            XCTAssertEqual(kept, inside, "\(norm): a point inside the budget moved")
        }
    }

    /// The losses' gradients with respect to the logits, by finite differences.
    func testGoalLossGradients() {
        var rng = TestRNG(seed: 13)
        let goals: [Goal] = [
            .targeted([281, 282, 285], query: "cat", description: "cats"),
            .targeted([7], query: "7", description: "7"),
            .untargeted(original: 3, name: "three"),
        ]
        for goal in goals {
            for kind in LossKind.allCases {
                var z = rng.uniform(1000, in: -4...4)
                // Clear maxima inside and outside the set, so ±0.01 never crosses the margin's kinks.
                z[goal.classes[0]] = 5
                z[900] = 6
                let (_, g) = goal.loss(logits: z, kind: kind, kappa: 100)
                for i in [goal.classes[0], 0, 500, 999] + (0..<6).map({ _ in Int.random(in: 0..<1000, using: &rng) }) {
                    var up = z, down = z
                    up[i] += 1e-2; down[i] -= 1e-2
                    let numeric = (goal.loss(logits: up, kind: kind, kappa: 100).value - goal.loss(logits: down, kind: kind, kappa: 100).value) / 2e-2
                    XCTAssertEqual(g[i], numeric, accuracy: 2e-3 + 0.02 * abs(numeric), "\(goal.kind) \(kind) logit \(i)")
                }
            }
        }
    }

    func testGoalSuccessAndConfidence() {
        var z = [Float](repeating: 0, count: 1000)
        z[281] = 3; z[282] = 3; z[5] = 3.5
        let cats = Goal.targeted([281, 282], query: "cat", description: "cats")
        XCTAssertFalse(cats.isReached(logits: z), "top-1 is class 5, not a cat")
        z[282] = 4
        XCTAssertTrue(cats.isReached(logits: z))
        var confident = cats
        confident.confidence = 0.9
        XCTAssertFalse(confident.isReached(logits: z), "cats hold far less than 90%")
        z[282] = 12
        XCTAssertTrue(confident.isReached(logits: z))
        let away = Goal.untargeted(original: 282, name: "tiger cat")
        XCTAssertFalse(away.isReached(logits: z))
        z[5] = 13
        XCTAssertTrue(away.isReached(logits: z))
    }

    func testDistances() {
        let d = Distances([10, 20, 30, 40], [10, 23, 26, 40])
        XCTAssertEqual(d.linfLevels, 4)
        XCTAssertEqual(d.l2, 5.0 / 255, accuracy: 1e-12)
        XCTAssertEqual(d.changedFraction, 0.5)
    }

    /// An L2 iterate on the sphere rounds to just outside it; the saved image must keep nearly all of the budget
    /// (rounding everything toward the original instead kept 15–56% in a simulation).
    func testL2QuantizationKeepsTheBudget() {
        var rng = TestRNG(seed: 14)
        let n = 3 * 224 * 224
        let original = (0..<n).map { _ in Float(Int.random(in: 20...235, using: &rng)) }
        for eps in [0.5, 2.0, 5.0] {
            let budget = Budget(norm: .l2, epsilon: eps)
            var x = zip(original, rng.uniform(n, in: -1...1)).map { $0 + $1 * 100 }
            budget.project(&x, around: original)  // on the sphere
            let q = budget.quantize(x, around: original)
            let kept = Distances(q, original).l2 / eps
            XCTAssertLessThanOrEqual(kept, 1 + 1e-9)
            XCTAssertGreaterThan(kept, eps < 1 ? 0.8 : 0.95, "ε \(eps): the saved image keeps \(kept) of the budget")
        }
    }
}
