import Foundation

/// Projected Gradient Descent in the L2 ball: a random start inside the ball, steps along the normalized
/// gradient, projection after each; restarts as for L∞. Step size defaults to 2.5 ε / steps.
public struct PGDL2: Attack {
    public let name = "pgd-l2"
    public let budget: Budget?
    let ball: Budget
    public let steps: Int
    /// In 8-bit levels (ε · 255 · 2.5 / steps by default).
    public let stepSize: Float
    public let restarts: Int
    public let randomStart: Bool

    public init(budget: Budget, steps: Int = 50, stepSize: Double? = nil, restarts: Int = 1, randomStart: Bool = true) {
        precondition(budget.norm == .l2, "PGDL2 is an L2 attack")
        self.budget = budget; ball = budget
        self.steps = steps
        self.stepSize = Float(stepSize.map { $0 * 255 } ?? 2.5 * budget.epsilon * 255 / Double(steps))
        self.restarts = max(1, restarts)
        self.randomStart = randomStart
    }

    public var settings: [String: Double] {
        ["steps": Double(steps), "stepSize": Double(stepSize) / 255, "restarts": Double(restarts), "randomStart": randomStart ? 1 : 0]
    }

    public func run(_ run: AttackRun) -> AttackOutcome {
        run.withRestarts(restarts, budget: ball, steps: steps, start: { _ in
            guard randomStart else { return run.original }
            // A random direction at a random radius inside the ball.
            let read = run.problem.isRead
            let d = zip(run.rng.normal(run.original.count), read).map { $1 ? $0 : 0 }
            let scale = ball.radius * Float.random(in: 0...1, using: &run.rng) / max(AttackRun.l2(d), 1e-12)
            return zip(run.original, d).map { $0 + $1 * scale }
        }, update: { x, g in
            let n = max(AttackRun.l2(g), 1e-12)
            for i in x.indices { x[i] -= stepSize * g[i] / n }
        })
    }
}
