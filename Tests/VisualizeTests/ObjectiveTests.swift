@testable import Engine
import Foundation
import TestSupport
import XCTest
@testable import Visualize

/// Objective ops and regularizers: finite differences, and the expression parser.
final class ObjectiveTests: XCTestCase {
    var rng = TestRNG(seed: 21)

    func testRegularizerGradients() {
        // Values spaced away from each other so no |difference| sits within the FD step of its kink.
        let x = Tensor(shape: [1, 2, 5, 6], data: (0..<60).map { Float(($0 * 37) % 60) / 60 }, requiresGrad: true)
        checkGradients([x], step: 1e-3) { totalVariation($0[0]) }
        checkGradients([x], step: 1e-3) { meanAbsoluteDeviation($0[0], from: 0.5013) }
        var r = Regularizers(); r.totalVariation = 2; r.l1 = 0.5; r.l2 = 3
        checkGradients([x], step: 1e-3) { r.penalty($0[0])! }
    }

    func testTotalVariationValue() {
        // A vertical edge in one 2×3 plane: |1-0| once per row horizontally, nothing vertically; mean over 6 pixels.
        let x = Tensor(shape: [1, 1, 2, 3], data: [0, 1, 1, 0, 1, 1])
        XCTAssertEqual(totalVariation(x).item, 2.0 / 6, accuracy: 1e-6)
        XCTAssertNil(Regularizers().penalty(x))
    }

    func testPairwiseCosineValueAndGradient() {
        let x = rng.tensor([3, 7])
        let rows = (0..<3).map { Array(x.data[($0 * 7)..<($0 * 7 + 7)]) }
        func cos(_ a: [Float], _ b: [Float]) -> Double {
            let dot = zip(a, b).map { Double($0 * $1) }.reduce(0, +)
            return dot / (a.map { Double($0 * $0) }.reduce(0, +).squareRoot() * b.map { Double($0 * $0) }.reduce(0, +).squareRoot())
        }
        let expected = 2 * (cos(rows[0], rows[1]) + cos(rows[0], rows[2]) + cos(rows[1], rows[2])) / 3
        XCTAssertEqual(Double(meanPairwiseCosine(x).item), expected, accuracy: 1e-5)
        checkGradients([x]) { meanPairwiseCosine($0[0]) }
    }

    func testDiversityObjectiveGradient() {
        let a = rng.tensor([3, 4, 3, 3])
        checkGradients([a], samples: 30) { Objective.diversity("l").evaluate(["l": $0[0]]) }
        // Identical images are as un-diverse as possible: −(N−1).
        let same = Tensor(shape: [2, 4, 3, 3], data: Array(a.data[0..<36]) + Array(a.data[0..<36]))
        XCTAssertEqual(Objective.diversity("l").evaluate(["l": same]).item, -1, accuracy: 1e-5)
    }

    func testLogSumExpAndClassObjectives() {
        let z = rng.tensor([2, 6], in: -3...3)
        checkGradients([z]) { logSumExp($0[0], columns: [1, 4, 5]) }
        checkGradients([z]) { Objective.classLogProbability([2, 3], name: "g").evaluate(["logits": $0[0]]) }
        // log Σ p over the group, by hand.
        let row = Array(z.data[0..<6]).map(Double.init)
        let total = row.map(exp).reduce(0, +)
        let expected = log((exp(row[2]) + exp(row[3])) / total)
        let got = Objective.classLogProbability([2, 3], name: "g").evaluate(["logits": Tensor(shape: [1, 6], data: Array(z.data[0..<6]))]).item
        XCTAssertEqual(Double(got), expected, accuracy: 1e-5)
    }

    func testDirectionObjective() {
        let a = rng.tensor([2, 3, 2, 2])
        let v: [Float] = [0.5, -1, 2]
        checkGradients([a]) { Objective.direction("l", v).evaluate(["l": $0[0]]) }
        var expected: Double = 0
        for b in 0..<2 { for c in 0..<3 { for i in 0..<4 { expected += Double(v[c] * a.data[(b * 3 + c) * 4 + i]) } } }
        XCTAssertEqual(Double(Objective.direction("l", v).evaluate(["l": a]).item), expected / 4, accuracy: 1e-5)
    }

