import Foundation

/// Carlini–Wagner L2 (2017): minimize ‖δ‖₂² + c · f(x) over w with x = 255 · (tanh w + 1) / 2 (the box is built
/// in), f their margin loss f6 with confidence κ, Adam on w, and a binary search on c: a success lowers c (a
/// smaller perturbation may do), a failure raises it. Keeps the smallest successful 8-bit image, so it runs all
/// its steps rather than stopping at the first success, then shrinks that perturbation by bisection on its scale
/// while the 8-bit image still works. No budget: it reports the L2 it needed.
public struct CarliniWagnerL2: Attack {
    public let name = "cw"
    public let budget: Budget? = nil
    public let steps: Int
    public let searchSteps: Int
    public let initialConstant: Double
    public let learningRate: Double
    public let kappa: Float

    public init(steps: Int = 100, searchSteps: Int = 5, initialConstant: Double = 1, learningRate: Double = 0.01, kappa: Double = 0) {
        self.steps = steps; self.searchSteps = searchSteps
        self.initialConstant = initialConstant; self.learningRate = learningRate; self.kappa = Float(kappa)
    }

    public var settings: [String: Double] {
        ["steps": Double(steps), "searchSteps": Double(searchSteps), "initialConstant": initialConstant,
         "learningRate": learningRate, "kappa": Double(kappa)]
    }

    public func run(_ run: AttackRun) -> AttackOutcome {
        run.expectedEvaluations = steps * searchSteps
        let o = run.original, n = o.count
        // w with tanh(w) reproducing the original (kept off ±1 so atanh stays finite).
        let w0 = o.map { Float(atanh(Double(min(max($0 / 127.5 - 1, -0.999999), 0.999999)))) }
        var lower = 0.0, upper = Double.infinity, c = initialConstant
        var best: [Float]? = nil, bestL2 = Double.infinity, bestConstant = 0.0, bestStep = 0
        var evaluated = 0
        var last = o
        for search in 0..<searchSteps {
            var w = w0
            var m = [Float](repeating: 0, count: n), v = [Float](repeating: 0, count: n)
            let b1: Float = 0.9, b2: Float = 0.999, lr = Float(learningRate)
            var succeeded = false, previous = Float.infinity
            for t in 0..<steps {
                var x = [Float](repeating: 0, count: n)
                for i in 0..<n { x[i] = 127.5 * (tanh(w[i]) + 1) }
                let q = x.map { $0.rounded() }
                last = q
                let e = run.evaluate(q, step: evaluated, restart: search, lossKind: .margin,
                                     kappa: run.goal.confidence > 0 ? .infinity : kappa)
                evaluated += 1
                let l2 = Distances(q, o).l2
                if e.reached {
                    succeeded = true
                    if l2 < bestL2 { best = q; bestL2 = l2; bestConstant = c; bestStep = evaluated - 1 }
                }
                // d/dx of ‖δ/255‖² + c·f, then through x(w); Adam on w.
                let total = Float(Double(l2 * l2)) + Float(c) * e.loss
                if t % max(steps / 10, 1) == 0 {
                    if total > previous * 0.9999 && t > 0 { break }  // no progress: CW's early abort
                    previous = total
                }
                let bc1 = 1 - pow(b1, Float(t + 1)), bc2 = 1 - pow(b2, Float(t + 1))
                for i in 0..<n {
                    let th = tanh(w[i])
                    let dx = 2 * (x[i] - o[i]) / (255 * 255) + Float(c) * e.gradient[i]
                    let dw = dx * 127.5 * (1 - th * th)
                    m[i] = b1 * m[i] + (1 - b1) * dw
                    v[i] = b2 * v[i] + (1 - b2) * dw * dw
                    w[i] -= lr * (m[i] / bc1) / ((v[i] / bc2).squareRoot() + 1e-8)
                }
            }
            if succeeded { upper = min(upper, c) } else { lower = max(lower, c) }
            if search + 1 < searchSteps {
                c = upper.isFinite ? (lower + upper) / 2 : c * 10
                run.expectedEvaluations = evaluated + steps * (searchSteps - search - 1)
            }
        }
        guard let found = best else {
            return AttackOutcome(success: false, adversarial: last, steps: evaluated, notes: ["constant": c])
        }
        // Refinement: the smallest multiple of the best perturbation whose 8-bit image still works (bisection,
        // forward passes only) — rounding may leave room the continuous optimum did not see.
        let (refined, scale) = run.shrink(found, step: evaluated)
        return AttackOutcome(success: true, adversarial: refined, steps: bestStep,
                             notes: ["constant": bestConstant, "refinedScale": Double(scale), "l2BeforeRefinement": bestL2])
    }
}
