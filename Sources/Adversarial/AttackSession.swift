import Foundation

/// What the user asked for, independent of the image.
public struct AttackRequest: Sendable {
    public enum Method: String, CaseIterable, Sendable {
        case fgsm, bim, pgd, pgdL2 = "pgd-l2", mifgsm, cw, deepfool
    }
    public enum Target: Sendable, Equatable {
        case none
        case classes(indices: [Int], query: String, description: String)
        case leastLikely
        case random
    }

    public var method: Method
    public var target: Target
    public var region: AttackRegion = .full
    /// L∞ in levels or L2 on the 0–1 scale (see `Budget`); ignored by cw / deepfool unless `budgetForMinimal`.
    public var epsilon: Double
    public var steps: Int?
    /// L∞: levels; L2: 0–1 scale.
    public var stepSize: Double?
    public var restarts: Int = 1
    /// PGD: start from a uniform random point in the ball (Madry et al.) or from the original.
    public var randomStart = true
    public var confidence: Float = 0
    public var loss: LossKind = .crossEntropy
    public var seed: UInt64 = 0
    public var searchMinimalEpsilon = false
    /// Carlini–Wagner: binary-search steps on c, the first c, Adam's learning rate (in tanh space).
    public var searchSteps = 5
    public var initialConstant = 1.0
    public var learningRate = 0.01

    public init(method: Method, target: Target, epsilon: Double) {
        self.method = method; self.target = target; self.epsilon = epsilon
    }

    public var norm: Norm { method == .pgdL2 || method == .cw || method == .deepfool ? .l2 : .linf }

    /// The attack object for a given ε.
    public func makeAttack(epsilon eps: Double) -> Attack {
        switch method {
        case .fgsm: return FGSM(budget: Budget(norm: .linf, epsilon: eps))
        case .bim: return BIM(budget: Budget(norm: .linf, epsilon: eps), steps: steps, stepSize: stepSize)
        case .pgd: return PGDLinf(budget: Budget(norm: .linf, epsilon: eps), steps: steps ?? 50, stepSize: stepSize, restarts: restarts, randomStart: randomStart)
        case .pgdL2: return PGDL2(budget: Budget(norm: .l2, epsilon: eps), steps: steps ?? 50, stepSize: stepSize, restarts: restarts, randomStart: randomStart)
        case .mifgsm: return MIFGSM(budget: Budget(norm: .linf, epsilon: eps), steps: steps ?? 10, stepSize: stepSize)
        case .cw: return CarliniWagnerL2(steps: steps ?? 100, searchSteps: searchSteps, initialConstant: initialConstant, learningRate: learningRate)
        case .deepfool: return DeepFool(steps: steps ?? 50)
        }
    }

    public var isBudgeted: Bool { method != .cw && method != .deepfool }
}

public enum AttackError: Error, CustomStringConvertible {
    case alreadyReached(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case let .alreadyReached(s), let .unsupported(s): return s
        }
    }
}

/// The result of attacking one image, before and after it is written to disk.
public struct AttackResult {
    public var adversarial: RGBImage
    public var outcome: AttackOutcome
    public var goal: Goal
    public var attack: Attack
    public var epsilon: Double?
    public var trials: [MinimalEpsilon.Trial]?
    public var history: [StepRecord]
    public var gradientEvaluations: Int
    public var seconds: Double
    public var originalTop: [ClassScore]
    public var originalLogits: [Float]
    /// The opaque 8-bit image that was attacked (the photo, or its 224² crop).
    public var original: RGBImage
}

/// Runs one request on one image: resolves the goal from the original's prediction, refuses a goal that is
/// already met, runs the attack (or the ε search), and returns the 8-bit adversarial image.
public enum AttackSession {
    public static func attack(_ image: RGBAImage, model: any VisionModel, request: AttackRequest,
                              progress: ((Int, Int) -> Void)? = nil) throws -> AttackResult {
        let start = Date()
        let problem = AttackProblem(model: model, image: image, region: request.region)
        let originalLogits = problem.logits(problem.original)
        let top = model.topK(Tensor(shape: [1, originalLogits.count], data: originalLogits), k: 5)[0]
        let goal = try makeGoal(request, originalLogits: originalLogits, labels: model.labels)
        if goal.isReached(logits: originalLogits) {
            switch goal.kind {
            case .targeted:
                throw AttackError.alreadyReached("already classified as \(top[0].name) (\(top[0].index)), in the target \(goal.description); nothing to do")
            case .untargeted:
                throw AttackError.unsupported("untargeted goal is met by the original (confidence \(goal.confidence) too low?)")
            }
        }
        if request.method == .deepfool && goal.kind == .targeted {
            throw AttackError.unsupported("deepfool is untargeted: drop --target, or use pgd / cw for a target")
        }
        var evaluations = 0
        func attempt(_ eps: Double) -> ((Attack, AttackRun), AttackOutcome) {
            let attack = request.makeAttack(epsilon: eps)
            let run = AttackRun(problem: problem, goal: goal, loss: request.loss, seed: request.seed)
            run.onEvaluation = progress
            let outcome = attack.run(run)
            evaluations = problem.gradientEvaluations
            return ((attack, run), outcome)
        }
        var trials: [MinimalEpsilon.Trial]? = nil
        var epsilon: Double? = request.isBudgeted ? request.epsilon : nil
        let chosen: (Attack, AttackRun), outcome: AttackOutcome
        if request.searchMinimalEpsilon && request.isBudgeted {
            let s = MinimalEpsilon.search(maxEpsilon: request.epsilon, norm: request.norm, attempt: attempt)
            (chosen, outcome, trials, epsilon) = (s.result, s.outcome, s.trials, s.epsilon)
        } else {
            (chosen, outcome) = attempt(request.epsilon)
        }
        let adversarial = Pixels.image(outcome.adversarial, width: problem.width, height: problem.height)
        return AttackResult(adversarial: adversarial, outcome: outcome, goal: goal, attack: chosen.0, epsilon: epsilon,
                            trials: trials, history: chosen.1.history, gradientEvaluations: evaluations,
                            seconds: Date().timeIntervalSince(start), originalTop: top, originalLogits: originalLogits, original: problem.original)
    }

    static func makeGoal(_ request: AttackRequest, originalLogits z: [Float], labels: ImageNetLabels) throws -> Goal {
        let top = Goal.argmax(z)
        switch request.target {
        case .none:
            return .untargeted(original: top, name: labels.names[top], confidence: request.confidence)
        case let .classes(indices, query, description):
            return .targeted(indices, query: query, description: description, confidence: request.confidence)
        case .leastLikely:
            var low = 0
            for i in z.indices where z[i] < z[low] { low = i }
            return .targeted([low], query: "least-likely", description: "\(labels.names[low]) (\(low)), the least likely class", confidence: request.confidence)
        case .random:
            var rng = SeededGenerator(seed: request.seed &+ 0x5EED)
            var pick = top
            while pick == top { pick = Int.random(in: 0..<z.count, using: &rng) }
            return .targeted([pick], query: "random", description: "\(labels.names[pick]) (\(pick)), drawn at random", confidence: request.confidence)
        }
    }
}
