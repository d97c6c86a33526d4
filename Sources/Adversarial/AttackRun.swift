import Foundation

/// One attack method. `run` returns the 8-bit adversarial image (planar, whole levels), found with the shared
/// machinery of `AttackRun`.
public protocol Attack {
    /// Short name used on the command line and in reports (`pgd`, `cw`, …).
    var name: String { get }
    /// The perturbation budget, or nil for minimal-perturbation attacks (Carlini–Wagner, DeepFool).
    var budget: Budget? { get }
    /// Settings worth reporting (step size, steps, restarts…).
    var settings: [String: Double] { get }
    func run(_ run: AttackRun) -> AttackOutcome
}

public struct AttackOutcome: Sendable {
    public var success: Bool
    /// The image to save (planar, whole levels in 0…255): the first that reached the goal, or — for minimal
    /// attacks — the smallest one that did; when nothing did, the last one tried.
    public var adversarial: [Float]
    /// Gradient steps taken before `adversarial` was found (0 = the first evaluated image already worked).
    public var steps: Int
    /// Extra figures an attack reports (Carlini–Wagner's constant, DeepFool's overshoot…).
    public var notes: [String: Double] = [:]
}

/// One step of an attack, for the report's history.
public struct StepRecord: Codable, Sendable {
    public var step: Int
    public var restart: Int
    public var loss: Float
    /// The goal's probability (target set's total, or 1 − p(original)) on the 8-bit image of this step.
    public var goalProbability: Float
    public var top1: Int
}

/// Shared state of one attack on one image: the problem, the goal, a seeded generator, the history of
/// evaluated 8-bit images, and progress reporting.
public final class AttackRun {
    public let problem: AttackProblem
    public let goal: Goal
    public let loss: LossKind
    public var rng: SeededGenerator
    public private(set) var history: [StepRecord] = []
    /// Called after every evaluation with (evaluations so far, expected total) — for progress and ETA.
    public var onEvaluation: ((Int, Int) -> Void)?
    /// Set by an attack to what it expects to spend (for the ETA).
    public var expectedEvaluations = 1
    /// Stop at the first saved-form image that reaches the goal (off only to time a fixed number of steps).
    public var earlyStop = true

    public init(problem: AttackProblem, goal: Goal, loss: LossKind = .crossEntropy, seed: UInt64) {
        self.problem = problem
        self.goal = goal
        self.loss = loss
        self.rng = SeededGenerator(seed: seed)
    }

    public var original: [Float] { problem.originalPlanar }

    /// Evaluates the 8-bit image `q` (planar, whole levels): whether it reaches the goal, the loss and its
    /// gradient with respect to the pixels.
    public func evaluate(_ q: [Float], step: Int, restart: Int = 0, lossKind: LossKind? = nil,
                         kappa: Float? = nil) -> (reached: Bool, loss: Float, gradient: [Float], logits: [Float]) {
        // The margin loss stops pushing at −κ; with a confidence to reach, it must keep pushing until then.
        let kappa = kappa ?? (goal.confidence > 0 ? Float.infinity : 0)
        var lossValue: Float = 0
        let image = Pixels.image(q, width: problem.width, height: problem.height)
        let (logits, grads) = problem.evaluate(image) { z in
            let (value, g) = goal.loss(logits: z, kind: lossKind ?? loss, kappa: kappa)
            lossValue = value
            return [g]
        }
        return (record(logits, loss: lossValue, step: step, restart: restart), lossValue, grads[0], logits)
    }

    /// Whether `q` reaches the goal, forward only (for the last image of a run, whose gradient is never used).
    public func check(_ q: [Float], step: Int, restart: Int = 0) -> Bool {
        let logits = problem.logits(Pixels.image(q, width: problem.width, height: problem.height))
        return record(logits, loss: goal.loss(logits: logits, kind: loss).value, step: step, restart: restart)
    }

    /// Records an evaluation in the history and reports progress; returns whether the goal is reached.
    func record(_ logits: [Float], loss: Float, step: Int, restart: Int) -> Bool {
        let p = Goal.softmax(logits)
        history.append(StepRecord(step: step, restart: restart, loss: loss, goalProbability: goal.progress(p), top1: Goal.argmax(p)))
        onEvaluation?(history.count, max(expectedEvaluations, history.count))
        return goal.isReached(logits: logits)
    }

    /// The loop every budgeted iterative attack shares: from `start`, up to `steps` updates; before each update
    /// the 8-bit image of the current iterate is evaluated (the gradient for the update comes from that same
    /// pass) and the run stops at the first one that reaches the goal. `update` moves the float iterate against
    /// the loss gradient; the budget's projection follows.
    public func iterate(from start: [Float], budget: Budget, steps: Int, restart: Int = 0,
                        update: (inout [Float], [Float]) -> Void) -> (found: [Float]?, last: [Float], steps: Int) {
        var x = start
        budget.project(&x, around: original)
        var q = budget.quantize(x, around: original)
        for t in 0..<steps {
            let e = evaluate(q, step: t, restart: restart)
            if e.reached && earlyStop { return (q, q, t) }
            update(&x, e.gradient)
            budget.project(&x, around: original)
            q = budget.quantize(x, around: original)
        }
        return (check(q, step: steps, restart: restart) ? q : nil, q, steps)
    }

    /// `iterate` from a fresh start per restart until one run reaches the goal (PGD's random restarts).
    public func withRestarts(_ restarts: Int, budget: Budget, steps: Int, start: (Int) -> [Float],
                             update: (inout [Float], [Float]) -> Void) -> AttackOutcome {
        expectedEvaluations = steps + 1
        var last = original, total = 0
        for restart in 0..<max(1, restarts) {
            let result = iterate(from: start(restart), budget: budget, steps: steps, restart: restart, update: update)
            total += result.steps
            if let found = result.found { return AttackOutcome(success: true, adversarial: found, steps: total) }
            last = result.last
            if restart + 1 < restarts { expectedEvaluations += steps + 1 }
        }
        return AttackOutcome(success: false, adversarial: last, steps: total)
    }

    /// For minimal attacks: the smallest multiple s ∈ (0, 1] of a successful perturbation whose 8-bit image still
    /// reaches the goal (bisection, forward passes only). Returns the image and s.
    public func shrink(_ found: [Float], step: Int, bisections: Int = 8) -> ([Float], Float) {
        let o = original
        var best = found, lo: Float = 0, hi: Float = 1, scale: Float = 1
        for _ in 0..<bisections {
            let s = (lo + hi) / 2
            let q = o.indices.map { min(max((o[$0] + s * (found[$0] - o[$0])).rounded(), 0), 255) }
            if check(q, step: step) { hi = s; best = q; scale = s } else { lo = s }
        }
        return (best, scale)
    }

    // Small vector helpers the attacks share.

    static func sign(_ v: Float) -> Float { v > 0 ? 1 : (v < 0 ? -1 : 0) }

    static func l2(_ v: [Float]) -> Float {
        var s: Double = 0
        for x in v { s += Double(x) * Double(x) }
        return Float(s.squareRoot())
    }

    static func l1(_ v: [Float]) -> Float {
        var s: Double = 0
        for x in v { s += Double(abs(x)) }
        return Float(s)
    }
}
