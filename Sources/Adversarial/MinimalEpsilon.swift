import Foundation

/// `--min-eps`: the smallest budget at which an attack still succeeds, by bisection between 0 and the given ε
/// (whole levels for L∞, ε/64 resolution for L2). Success is not strictly monotone in ε for a fixed seed, so this
/// finds a small successful ε, not a certified minimum; every trial is reported.
public enum MinimalEpsilon {
    public struct Trial: Codable, Sendable {
        public var epsilon: Double
        public var success: Bool
        public var steps: Int
    }

    /// `attempt(ε)` runs the attack at that budget. Returns the smallest successful ε's result, or the result at
    /// `maxEpsilon` when even that fails.
    public static func search<R>(maxEpsilon: Double, norm: Norm, attempt: (Double) -> (R, AttackOutcome))
        -> (epsilon: Double, result: R, outcome: AttackOutcome, trials: [Trial]) {
        var trials: [Trial] = []
        func run(_ eps: Double) -> (R, AttackOutcome) {
            let r = attempt(eps)
            trials.append(Trial(epsilon: eps, success: r.1.success, steps: r.1.steps))
            return r
        }
        var best = run(maxEpsilon), bestEps = maxEpsilon
        guard best.1.success else { return (maxEpsilon, best.0, best.1, trials) }
        var lo = 0.0, hi = maxEpsilon
        switch norm {
        case .linf:
            while hi - lo > 1 {
                let mid = ((lo + hi) / 2).rounded(.down)
                if mid <= lo { break }  // only whole levels count
                let r = run(mid)
                if r.1.success { hi = mid; best = r; bestEps = mid } else { lo = mid }
            }
        case .l2:
            for _ in 0..<6 {
                let mid = (lo + hi) / 2
                let r = run(mid)
                if r.1.success { hi = mid; best = r; bestEps = mid } else { lo = mid }
            }
        }
        return (bestEps, best.0, best.1, trials)
    }
}
