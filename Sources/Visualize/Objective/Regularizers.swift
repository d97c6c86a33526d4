import Engine
import Foundation

/// Penalties on the image itself (not on the model), subtracted from the objective with a weight each
/// (`--tv`, `--l1`, `--l2`). All are means, so a weight means the same at every image size.
public struct Regularizers: Codable, Sendable, Equatable {
    /// Total variation: mean |difference| between horizontal and vertical neighbours.
    public var totalVariation: Float = 0
    /// Mean |pixel − 0.5|.
    public var l1: Float = 0
    /// Mean (pixel − 0.5)².
    public var l2: Float = 0
    /// Blur the image parameters with a Gaussian of this σ (pixels) every `blurEvery` steps (0: never).
    public var blurEvery = 0
    public var blurSigma: Float = 0.5

    public init() {}

    /// The weighted penalty for an image in [0, 1], or nil when every weight is 0.
    public func penalty(_ image: Tensor) -> Tensor? {
        var terms: [Tensor] = []
        if totalVariation != 0 { terms.append(scale(Visualize.totalVariation(image), by: totalVariation)) }
        if l1 != 0 { terms.append(scale(meanAbsoluteDeviation(image, from: 0.5), by: l1)) }
        if l2 != 0 {
            let centred = shift(image, by: -0.5)
            terms.append(scale(mean(multiply(centred, centred)), by: l2))
        }
        return terms.isEmpty ? nil : terms.dropFirst().reduce(terms[0], add)
    }
}

/// (Σ|x[y, x+1] − x[y, x]| + Σ|x[y+1, x] − x[y, x]|) / (N·C·H·W) for [N, C, H, W].
public func totalVariation(_ x: Tensor) -> Tensor {
    precondition(x.rank == 4)
    let planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3]
    let norm = 1 / Float(x.count)
    var total: Double = 0
    x.data.withUnsafeBufferPointer { p in
        for plane in 0..<planes { let base = plane * h * w
            for r in 0..<h { for q in 0..<w {
                let v = p[base + r * w + q]
                if q + 1 < w { total += Double(abs(p[base + r * w + q + 1] - v)) }
                if r + 1 < h { total += Double(abs(p[base + (r + 1) * w + q] - v)) }
            } }
        }
    }
    let out = Tensor(shape: [], data: [Float(total) * norm])
    out.record(op: "totalVariation", parents: [x]) { g in
        var dx = [Float](repeating: 0, count: x.count)
        let k = g[0] * norm
        x.data.withUnsafeBufferPointer { p in
            for plane in 0..<planes { let base = plane * h * w
                for r in 0..<h { for q in 0..<w {
                    let i = base + r * w + q, v = p[i]
                    if q + 1 < w { let s = k * sign(p[i + 1] - v); dx[i + 1] += s; dx[i] -= s }
                    if r + 1 < h { let s = k * sign(p[i + w] - v); dx[i + w] += s; dx[i] -= s }
                } }
            }
        }
        x.accumulate(dx)
    }
    return out
}

/// Mean |x − c|.
public func meanAbsoluteDeviation(_ x: Tensor, from c: Float) -> Tensor {
    var total: Double = 0
    for v in x.data { total += Double(abs(v - c)) }
    let norm = 1 / Float(x.count)
    let out = Tensor(shape: [], data: [Float(total) * norm])
    out.record(op: "meanAbsoluteDeviation", parents: [x]) { g in x.accumulate(x.data.map { g[0] * norm * sign($0 - c) }) }
    return out
}

@inline(__always) private func sign(_ v: Float) -> Float { v > 0 ? 1 : (v < 0 ? -1 : 0) }
