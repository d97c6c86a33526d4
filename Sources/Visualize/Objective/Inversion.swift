import Engine
import Foundation

extension Objective {
    /// Feature inversion (Mahendran & Vedaldi 2015; Lucid's `dot_compare` with a cosine): the cosine between the
    /// layer's pooled vector (each channel's spatial mean, the vector `vizlab similar` searches) and `target`.
    /// Scale-free, so the render matches the direction of the photo's embedding, not its magnitude.
    public static func embeddingCosine(_ layer: String, target: [Float], name: String = "target") -> Objective {
        Objective(layers: [layer], description: "cos(\(layer), \(name))") { acts in pooledCosine(acts[layer]!, target: target) }
    }
}

/// Σ_b cos(mean over space of a[b], t) for a [N, C] or [N, C, H, W] activation. Backward: for m = the pooled
/// vector, ∂cos/∂m = t/(‖m‖‖t‖) − cos·m/‖m‖², spread evenly over the positions that were averaged.
public func pooledCosine(_ a: Tensor, target t: [Float]) -> Tensor {
    let n = a.shape[0], c = a.shape[1], spatial = a.count / (n * c)
    precondition(t.count == c, "target has \(t.count) entries, the layer has \(c) channels")
    let tNorm = max(Double(t.reduce(0) { $0 + $1 * $1 }).squareRoot(), 1e-12)
    var total = 0.0
    var dm = [Float](repeating: 0, count: n * c)
    for b in 0..<n {
        var m = [Double](repeating: 0, count: c)
        for ch in 0..<c {
            var s = 0.0
            let base = (b * c + ch) * spatial
            for i in 0..<spatial { s += Double(a.data[base + i]) }
            m[ch] = s / Double(spatial)
        }
        let mNorm = max(m.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        let dot = zip(m, t).reduce(0) { $0 + $1.0 * Double($1.1) }
        let cos = dot / (mNorm * tNorm)
        total += cos
        for ch in 0..<c { dm[b * c + ch] = Float(Double(t[ch]) / (mNorm * tNorm) - cos * m[ch] / (mNorm * mNorm)) }
    }
    let out = Tensor(shape: [], data: [Float(total)])
    out.record(op: "pooledCosine", parents: [a]) { g in
        var da = [Float](repeating: 0, count: a.count)
        let scale = g[0] / Float(spatial)
        for b in 0..<n { for ch in 0..<c { let v = dm[b * c + ch] * scale; let base = (b * c + ch) * spatial; for i in 0..<spatial { da[base + i] = v } } }
        a.accumulate(da)
    }
    return out
}
