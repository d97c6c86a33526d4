import Foundation

/// Fast Gradient Sign Method (Goodfellow et al. 2015): one step of size ε along the sign of the gradient (L∞),
/// or along the normalized gradient (L2, "FGM"). Targeted when the goal is: it descends the target loss.
public struct FGSM: Attack {
    public let name = "fgsm"
    public let budget: Budget?
    let epsilon: Budget

    public init(budget: Budget) { self.budget = budget; epsilon = budget }

    public var settings: [String: Double] { ["steps": 1] }

    public func run(_ run: AttackRun) -> AttackOutcome {
        run.expectedEvaluations = 2
        let r = epsilon.radius
        let result = run.iterate(from: run.original, budget: epsilon, steps: 1) { x, g in
            switch epsilon.norm {
            case .linf: for i in x.indices { x[i] -= r * AttackRun.sign(g[i]) }
            case .l2:
                let n = max(AttackRun.l2(g), 1e-12)
                for i in x.indices { x[i] -= r * g[i] / n }
            }
        }
        return AttackOutcome(success: result.found != nil, adversarial: result.found ?? result.last, steps: result.steps)
    }
}
