import Foundation

/// Basic Iterative Method / I-FGSM (Kurakin et al. 2017): FGSM in small steps from the original image, clipped to
/// the L∞ ball after each. Their defaults: step 1 level, min(ε + 4, 1.25 ε) steps.
public struct BIM: Attack {
    public let name = "bim"
    public let budget: Budget?
    let ball: Budget
    public let steps: Int
    public let stepSize: Float

    public init(budget: Budget, steps: Int? = nil, stepSize: Double? = nil) {
        precondition(budget.norm == .linf, "BIM is an L∞ attack")
        self.budget = budget; ball = budget
        self.steps = steps ?? Int(min(budget.epsilon + 4, 1.25 * budget.epsilon).rounded(.up))
        self.stepSize = Float(stepSize ?? 1)
    }

    public var settings: [String: Double] { ["steps": Double(steps), "stepSize": Double(stepSize)] }

    public func run(_ run: AttackRun) -> AttackOutcome {
        run.expectedEvaluations = steps + 1
        let result = run.iterate(from: run.original, budget: ball, steps: steps) { x, g in
            for i in x.indices { x[i] -= stepSize * AttackRun.sign(g[i]) }
        }
        return AttackOutcome(success: result.found != nil, adversarial: result.found ?? result.last, steps: result.steps)
    }
}
