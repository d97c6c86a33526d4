import Engine

extension Objective {
    /// Lucid's `diversity`: minus the mean pairwise cosine similarity of the images' Gram matrices at `layer`,
    /// so a batch optimized for one unit spreads over different styles instead of four copies of one picture.
    /// Add it with a weight: `channel(...) + 10 * diversity(layer)`.
    public static func diversity(_ layer: String) -> Objective {
        Objective(layers: [layer], description: "diversity@\(layer)") { acts in
            let a = acts[layer]!
            let n = a.shape[0], c = a.shape[1], spatial = a.count / (n * c)
            let grams = (0..<n).map { b -> Tensor in
                let features = plane(a, b).reshaped([c, spatial])
                return linear(features, features).reshaped([c * c])  // F·Fᵀ
            }
            return scale(meanPairwiseCosine(stack(grams)), by: -1)
        }
    }
}

/// (1/N) Σ_{i≠j} cos(x_i, x_j) over the rows of [N, D]. With u_i = x_i/|x_i| and S = Σ u_i this is (|S|² − N)/N;
/// the gradient is 2(S − u_i)/N projected off u_i and divided by |x_i|.
public func meanPairwiseCosine(_ x: Tensor) -> Tensor {
    precondition(x.rank == 2)
    let n = x.shape[0], d = x.shape[1]
    var norms = [Float](repeating: 0, count: n), u = [Float](repeating: 0, count: x.count), s = [Float](repeating: 0, count: d)
    for i in 0..<n {
        var q: Double = 0
        for k in 0..<d { q += Double(x.data[i * d + k]) * Double(x.data[i * d + k]) }
        norms[i] = Float(max(q.squareRoot(), 1e-10))
        for k in 0..<d { u[i * d + k] = x.data[i * d + k] / norms[i]; s[k] += u[i * d + k] }
    }
    var s2: Double = 0
    for k in 0..<d { s2 += Double(s[k]) * Double(s[k]) }
    let out = Tensor(shape: [], data: [Float((s2 - Double(n)) / Double(n))])
    out.record(op: "meanPairwiseCosine", parents: [x]) { g in
        var dx = [Float](repeating: 0, count: x.count)
        for i in 0..<n {
            // du = 2 g (S − u_i) / N; dx = (du − (du·u_i) u_i) / |x_i|
            var dot: Float = 0
            for k in 0..<d { dot += 2 * g[0] * (s[k] - u[i * d + k]) / Float(n) * u[i * d + k] }
            for k in 0..<d {
                let du = 2 * g[0] * (s[k] - u[i * d + k]) / Float(n)
                dx[i * d + k] = (du - dot * u[i * d + k]) / norms[i]
            }
        }
        x.accumulate(dx)
    }
    return out
}
