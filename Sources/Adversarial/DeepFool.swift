import Foundation

/// DeepFool (Moosavi-Dezfooli et al. 2016), untargeted, L2: linearize the model around the current image, step
/// to the nearest of the `candidates` top classes' decision boundaries, repeat; the total step is scaled by
/// (1 + overshoot). Each iteration takes one batched forward+backward for the candidates' gradients. Steps that
/// rounding to 8 bits would erase are grown (doubled) until the saved image changes. No budget unless one is given
/// (then the iterate is projected into it).
public struct DeepFool: Attack {
    public let name = "deepfool"
    public let budget: Budget?
    public let steps: Int
    public let candidates: Int
    public let overshoot: Float

    public init(steps: Int = 50, candidates: Int = 10, overshoot: Double = 0.02, budget: Budget? = nil) {
        self.steps = steps; self.candidates = max(2, candidates); self.overshoot = Float(overshoot); self.budget = budget
    }

    public var settings: [String: Double] { ["steps": Double(steps), "candidates": Double(candidates), "overshoot": Double(overshoot)] }

    public func run(_ run: AttackRun) -> AttackOutcome {
        precondition(run.goal.kind == .untargeted, "DeepFool is untargeted")
        run.expectedEvaluations = steps
        let o = run.original, n = o.count
        let original = run.goal.classes[0]
        var total = [Float](repeating: 0, count: n)
        var q = o
        for t in 0..<steps {
            var classes: [Int] = []
            let image = Pixels.image(q, width: run.problem.width, height: run.problem.height)
            let (z, grads) = run.problem.evaluate(image, batch: candidates) { z in
                // Row 0: the original class; then the most likely others.
                let others = z.indices.filter { $0 != original }.sorted { z[$0] > z[$1] }.prefix(candidates - 1)
                classes = [original] + others
                return classes.map { k in var s = [Float](repeating: 0, count: z.count); s[k] = 1; return s }
            }
            if run.record(z, loss: z[original] - classes.dropFirst().map { z[$0] }.max()!, step: t, restart: 0) {
                // The doubling below may overshoot: shrink back as far as the 8-bit image still works.
                let (refined, scale) = budget == nil ? run.shrink(q, step: t + 1) : (q, 1)
                return AttackOutcome(success: true, adversarial: refined, steps: t,
                                     notes: ["overshoot": Double(overshoot), "refinedScale": Double(scale)])
            }
            // The nearest linearized boundary: argmin |f_k| / ‖w_k‖ with f_k = z_k − z_o, w_k = ∇z_k − ∇z_o.
            var bestRatio = Float.infinity, bestStep: [Float] = []
            for (row, k) in classes.enumerated().dropFirst() {
                var wk = grads[row]
                for i in 0..<n { wk[i] -= grads[0][i] }
                let norm = max(AttackRun.l2(wk), 1e-12)
                let f = abs(z[k] - z[original])
                if f / norm < bestRatio {
                    bestRatio = f / norm
                    let s = (f + 1e-4) / (norm * norm)
                    bestStep = wk.map { $0 * s }
                }
            }
            for i in 0..<n { total[i] += bestStep[i] }
            // DeepFool's steps are often far below one level; when rounding erases the whole update, the
            // accumulated perturbation is doubled until the 8-bit image changes (otherwise the same image would
            // be evaluated again and again).
            var next = q
            for _ in 0..<24 {
                var x = (0..<n).map { min(max(o[$0] + (1 + overshoot) * total[$0], 0), 255) }
                if let b = budget { b.project(&x, around: o) }
                next = budget?.quantize(x, around: o) ?? x.map { $0.rounded() }
                if next != q { break }
                for i in 0..<n { total[i] *= 2 }
            }
            q = next
        }
        let reached = run.check(q, step: steps)
        return AttackOutcome(success: reached, adversarial: q, steps: steps, notes: ["overshoot": Double(overshoot)])
    }
}
