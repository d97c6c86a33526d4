import Foundation
import XCTest
import TestSupport
@testable import Visualize

/// The optimization loop on the real model (small and short, so it stays fast): the objective must climb,
/// and the same seed must reproduce the same pixels.
final class RenderTests: XCTestCase {
    func model() throws -> any VisionModel { try pretrainedModel() }

    func settings(seed: UInt64) -> RenderSettings {
        var s = RenderSettings()
        s.steps = 24; s.size = 64; s.seed = seed
        return s
    }

    func testChannelObjectiveClimbs() throws {
        let result = render(try model(), .channel("blocks.3", 7), settings(seed: 1))
        let start = result.history.prefix(3).reduce(0, +) / 3, end = result.history.suffix(3).reduce(0, +) / 3
        XCTAssertGreaterThan(end, start + 1, "history \(result.history)")
        XCTAssertEqual(result.image.shape, [1, 3, 64, 64])
        XCTAssertTrue(result.image.data.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    func testSameSeedSamePixels() throws {
        let a = render(try model(), .channel("blocks.2", 3), settings(seed: 7)).image.data
        let b = render(try model(), .channel("blocks.2", 3), settings(seed: 7)).image.data
        let c = render(try model(), .channel("blocks.2", 3), settings(seed: 8)).image.data
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
    }

    func testObjectiveAlgebra() throws {
        let acts = GradMode.withoutGrad { try! model().forward(Tensor(zeros: [1, 3, 64, 64]), capture: ["blocks.2"]) }
        let a = Objective.channel("blocks.2", 1), b = Objective.channel("blocks.2", 2)
        let combined = (a - 0.5 * b).evaluate(acts).item
        XCTAssertEqual(combined, a.evaluate(acts).item - 0.5 * b.evaluate(acts).item, accuracy: 1e-5)
        XCTAssertEqual((a - 0.5 * b).layers, ["blocks.2"])
    }
}
