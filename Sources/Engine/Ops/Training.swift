import Foundation

// The ops only training needs: batch norm whose scale and shift learn (with frozen or batch statistics), dropout,
// and the loss. Each is a forward plus the backward for every input that can need a gradient, like the others.

/// Per-channel sums over N and the spatial axes of an [N, C, …] buffer, in Double (order fixed: same bytes each run).
private func channelSums(_ x: UnsafePointer<Float>, n: Int, c: Int, plane: Int, _ f: (Float) -> Double) -> [Double] {
    var out = [Double](repeating: 0, count: c)
    out.withUnsafeMutableBufferPointer { o in
        let op = o.baseAddress!
        Parallel.forEachChunk(c, grain: 8) { range in
            for ch in range {
                var s = 0.0
                for b in 0..<n {
                    let base = (b * c + ch) * plane
                    for i in 0..<plane { s += f(x[base + i]) }
                }
                op[ch] = s
            }
        }
    }
    return out
}

/// Batch norm with learnable scale and shift and fixed statistics (inference mode, the framework's frozen BN):
/// y = (x − mean) / √(var + eps) · gamma + beta. Gradients reach x, gamma and beta.
public func batchNorm(_ x: Tensor, gamma: Tensor, beta: Tensor, mean: [Float], variance: [Float], eps: Float) -> Tensor {
    let n = x.shape[0], channels = x.shape[1], plane = x.shape[2...].reduce(1, *)
    precondition(gamma.count == channels && beta.count == channels && mean.count == channels && variance.count == channels,
                 "batch norm has \(gamma.count) channels, input \(x.shape)")
    let invStd = variance.map { Float(1 / (Double($0) + Double(eps)).squareRoot()) }
    // y = x · s + t per channel, on raw buffers over both threads (planes of every image in one pool, ≥ 4K values a task).
    let grain = max(1, 4096 / max(plane, 1))
    let scale = (0..<channels).map { gamma.data[$0] * invStd[$0] }
    let shift = (0..<channels).map { beta.data[$0] - mean[$0] * scale[$0] }
    var y = uninitializedFloats(x.count)
    x.data.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { yb in
        let xp = xb.baseAddress!, yp = yb.baseAddress!
        Parallel.forEachChunk(n * channels, grain: grain) { planes in
            for p in planes {
                let ch = p % channels, s = scale[ch], t = shift[ch], base = p * plane
                for i in 0..<plane { yp[base + i] = xp[base + i] * s + t }
            }
        }
    } }
    let out = Tensor(shape: x.shape, data: y)
    out.record(op: "batchNorm", parents: [x, gamma, beta]) { g in
        g.withUnsafeBufferPointer { gb in
            let gp = gb.baseAddress!
            if x.tracksGrad {
                var dx = uninitializedFloats(x.count)
                dx.withUnsafeMutableBufferPointer { db in
                    let dp = db.baseAddress!
                    Parallel.forEachChunk(n * channels, grain: grain) { planes in
                        for p in planes {
                            let s = scale[p % channels], base = p * plane
                            for i in 0..<plane { dp[base + i] = gp[base + i] * s }
                        }
                    }
                }
                x.accumulate(dx)
            }
            if gamma.tracksGrad || beta.tracksGrad {
                // Per channel, in Double and in image order: the same sums whatever the thread count.
                var dg = [Float](repeating: 0, count: channels), db = [Float](repeating: 0, count: channels)
                x.data.withUnsafeBufferPointer { xb in dg.withUnsafeMutableBufferPointer { dgb in db.withUnsafeMutableBufferPointer { dbb in
                    let xp = xb.baseAddress!, dgp = dgb.baseAddress!, dbp = dbb.baseAddress!
                    Parallel.forEachChunk(channels, grain: 8) { range in
                        for ch in range {
                            var sg = 0.0, sb = 0.0
                            let m = mean[ch], inv = invStd[ch]
                            for b in 0..<n {
                                let base = (b * channels + ch) * plane
                                for i in 0..<plane {
                                    sb += Double(gp[base + i])
                                    sg += Double(gp[base + i]) * Double((xp[base + i] - m) * inv)
                                }
                            }
                            dgp[ch] = Float(sg); dbp[ch] = Float(sb)
                        }
                    }
                } } }
                gamma.accumulate(dg); beta.accumulate(db)
            }
        }
    }
    return out
}

