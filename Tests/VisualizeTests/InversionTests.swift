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

    func testObjectiveReadsOnlyItsLayer() {
        let o = Objective.embeddingCosine("pool", target: [1, 0], name: "photo")
        XCTAssertEqual(o.layers, ["pool"])
        XCTAssertEqual(o.description, "cos(pool, photo)")
        let v = o.evaluate(["pool": Tensor(shape: [1, 2], data: [3, 0])])
        XCTAssertEqual(v.data[0], 1, accuracy: 1e-6)
    }
}
