import Foundation

/// How the perturbation's size is measured.
public enum Norm: String, Codable, Sendable, CaseIterable {
    case linf, l2
}

/// The perturbation budget. L∞ is in 8-bit levels (`--eps 4` = 4/255, the usual ImageNet convention); L2 is on
/// the 0–1 pixel scale over the whole attacked image (Foolbox's convention: ‖δ/255‖₂).
public struct Budget: Codable, Sendable, Equatable {
    public var norm: Norm
    public var epsilon: Double

    public init(norm: Norm, epsilon: Double) { self.norm = norm; self.epsilon = epsilon }

    /// The radius in 8-bit levels (L∞: whole levels only, since saved pixels are whole levels).
    var radius: Float { norm == .linf ? Float(epsilon.rounded(.down)) : Float(epsilon * 255) }

    /// Pulls `x` back into the budget around `original` and into 0…255.
    public func project(_ x: inout [Float], around original: [Float]) {
        let r = radius
        switch norm {
        case .linf:
            for i in x.indices { x[i] = min(max(x[i], max(0, original[i] - r)), min(255, original[i] + r)) }
        case .l2:
            var sq: Double = 0
            for i in x.indices { let d = Double(x[i] - original[i]); sq += d * d }
            let n = sq.squareRoot()
            if n > Double(r) {
                let s = Float(Double(r) / n)
                for i in x.indices { x[i] = original[i] + (x[i] - original[i]) * s }
            }
            for i in x.indices { x[i] = min(max(x[i], 0), 255) }
        }
    }

    /// The 8-bit image the attack would save for `x`, inside the budget by construction: round to the nearest
    /// level (L∞ with a whole-level radius keeps it inside). For L2, rounding adds about 1/12 level² per value, so
    /// an iterate on the sphere usually rounds to just outside it; then the perturbation is scaled by the largest
    /// factor (bisection) whose rounding fits, which keeps nearly all of it.
    public func quantize(_ x: [Float], around original: [Float]) -> [Float] {
        var projected = x
        project(&projected, around: original)
        let rounded = projected.map { $0.rounded() }
        guard norm == .l2, Budget.l2Levels(rounded, original) > Double(radius) else { return rounded }
        func scaled(_ s: Float) -> [Float] {
            var q = projected
            for i in q.indices { q[i] = (original[i] + s * (projected[i] - original[i])).rounded() }
            return q
        }
        var lo: Float = 0, hi: Float = 1
        var best = original  // s = 0: no change, always inside
        for _ in 0..<14 {
            let mid = (lo + hi) / 2
            let q = scaled(mid)
            if Budget.l2Levels(q, original) <= Double(radius) { lo = mid; best = q } else { hi = mid }
        }
        return best
    }

    /// ‖a − b‖₂ in 8-bit levels.
    static func l2Levels(_ a: [Float], _ b: [Float]) -> Double {
        var s: Double = 0
        for i in a.indices { let d = Double(a[i] - b[i]); s += d * d }
        return s.squareRoot()
    }

    /// Whether `q` (whole levels) is within the budget of `original`.
    public func contains(_ q: [Float], around original: [Float]) -> Bool {
        let d = Distances(q, original)
        return norm == .linf ? Double(d.linfLevels) <= epsilon : d.l2 <= epsilon + 1e-9
    }
}

/// Sizes of a perturbation between two images of the same shape (planar or interleaved: only the values count).
public struct Distances: Codable, Sendable, Equatable {
    /// Largest |difference| in 8-bit levels.
    public var linfLevels: Int
    /// ‖δ‖₂ on the 0–1 scale (Foolbox's convention).
    public var l2: Double
    /// Root mean square of δ in levels (comparable across image sizes).
    public var rmsLevels: Double
    /// Fraction of values that changed.
    public var changedFraction: Double

    public init(_ a: [Float], _ b: [Float]) {
        var m: Float = 0, s: Double = 0, changed = 0
        for i in a.indices {
            let d = a[i] - b[i]
            m = max(m, abs(d)); s += Double(d) * Double(d)
            if d != 0 { changed += 1 }
        }
        linfLevels = Int(m.rounded(.up))
        l2 = s.squareRoot() / 255
        rmsLevels = (s / Double(max(a.count, 1))).squareRoot()
        changedFraction = Double(changed) / Double(max(a.count, 1))
    }

    public init(_ a: RGBImage, _ b: RGBImage) {
        precondition(a.width == b.width && a.height == b.height, "images differ in size")
        self.init(a.pixels.map(Float.init), b.pixels.map(Float.init))
    }
}
