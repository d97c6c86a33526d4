import Foundation

/// What counts as fooled. Targeted: the top-1 class is in the target set (one class, or a WordNet group such as
/// the five domestic cats) and the set's total probability is at least `confidence`. Untargeted: the top-1 class
/// is no longer the original one and has at least `confidence`.
public struct Goal: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case targeted, untargeted }
    public var kind: Kind
    /// Target classes (targeted) or the original top-1 class (untargeted).
    public var classes: [Int]
    /// How the target was asked for ("cat", "least-likely", "random", "281"), for reports.
    public var query: String
    public var description: String
    public var confidence: Float

    public static func targeted(_ classes: [Int], query: String, description: String, confidence: Float = 0) -> Goal {
        Goal(kind: .targeted, classes: classes.sorted(), query: query, description: description, confidence: confidence)
    }

    public static func untargeted(original: Int, name: String, confidence: Float = 0) -> Goal {
        Goal(kind: .untargeted, classes: [original], query: "untargeted", description: "away from \(name) (\(original))", confidence: confidence)
    }

    /// The probability the goal is about: the target set's total, or (untargeted) 1 − p(original).
    public func progress(_ probabilities: [Float]) -> Float {
        let inSet = classes.reduce(Float(0)) { $0 + probabilities[$1] }
        return kind == .targeted ? inSet : 1 - inSet
    }

    public func isReached(logits: [Float]) -> Bool {
        let p = Goal.softmax(logits)
        let top = Goal.argmax(p)
        switch kind {
        case .targeted: return classes.contains(top) && progress(p) >= confidence
        case .untargeted: return !classes.contains(top) && p[top] >= confidence
        }
    }

    /// Loss to minimize and its gradient with respect to the logits.
    /// Cross-entropy: targeted −log Σ_{t∈T} p_t; untargeted log p_orig (clamped at log 1e-12 so it stays finite).
    /// Margin (Carlini–Wagner's f6): targeted max(max_{j∉T} z_j − max_{t∈T} z_t, −κ); untargeted
    /// max(z_orig − max_{j≠orig} z_j, −κ).
    public func loss(logits z: [Float], kind loss: LossKind, kappa: Float = 0) -> (value: Float, gradient: [Float]) {
        var g = [Float](repeating: 0, count: z.count)
        let member = Set(classes)
        switch loss {
        case .crossEntropy:
            let p = Goal.softmax(z)
            if kind == .targeted {
                let mass = max(classes.reduce(Float(0)) { $0 + p[$1] }, 1e-30)
                for j in z.indices { g[j] = p[j] - (member.contains(j) ? p[j] / mass : 0) }
                return (-log(mass), g)
            } else {
                let o = classes[0]
                for j in z.indices { g[j] = -p[j] }
                g[o] += 1
                return (log(max(p[o], 1e-12)), g)
            }
        case .margin:
            var bestIn = -Float.infinity, bestInIndex = 0, bestOut = -Float.infinity, bestOutIndex = 0
            for j in z.indices {
                if member.contains(j) { if z[j] > bestIn { bestIn = z[j]; bestInIndex = j } }
                else if z[j] > bestOut { bestOut = z[j]; bestOutIndex = j }
            }
            let margin = kind == .targeted ? bestOut - bestIn : bestIn - bestOut
            if margin <= -kappa { return (-kappa, g) }
            g[bestOutIndex] = kind == .targeted ? 1 : -1
            g[bestInIndex] = kind == .targeted ? -1 : 1
            return (margin, g)
        }
    }

    public static func softmax(_ z: [Float]) -> [Float] {
        let m = z.max() ?? 0
        var e = z.map { exp($0 - m) }
        let s = e.reduce(0, +)
        for i in e.indices { e[i] /= s }
        return e
    }

    public static func argmax(_ v: [Float]) -> Int {
        var best = 0
        for i in v.indices where v[i] > v[best] { best = i }
        return best
    }
}

public enum LossKind: String, Codable, Sendable, CaseIterable {
    case crossEntropy = "ce", margin
}
