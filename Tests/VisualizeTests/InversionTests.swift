import Engine
import Foundation
import TestSupport
@testable import Visualize
import XCTest

final class InversionTests: XCTestCase {
    func testPooledCosineValueAndFiniteDifferences() throws {
        var rng = TestRNG(seed: 5)
        // Value: a constant map whose pooled vector is the target (cos 1), its negation (cos −1), orthogonal (0).
        let t: [Float] = [1, 2, 0]
        let same = Tensor(shape: [3, 3, 2, 2], data: [1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0,  -1, -1, -1, -1, -2, -2, -2, -2, 0, 0, 0, 0,
                                                     0, 0, 0, 0, 0, 0, 0, 0, 5, 4, 6, 5])
        XCTAssertEqual(pooledCosine(same, target: t).data[0], 1 - 1 + 0, accuracy: 1e-6)
        // Gradients by central differences, spatial and pooled layers.
        let target4 = rng.uniform(4)
        checkGradients([rng.tensor([2, 4, 3, 3], in: 0.1...1)]) { pooledCosine($0[0], target: target4) }
        let target6 = rng.uniform(6)
        checkGradients([rng.tensor([3, 6], in: -1...1)]) { pooledCosine($0[0], target: target6) }
    }

    func testWalkOrderValueAndFiniteDifferences() throws {
        // Three frames of a 2-channel pooled layer, a = e0, b = e1. Frame cosines to a: 1, 0.6, 0.8 (frame 2 nearer
        // to a than frame 1: one hinge of 0.2 + margin); to b: 0, 0.8, 0.6 (frame 2 farther from b: 0.2 + margin).
        let a: [Float] = [1, 0], b: [Float] = [0, 1]
        let x = Tensor(shape: [3, 2], data: [1, 0, 0.6, 0.8, 0.8, 0.6])
        XCTAssertEqual(pooledWalkOrder(x, a: a, b: b, margin: 0.05).data[0], -(0.2 + 0.05) * 2, accuracy: 1e-5)
        // An ordered walk with room to spare costs nothing, and nothing flows back.
        let ordered = Tensor(shape: [3, 2], data: [1, 0, 0.8, 0.6, 0, 1], requiresGrad: true)
        let v = pooledWalkOrder(ordered, a: a, b: b, margin: 0.05)
        XCTAssertEqual(v.data[0], 0)
        v.backward()
        XCTAssertEqual(ordered.grad ?? [], [Float](repeating: 0, count: 6))
        // Gradients by central differences: random frames (hinges on and off), spatial and pooled layers.
        var rng = TestRNG(seed: 9)
        let ta = rng.uniform(4), tb = rng.uniform(4)
        checkGradients([rng.tensor([5, 4, 3, 3], in: 0.1...1)]) { pooledWalkOrder($0[0], a: ta, b: tb, margin: 0.01) }
        checkGradients([rng.tensor([4, 4], in: -1...1)]) { pooledWalkOrder($0[0], a: ta, b: tb, margin: 0.02) }
    }

    func testObjectiveReadsOnlyItsLayer() {
        let o = Objective.embeddingCosine("pool", target: [1, 0], name: "photo")
        XCTAssertEqual(o.layers, ["pool"])
        XCTAssertEqual(o.description, "cos(pool, photo)")
        let v = o.evaluate(["pool": Tensor(shape: [1, 2], data: [3, 0])])
        XCTAssertEqual(v.data[0], 1, accuracy: 1e-6)
    }
}
