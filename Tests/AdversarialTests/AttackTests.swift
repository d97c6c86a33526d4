import Foundation
import XCTest
import TestSupport
@testable import Adversarial

/// Every attack on the real model, kept short (a few steps on the 224² crop): the saved-form image stays in
/// its budget and in 0…255, a fixed seed reproduces it exactly, and the full-resolution path fools the exact
/// pipeline on a real photo.
final class AttackTests: XCTestCase {
    func model() throws -> any VisionModel { try pretrainedModel() }

    /// A sample photo `make setup` fetched (skip without it; under CI, fail).
    func samplePhoto(_ name: String) throws -> URL {
        let url = WeightStore.home.appendingPathComponent("samples/\(name)")
        guard FileManager.default.fileExists(atPath: url.path) else {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("missing \(url.path)") }
            throw XCTSkip("run `make setup`")
        }
        return url
    }

    /// A random smooth image (so the model is not certain about it) of the given size.
    func randomImage(_ rng: inout TestRNG, width: Int, height: Int) -> RGBAImage {
        let phases = rng.uniform(9, in: 0...6)
        var px = [UInt8](repeating: 255, count: width * height * 4)
        for y in 0..<height { for x in 0..<width { for c in 0..<3 {
            let v = 128 + 70 * sin(Float(x) / 17 + phases[c]) * cos(Float(y) / 29 + phases[3 + c]) + Float.random(in: -30...30, using: &rng)
            px[(y * width + x) * 4 + c] = UInt8(min(255, max(0, v)))
        } } }
        return RGBAImage(width: width, height: height, pixels: px)
    }

    func attacks(_ eps: Double) -> [Attack] {
        [FGSM(budget: Budget(norm: .linf, epsilon: eps)),
         BIM(budget: Budget(norm: .linf, epsilon: eps), steps: 3),
         PGDLinf(budget: Budget(norm: .linf, epsilon: eps), steps: 3, restarts: 2),
         PGDL2(budget: Budget(norm: .l2, epsilon: eps / 10), steps: 3),
         MIFGSM(budget: Budget(norm: .linf, epsilon: eps), steps: 3)]
    }

    /// Random images × random targets × every budgeted attack: the result is inside the budget, whole levels,
    /// and the same seed gives the same pixels (a different seed, for the randomized PGD, other pixels).
    func testBudgetRespectedAndDeterministicOnRandomImages() throws {
        let model = try model()
        var rng = TestRNG(seed: 21)
        for trial in 0..<2 {
            let image = randomImage(&rng, width: 224, height: 224)
            let target = Int.random(in: 0..<1000, using: &rng)
            let eps = Double(Int.random(in: 1...8, using: &rng))
            for attack in attacks(eps) {
                let problem = AttackProblem(model: model, image: image, region: .crop)
                func once(_ seed: UInt64) -> AttackOutcome {
                    attack.run(AttackRun(problem: problem, goal: .targeted([target], query: "\(target)", description: "t"), seed: seed))
                }
                let a = once(5), b = once(5)
                XCTAssertEqual(a.adversarial, b.adversarial, "\(attack.name) trial \(trial): same seed, different pixels")
                XCTAssertEqual(a.steps, b.steps)
                XCTAssertTrue(a.adversarial.allSatisfy { $0 >= 0 && $0 <= 255 && $0 == $0.rounded() }, attack.name)
                XCTAssertTrue(attack.budget!.contains(a.adversarial, around: problem.originalPlanar),
                              "\(attack.name) ε \(eps): \(Distances(a.adversarial, problem.originalPlanar))")
                if attack is PGDLinf && !a.success {
                    XCTAssertNotEqual(once(6).adversarial, a.adversarial, "pgd: another seed, another random start")
                }
            }
        }
    }

    /// The acceptance case in small: Debian opencv-doc's chicky_512.png (a Pekinese) attacked at its own size
    /// towards any domestic cat at ε = 4/255; the saved PNG, re-read and run through the exact pipeline, is a cat.
    func testFullResolutionTargetedAttackSurvivesSaving() throws {
        let model = try model()
        let url = try samplePhoto("chicky_512.png")
        let image = try ImageDecoder.decode(contentsOf: url)
        var request = AttackRequest(method: .pgd, target: .classes(indices: Array(281...285), query: "cat", description: "cats"), epsilon: 4)
        request.seed = 1
        let result = try AttackSession.attack(image, model: model, request: request)
        XCTAssertTrue(result.outcome.success)
        XCTAssertEqual(result.adversarial.width, 512)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vizlab-attack-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let report = try AttackOutput.write(result, request: request, input: url.path,
                                            directory: dir, stem: "chicky", model: model)
        let saved = try ImageDecoder.decode(contentsOf: dir.appendingPathComponent("chicky.adv.png"))
        let top = model.topK(GradMode.withoutGrad { model(Preprocess.modelInput(saved)) }, k: 1)[0][0]
        XCTAssertTrue((281...285).contains(top.index), "saved PNG classified as \(top.name)")
        XCTAssertTrue(report.success)
        XCTAssertLessThanOrEqual(Distances(Preprocess.compositeOnWhite(saved), Preprocess.compositeOnWhite(image)).linfLevels, 4)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("chicky.panel.png").path))
    }

    /// The minimal attacks and the ε search, short: deterministic, box respected, DeepFool refuses a target.
    func testMinimalAttacksAndEpsilonSearch() throws {
        let model = try model()
        var rng = TestRNG(seed: 23)
        let image = randomImage(&rng, width: 224, height: 224)
        let problem = AttackProblem(model: model, image: image, region: .crop)
        let top = Goal.argmax(problem.logits(problem.original))
        for attack in [CarliniWagnerL2(steps: 4, searchSteps: 2) as Attack, DeepFool(steps: 2, candidates: 4)] {
            let goal: Goal = attack is DeepFool ? .untargeted(original: top, name: "x") : .targeted([(top + 1) % 1000], query: "t", description: "t")
            let a = attack.run(AttackRun(problem: problem, goal: goal, seed: 3))
            let b = attack.run(AttackRun(problem: problem, goal: goal, seed: 3))
            XCTAssertEqual(a.adversarial, b.adversarial, attack.name)
            XCTAssertTrue(a.adversarial.allSatisfy { $0 >= 0 && $0 <= 255 && $0 == $0.rounded() }, attack.name)
        }
        var request = AttackRequest(method: .pgd, target: .random, epsilon: 8)
        request.steps = 20; request.region = .crop; request.searchMinimalEpsilon = true; request.seed = 2
        let result = try AttackSession.attack(image, model: model, request: request)
        let trials = try XCTUnwrap(result.trials)
        XCTAssertEqual(trials.first?.epsilon, 8)
        XCTAssertTrue(result.outcome.success, "a random smooth image falls to PGD at 8/255: \(trials)")
        XCTAssertEqual(result.epsilon, trials.filter(\.success).map(\.epsilon).min())
        XCTAssertLessThan(result.epsilon!, 8, "bisection should find a smaller ε: \(trials)")
        XCTAssertLessThanOrEqual(Distances(Pixels.planar(result.adversarial), problem.originalPlanar).linfLevels, Int(result.epsilon!))
        var deepfool = AttackRequest(method: .deepfool, target: .random, epsilon: 1)
        deepfool.region = .crop
        XCTAssertThrowsError(try AttackSession.attack(image, model: model, request: deepfool))
    }

    /// The gradient an attack follows (straight through the 8-bit rounding) is the true gradient of the float
    /// pipeline where no rounding happens: the crop region at whole-level pixels.
    func testPixelGradientMatchesFiniteDifferences() throws {
        let model = try model()
        var rng = TestRNG(seed: 24)
        let image = randomImage(&rng, width: 224, height: 224)
        let problem = AttackProblem(model: model, image: image, region: .crop)
        let goal = Goal.targeted([281], query: "281", description: "tabby")
        let (_, grads) = problem.evaluate(problem.original) { z in [goal.loss(logits: z, kind: .crossEntropy).gradient] }
        func loss(_ planar: [Float]) -> Float {
            let input = Tensor(shape: [1, 3, 224, 224], data: planar.map { ($0 - 127) / 128 })
            return goal.loss(logits: GradMode.withoutGrad { model(input) }.data, kind: .crossEntropy).value
        }
        // Single pixels move the loss by less than float32 resolves, so compare directional derivatives: along
        // sign(g) (the direction L∞ attacks take) and along a random ±1 direction.
        let g = grads[0]
        let random = (0..<g.count).map { _ in Bool.random(using: &rng) ? Float(1) : -1 }
        for (name, d) in [("sign(g)", g.map { $0 > 0 ? Float(1) : -1 }), ("random", random)] {
            let h: Float = 0.01
            let up = zip(problem.originalPlanar, d).map { $0 + h * $1 }, down = zip(problem.originalPlanar, d).map { $0 - h * $1 }
            let numeric = Double(loss(up) - loss(down)) / Double(2 * h)
            let analytic = zip(g, d).reduce(0.0) { $0 + Double($1.0 * $1.1) }
            print("directional derivative along \(name): numeric \(numeric), analytic \(analytic)")
            XCTAssertEqual(numeric, analytic, accuracy: 0.05 * abs(analytic) + 1e-3, name)
        }
    }

    /// DeepFool and Carlini–Wagner actually fool the model on a real photo (a sign error in either would not),
    /// and CW's refined result stays small.
    func testDeepFoolAndCarliniWagnerSucceedOnAPhoto() throws {
        let model = try model()
        let url = try samplePhoto("chelsea.png")
        let problem = AttackProblem(model: model, image: try ImageDecoder.decode(contentsOf: url), region: .crop)
        let z = problem.logits(problem.original)
        let order = z.indices.sorted { z[$0] > z[$1] }
        let deepfool = DeepFool(steps: 10, candidates: 4).run(AttackRun(problem: problem, goal: .untargeted(original: order[0], name: "tiger cat"), seed: 1))
        XCTAssertTrue(deepfool.success, "DeepFool, 10 steps")
        let d = Distances(deepfool.adversarial, problem.originalPlanar)
        XCTAssertLessThan(d.l2, 1, "DeepFool moves to the nearest boundary: \(d)")
        let cw = CarliniWagnerL2(steps: 30, searchSteps: 2).run(AttackRun(problem: problem, goal: .targeted([order[5]], query: "6th", description: "sixth class"), seed: 1))
        XCTAssertTrue(cw.success, "CW towards the sixth most likely class")
        XCTAssertLessThan(Distances(cw.adversarial, problem.originalPlanar).l2, 3)
        XCTAssertLessThanOrEqual(cw.notes["refinedScale"] ?? 2, 1)
    }
}