    func testPerImageObjectivesSeeOnlyTheirImage() {
        let a = rng.tensor([2, 3, 2, 2])
        let obj = Objective.perImage([.channel("l", 0), .channel("l", 2)])
        let first: Float = (0..<4).map { a.data[$0] }.reduce(0, +) / 4
        let second: Float = (0..<4).map { a.data[20 + $0] }.reduce(0, +) / 4
        let want = first + second
        XCTAssertEqual(obj.evaluate(["l": a]).item, want, accuracy: 1e-5)
        checkGradients([a]) { obj.evaluate(["l": $0[0]]) }
    }

    // MARK: expressions

    let layers: [String: LayerInfo] = [
        "blocks.5": LayerInfo(name: "blocks.5", kind: .add, shape: [80, 14, 14], receptiveField: 99, jump: 16, start: 0, multiplyAdds: 0),
        "logits": LayerInfo(name: "logits", kind: .linear, shape: [1000], receptiveField: 0, jump: 0, start: 0, multiplyAdds: 0),
    ]
    func resolve(_ name: String) throws -> LayerInfo {
        guard let l = layers[name] else { throw ObjectiveExpression.ParseError(text: name, reason: "unknown layer") }
        return l
    }

    func testExpressionForms() throws {
        typealias T = ObjectiveExpression.Term
        XCTAssertEqual(try ObjectiveExpression.parse("blocks.5:17", resolve: resolve).map(\.0),
                       [T(weight: 1, layer: "blocks.5", channel: 17, position: nil)])
        XCTAssertEqual(try ObjectiveExpression.parse("blocks.5:17 - 0.5*blocks.5:3", resolve: resolve).map(\.0),
                       [T(weight: 1, layer: "blocks.5", channel: 17, position: nil), T(weight: -0.5, layer: "blocks.5", channel: 3, position: nil)])
        XCTAssertEqual(try ObjectiveExpression.parse("-blocks.5:2@3,4 + 2*logits:281", resolve: resolve).map(\.0),
                       [T(weight: -1, layer: "blocks.5", channel: 2, position: (3, 4)), T(weight: 2, layer: "logits", channel: 281, position: nil)])
        XCTAssertEqual(try ObjectiveExpression.parse("1e-3*blocks.5:1", resolve: resolve).map(\.0.weight), [0.001])
        let terms = try ObjectiveExpression.parse("blocks.5:17 - 0.5*blocks.5:3", resolve: resolve).map(\.0)
        XCTAssertEqual(ObjectiveExpression.objective(terms, kind: .channel).description, "blocks.5:17 - 0.5*blocks.5:3")
        // The combination evaluates as the weighted sum of channel means.
        let a = rng.tensor([1, 80, 2, 2], grad: false)
        let mean = { (c: Int) in (0..<4).map { a.data[c * 4 + $0] }.reduce(0, +) / 4 }
        XCTAssertEqual(ObjectiveExpression.objective(terms, kind: .channel).evaluate(["blocks.5": a]).item,
                       mean(17) - 0.5 * mean(3), accuracy: 1e-5)
    }

    func testExpressionErrorsNameTheProblem() {
        let cases: [(String, String)] = [
            ("", "empty"), ("blocks.5", "LAYER:CHANNEL"), ("blocks.5:80", "0…79"), ("blocks.5:x", "not a channel"),
            ("blocks.5:1 blocks.5:2", "not a channel"), ("blocks.5:1 +* 3", "LAYER:CHANNEL"), ("blocks.5:1@3", "position"),
            ("blocks.5:1@3,14", "outside"), ("foo:1", "unknown layer"), ("abc*blocks.5:1", "not a number"),
        ]
        for (text, needle) in cases {
            XCTAssertThrowsError(try ObjectiveExpression.parse(text, resolve: resolve), text) { error in
                XCTAssertTrue(String(describing: error).contains(needle), "\(text): \(error)")
            }
        }
    }
}
