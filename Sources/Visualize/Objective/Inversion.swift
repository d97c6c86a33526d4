import Engine
import Foundation

extension Objective {
    /// Feature inversion (Mahendran & Vedaldi 2015; Lucid's `dot_compare` with a cosine): the cosine between the
    /// layer's pooled vector (each channel's spatial mean, the vector `vizlab similar` searches) and `target`.
    /// Scale-free, so the render matches the direction of the photo's embedding, not its magnitude.
    public static func embeddingCosine(_ layer: String, target: [Float], name: String = "target") -> Objective {
        Objective(layers: [layer], description: "cos(\(layer), \(name))") { acts in pooledCosine(acts[layer]!, target: target) }
    }

    /// The order of a walk, for a batch whose image i is frame i of a strip from `a` to `b` (`vizlab interpolate`):
    /// minus Σ_i [relu(cos(x_{i+1}, a) − cos(x_i, a) + margin) + relu(cos(x_i, b) − cos(x_{i+1}, b) + margin)], zero
    /// once each frame is at least `margin` farther from a and nearer to b than the one before it. Added to the frames'
    /// own objectives it is an explicit monotonicity constraint: near an end, where the cosine saturates, the
    /// frames' own trade-offs leave neighbouring cosines a noise apart and the strip's order to chance.
    public static func walkOrder(_ layer: String, a: [Float], b: [Float], margin: Float) -> Objective {
        Objective(layers: [layer], description: String(format: "walkOrder(%@, margin %.3f)", layer, margin)) { acts in
            pooledWalkOrder(acts[layer]!, a: a, b: b, margin: margin)
        }
    }
}

/// Each image's pooled vector (channel means over space of a [N, C] or [N, C, H, W] activation), rows of [N, C].
func pooledMeans(_ a: Tensor) -> [Double] {
    let n = a.shape[0], c = a.shape[1], spatial = a.count / (n * c)
    var m = [Double](repeating: 0, count: n * c)
    for row in 0..<(n * c) {
        var s = 0.0
        for i in 0..<spatial { s += Double(a.data[row * spatial + i]) }
        m[row] = s / Double(spatial)
    }
    return m
}

/// Each image's cosine of its pooled vector (rows of `m`, [N, C]) to `t`, and ∂cos/∂m_b = t/(‖m‖‖t‖) − cos·m/‖m‖²
/// (rows of `dm`).
func pooledCosines(_ m: [Double], channels c: Int, target t: [Float]) -> (cos: [Double], dm: [Float]) {
    precondition(t.count == c, "target has \(t.count) entries, the layer has \(c) channels")
    let n = m.count / c
    let tNorm = max(Double(t.reduce(0) { $0 + $1 * $1 }).squareRoot(), 1e-12)
    var cosines = [Double](repeating: 0, count: n)
    var dm = [Float](repeating: 0, count: n * c)
    for b in 0..<n {
        let mb = m[(b * c)..<((b + 1) * c)]
        let mNorm = max(mb.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        let dot = zip(mb, t).reduce(0) { $0 + $1.0 * Double($1.1) }
        let cos = dot / (mNorm * tNorm)
        cosines[b] = cos
        for ch in 0..<c { dm[b * c + ch] = Float(Double(t[ch]) / (mNorm * tNorm) - cos * mb[b * c + ch] / (mNorm * mNorm)) }
    }
    return (cosines, dm)
}

/// A gradient w.r.t. the pooled vectors ([N, C]) times `g`, spread evenly over the positions that were averaged.
private func spreadPooled(_ dm: [Float], times g: Float, like a: Tensor) -> [Float] {
    let n = a.shape[0], c = a.shape[1], spatial = a.count / (n * c)
    let scale = g / Float(spatial)
    var da = [Float](repeating: 0, count: a.count)
    for row in 0..<(n * c) {
        let v = dm[row] * scale, base = row * spatial
        for i in 0..<spatial { da[base + i] = v }
    }
    return da
}

/// Σ_b cos(mean over space of a[b], t) for a [N, C] or [N, C, H, W] activation. Backward: for m = the pooled
/// vector, ∂cos/∂m = t/(‖m‖‖t‖) − cos·m/‖m‖², spread evenly over the positions that were averaged.
public func pooledCosine(_ a: Tensor, target t: [Float]) -> Tensor {
    let (cosines, dm) = pooledCosines(pooledMeans(a), channels: a.shape[1], target: t)
    let out = Tensor(shape: [], data: [Float(cosines.reduce(0, +))])
    out.record(op: "pooledCosine", parents: [a]) { g in a.accumulate(spreadPooled(dm, times: g[0], like: a)) }
    return out
}

/// −Σ_i [relu(ca_{i+1} − ca_i + margin) + relu(cb_i − cb_{i+1} + margin)] over consecutive images of the batch,
/// ca/cb the pooled cosines to `a`/`b` (`Objective.walkOrder`). Backward: each active hinge adds ∓1 to the two
/// cosines it compares, then through ∂cos/∂m as in `pooledCosine` (one pooling, one spread for both targets).
public func pooledWalkOrder(_ x: Tensor, a: [Float], b: [Float], margin: Float) -> Tensor {
    let n = x.shape[0], c = x.shape[1]
    let m = pooledMeans(x)
    let (ca, da) = pooledCosines(m, channels: c, target: a), (cb, db) = pooledCosines(m, channels: c, target: b)
    var penalty = 0.0
    var wa = [Float](repeating: 0, count: n), wb = [Float](repeating: 0, count: n)
    for i in 0..<max(n - 1, 0) {
        let ha = ca[i + 1] - ca[i] + Double(margin)
        if ha > 0 { penalty += ha; wa[i + 1] -= 1; wa[i] += 1 }
        let hb = cb[i] - cb[i + 1] + Double(margin)
        if hb > 0 { penalty += hb; wb[i] -= 1; wb[i + 1] += 1 }
    }
    let out = Tensor(shape: [], data: [Float(-penalty)])
    out.record(op: "pooledWalkOrder", parents: [x]) { g in
        var dm = [Float](repeating: 0, count: n * c)
        for row in 0..<(n * c) { dm[row] = wa[row / c] * da[row] + wb[row / c] * db[row] }
        x.accumulate(spreadPooled(dm, times: g[0], like: x))
    }
    return out
}
