import Foundation

/// Projected Gradient Descent in the L∞ ball (Madry et al. 2018): a uniform random start inside the ball, signed
/// gradient steps, projection after each; `restarts` fresh random starts if a run fails. Step size defaults to
/// 2.5 ε / steps (Madry's rule), but never below ε / 10 so an early-stopped run gets somewhere in a few steps.
public struct PGDLinf: Attack {
    public let name = "pgd"
    public let budget: Budget?
    let ball: Budget
    public let steps: Int
    public let stepSize: Float
    public let restarts: Int
    public let randomStart: Bool

    public init(budget: Budget, steps: Int = 50, stepSize: Double? = nil, restarts: Int = 1, randomStart: Bool = true) {
        precondition(budget.norm == .linf, "PGDLinf is an L∞ attack")
        self.budget = budget; ball = budget
        self.steps = steps
        self.stepSize = Float(stepSize ?? max(2.5 * budget.epsilon / Double(steps), budget.epsilon / 10))
        self.restarts = max(1, restarts)
        self.randomStart = randomStart
    }

    public var settings: [String: Double] {
        ["steps": Double(steps), "stepSize": Double(stepSize), "restarts": Double(restarts), "randomStart": randomStart ? 1 : 0]
    }

    public func run(_ run: AttackRun) -> AttackOutcome {
        let r = ball.radius
        return run.withRestarts(restarts, budget: ball, steps: steps, start: { _ in
            guard randomStart else { return run.original }
            let read = run.problem.isRead
            return run.original.indices.map { i in read[i] ? run.original[i] + Float.random(in: -r...r, using: &run.rng) : run.original[i] }
        }, update: { x, g in
            for i in x.indices { x[i] -= stepSize * AttackRun.sign(g[i]) }
        })
    }
}