/// Batch norm in training mode: normalizes with this batch's per-channel mean and (biased) variance. Returns the
/// output and the batch statistics (the running-average update with the unbiased variance is the caller's, as in
/// PyTorch). Gradients reach x (through the statistics too), gamma and beta.
public func batchNormTraining(_ x: Tensor, gamma: Tensor, beta: Tensor, eps: Float) -> (output: Tensor, mean: [Float], variance: [Float]) {
    let n = x.shape[0], channels = x.shape[1], plane = x.shape[2...].reduce(1, *)
    let m = Double(n * plane)
    precondition(gamma.count == channels && beta.count == channels, "batch norm has \(gamma.count) channels, input \(x.shape)")
    precondition(m > 1, "batch norm in training mode needs more than one value per channel, input \(x.shape)")
    let sums = x.data.withUnsafeBufferPointer { channelSums($0.baseAddress!, n: n, c: channels, plane: plane) { Double($0) } }
    let mean = sums.map { $0 / m }
    var variance = [Double](repeating: 0, count: channels)
    for ch in 0..<channels {
        var s = 0.0
        for b in 0..<n {
            let base = (b * channels + ch) * plane
            for i in 0..<plane { let d = Double(x.data[base + i]) - mean[ch]; s += d * d }
        }
        variance[ch] = s / m
    }
    let invStd = variance.map { 1 / ($0 + Double(eps)).squareRoot() }
    // x̂ kept for backward.
    var xhat = uninitializedFloats(x.count), y = uninitializedFloats(x.count)
    for b in 0..<n { for ch in 0..<channels {
        let base = (b * channels + ch) * plane
        let mu = Float(mean[ch]), inv = Float(invStd[ch]), gm = gamma.data[ch], bt = beta.data[ch]
        for i in 0..<plane {
            let h = (x.data[base + i] - mu) * inv
            xhat[base + i] = h
            y[base + i] = h * gm + bt
        }
    } }
    let out = Tensor(shape: x.shape, data: y)
    out.record(op: "batchNormTraining", parents: [x, gamma, beta]) { g in
        // Per channel: dβ = Σg, dγ = Σg·x̂, dx = γ/σ · (g − dβ/m − x̂ · dγ/m).
        var dg = [Double](repeating: 0, count: channels), db = [Double](repeating: 0, count: channels)
        for ch in 0..<channels {
            var sg = 0.0, sb = 0.0
            for b in 0..<n {
                let base = (b * channels + ch) * plane
                for i in 0..<plane { sb += Double(g[base + i]); sg += Double(g[base + i]) * Double(xhat[base + i]) }
            }
            dg[ch] = sg; db[ch] = sb
        }
        if x.tracksGrad {
            var dx = uninitializedFloats(x.count)
            for b in 0..<n { for ch in 0..<channels {
                let base = (b * channels + ch) * plane
                let k = Float(Double(gamma.data[ch]) * invStd[ch]), mb = Float(db[ch] / m), mg = Float(dg[ch] / m)
                for i in 0..<plane { dx[base + i] = k * (g[base + i] - mb - xhat[base + i] * mg) }
            } }
            x.accumulate(dx)
        }
        gamma.accumulate(dg.map { Float($0) })
        beta.accumulate(db.map { Float($0) })
    }
    return (out, mean.map { Float($0) }, variance.map { Float($0) })
}

/// Inverted dropout: each value kept with probability 1 − rate and scaled by 1 / (1 − rate), so inference is the
/// identity. The mask comes from `rng` (seeded: the same run drops the same units).
public func dropout<G: RandomNumberGenerator>(_ x: Tensor, rate: Float, using rng: inout G) -> Tensor {
    precondition((0..<1).contains(rate), "dropout rate \(rate) is not in [0, 1)")
    if rate == 0 { return x }
    let keep = 1 - rate, scale = 1 / keep
    // 24 random bits per value against the keep probability: exact to 2^-24, independent of the platform's Float draw.
    let threshold = UInt64(Double(keep) * Double(1 << 24))
    var mask = [Float](repeating: 0, count: x.count)
    for i in 0..<mask.count where (rng.next() >> 40) < threshold { mask[i] = scale }
    var y = x.data
    for i in 0..<y.count { y[i] *= mask[i] }
    let out = Tensor(shape: x.shape, data: y)
    out.record(op: "dropout", parents: [x]) { g in
        for i in 0..<g.count { g[i] *= mask[i] }
        x.accumulate(g)
    }
    return out
}

/// Softmax cross-entropy of logits [N, C] against class indices, averaged over the batch — weighted as PyTorch's
/// `CrossEntropyLoss(weight=)` does (Σ wᵢ·lossᵢ / Σ wᵢ, wᵢ the weight of sample i's class). With two classes this
/// is the binary cross-entropy of the logit difference. Returns the scalar loss and each sample's own loss.
public func softmaxCrossEntropy(_ logits: Tensor, labels: [Int], classWeights: [Float]? = nil) -> (loss: Tensor, perSample: [Float]) {
    precondition(logits.rank == 2 && logits.shape[0] == labels.count, "cross-entropy: logits \(logits.shape) for \(labels.count) labels")
    let n = logits.shape[0], c = logits.shape[1]
    precondition(labels.allSatisfy { (0..<c).contains($0) }, "cross-entropy: a label is outside 0..<\(c)")
    if let w = classWeights { precondition(w.count == c, "cross-entropy: \(w.count) class weights for \(c) classes") }
    var probs = [Float](repeating: 0, count: n * c), perSample = [Float](repeating: 0, count: n)
    var total = 0.0, weightSum = 0.0
    for r in 0..<n {
        let base = r * c
        var m = -Float.infinity
        for i in 0..<c { m = max(m, logits.data[base + i]) }
        var s = 0.0
        for i in 0..<c { s += Double(expf(logits.data[base + i] - m)) }
        for i in 0..<c { probs[base + i] = Float(Double(expf(logits.data[base + i] - m)) / s) }
        let l = Double(m) + log(s) - Double(logits.data[base + labels[r]])
        perSample[r] = Float(l)
        let w = Double(classWeights?[labels[r]] ?? 1)
        total += w * l; weightSum += w
    }
    let out = Tensor(shape: [], data: [Float(total / weightSum)])
    out.record(op: "softmaxCrossEntropy", parents: [logits]) { g in
        var dx = probs
        for r in 0..<n {
            let k = Float(Double(g[0]) * Double(classWeights?[labels[r]] ?? 1) / weightSum)
            dx[r * c + labels[r]] -= 1
            for i in 0..<c { dx[r * c + i] *= k }
        }
        logits.accumulate(dx)
    }
    return (out, perSample)
}
