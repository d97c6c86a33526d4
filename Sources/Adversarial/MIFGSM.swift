import Foundation

/// Momentum Iterative FGSM (Dong et al. 2018): the signed step follows an accumulated, L1-normalized gradient
/// (decay μ = 1), which stabilizes the direction; step ε / steps from the original image.
public struct MIFGSM: Attack {
    public let name = "mifgsm"
    public let budget: Budget?
    let ball: Budget
    public let steps: Int
    public let stepSize: Float
    public let decay: Float

    public init(budget: Budget, steps: Int = 10, stepSize: Double? = nil, decay: Double = 1) {
        precondition(budget.norm == .linf, "MI-FGSM is an L∞ attack")
        self.budget = budget; ball = budget
        self.steps = steps
        self.stepSize = Float(stepSize ?? budget.epsilon / Double(steps))
        self.decay = Float(decay)
    }

    public var settings: [String: Double] { ["steps": Double(steps), "stepSize": Double(stepSize), "decay": Double(decay)] }

    public func run(_ run: AttackRun) -> AttackOutcome {
        run.expectedEvaluations = steps + 1
        var momentum = [Float](repeating: 0, count: run.original.count)
        let result = run.iterate(from: run.original, budget: ball, steps: steps) { x, g in
            let n = max(AttackRun.l1(g) / Float(g.count), 1e-20)
            for i in x.indices {
                momentum[i] = decay * momentum[i] + g[i] / n
                x[i] -= stepSize * AttackRun.sign(momentum[i])
            }
        }
        return AttackOutcome(success: result.found != nil, adversarial: result.found ?? result.last, steps: result.steps)
    }
}
