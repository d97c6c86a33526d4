import Foundation

/// General N-D tensor ops with numpy/ONNX semantics (broadcasting, any axis), each a forward and its backward —
/// what imported graphs (ONNX) need beyond the CNN kernels. Written for clarity over speed: the CNN paths never
/// go through them, and equal-shape operands take the fast elementwise kernels.

/// Row-major strides of a shape.
@inline(__always) func strides(_ shape: [Int]) -> [Int] {
    var s = [Int](repeating: 1, count: shape.count)
    var acc = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) { s[i] = acc; acc *= shape[i] }
    return s
}

/// Numpy broadcasting of two shapes (nil when they do not broadcast).
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
    let r = max(a.count, b.count)
    var out = [Int](repeating: 1, count: r)
    for i in 0..<r {
        let x = i < r - a.count ? 1 : a[i - (r - a.count)], y = i < r - b.count ? 1 : b[i - (r - b.count)]
        guard x == y || x == 1 || y == 1 else { return nil }
        out[i] = max(x, y)
    }
    return out
}

/// For each element of `out`, the flat index into a tensor of shape `shape` broadcast to it.
func broadcastIndex(_ shape: [Int], to out: [Int]) -> [Int] {
    let padded = [Int](repeating: 1, count: out.count - shape.count) + shape
    return stridedIndex(out, strides: strides(padded).enumerated().map { padded[$0.offset] == 1 ? 0 : $0.element })
}

public enum BinaryKind: String, Sendable { case add, sub, mul, div, pow }

/// a ∘ b with numpy broadcasting.
public func binary(_ a: Tensor, _ b: Tensor, _ kind: BinaryKind) -> Tensor {
    guard let shape = broadcastShape(a.shape, b.shape) else { preconditionFailure("shapes \(a.shape) and \(b.shape) do not broadcast") }
    let ia = a.shape == shape ? nil : broadcastIndex(a.shape, to: shape), ib = b.shape == shape ? nil : broadcastIndex(b.shape, to: shape)
    let n = shape.reduce(1, *)
    var y = [Float](repeating: 0, count: n)
    let ad = a.data, bd = b.data
    for i in 0..<n {
        let x = ad[ia?[i] ?? i], z = bd[ib?[i] ?? i]
        switch kind {
        case .add: y[i] = x + z
        case .sub: y[i] = x - z
        case .mul: y[i] = x * z
        case .div: y[i] = x / z
        case .pow: y[i] = pow(x, z)
        }
    }
    let out = Tensor(shape: shape, data: y)
    out.record(op: kind.rawValue, parents: [a, b]) { g in
        var ga = a.tracksGrad ? [Float](repeating: 0, count: a.count) : [], gb = b.tracksGrad ? [Float](repeating: 0, count: b.count) : []
        for i in 0..<n {
            let j = ia?[i] ?? i, k = ib?[i] ?? i, x = ad[j], z = bd[k]
            switch kind {
            case .add: if !ga.isEmpty { ga[j] += g[i] }; if !gb.isEmpty { gb[k] += g[i] }
            case .sub: if !ga.isEmpty { ga[j] += g[i] }; if !gb.isEmpty { gb[k] -= g[i] }
            case .mul: if !ga.isEmpty { ga[j] += g[i] * z }; if !gb.isEmpty { gb[k] += g[i] * x }
            case .div: if !ga.isEmpty { ga[j] += g[i] / z }; if !gb.isEmpty { gb[k] -= g[i] * x / (z * z) }
            case .pow:
                if !ga.isEmpty { ga[j] += g[i] * z * pow(x, z - 1) }
                if !gb.isEmpty, x > 0 { gb[k] += g[i] * y[i] * log(x) }
            }
        }
        if !ga.isEmpty { a.accumulate(ga) }
        if !gb.isEmpty { b.accumulate(gb) }
    }
    return out
}

/// Axes permuted: out.shape[i] = x.shape[perm[i]].
public func permute(_ x: Tensor, _ perm: [Int]) -> Tensor {
    precondition(perm.count == x.rank && Set(perm) == Set(0..<x.rank), "permutation \(perm) of a rank-\(x.rank) tensor")
    let shape = perm.map { x.shape[$0] }, xs = strides(x.shape)
    let map = stridedIndex(shape, strides: perm.map { xs[$0] })
    let xd = x.data
    let out = Tensor(shape: shape, data: map.map { xd[$0] })
    out.record(op: "permute", parents: [x]) { g in
        var back = [Float](repeating: 0, count: x.count)
        for (i, j) in map.enumerated() { back[j] = g[i] }
        x.accumulate(back)
    }
    return out
}

/// Source index of each element of a walk over `shape` that steps the source by `src` per axis (0: broadcast).
func stridedIndex(_ shape: [Int], strides src: [Int]) -> [Int] {
    let n = shape.reduce(1, *), r = shape.count
    var index = [Int](repeating: 0, count: n), pos = [Int](repeating: 0, count: r), flat = 0
    for i in 0..<n {
        index[i] = flat
        var d = r - 1
        while d >= 0 {
            pos[d] += 1; flat += src[d]
            if pos[d] < shape[d] { break }
            flat -= src[d] * pos[d]; pos[d] = 0; d -= 1
        }
    }
    return index
}

/// Sum of x broadcast-reduced to `shape` (the backward of broadcasting, as an op).
public func reduceSum(_ x: Tensor, axes: [Int], keepDims: Bool) -> Tensor {
    reduce(x, axes: axes, keepDims: keepDims, mean: false)
}

public func reduceMean(_ x: Tensor, axes: [Int], keepDims: Bool) -> Tensor {
    reduce(x, axes: axes, keepDims: keepDims, mean: true)
}

func reduce(_ x: Tensor, axes: [Int], keepDims: Bool, mean: Bool) -> Tensor {
    let r = x.rank
    let set = Set(axes.map { $0 < 0 ? $0 + r : $0 })
    precondition(set.allSatisfy { (0..<max(r, 1)).contains($0) }, "axes \(axes) of a rank-\(r) tensor")
    let kept = x.shape.enumerated().map { set.contains($0.offset) ? 1 : $0.element }
    let index = broadcastIndex(kept, to: x.shape)
    let m = kept.reduce(1, *), count = max(x.count / max(m, 1), 1)
    var y = [Float](repeating: 0, count: m)
    let xd = x.data
    for i in 0..<x.count { y[index[i]] += xd[i] }
    let scale: Float = mean ? 1 / Float(count) : 1
    if mean { for i in 0..<m { y[i] *= scale } }
    let shape = keepDims ? kept : x.shape.enumerated().filter { !set.contains($0.offset) }.map(\.element)
    let out = Tensor(shape: shape, data: y)
    out.record(op: mean ? "reduce_mean" : "reduce_sum", parents: [x]) { g in
        var back = [Float](repeating: 0, count: x.count)
        for i in 0..<x.count { back[i] = g[index[i]] * scale }
        x.accumulate(back)
    }
    return out
}

/// Softmax along one axis.
public func softmax(_ x: Tensor, axis: Int) -> Tensor {
    let a = axis < 0 ? axis + x.rank : axis
    precondition((0..<x.rank).contains(a), "softmax axis \(axis) of a rank-\(x.rank) tensor")
    let outer = x.shape[..<a].reduce(1, *), len = x.shape[a], inner = x.shape[(a + 1)...].reduce(1, *)
    var y = [Float](repeating: 0, count: x.count)
    let xd = x.data
    for o in 0..<outer { for i in 0..<inner {
        let base = o * len * inner + i
        var m = -Float.infinity
        for k in 0..<len { m = max(m, xd[base + k * inner]) }
        var s: Float = 0
        for k in 0..<len { let e = exp(xd[base + k * inner] - m); y[base + k * inner] = e; s += e }
        for k in 0..<len { y[base + k * inner] /= s }
    } }
    let out = Tensor(shape: x.shape, data: y)
    out.record(op: "softmax", parents: [x]) { g in
        var back = [Float](repeating: 0, count: x.count)
        for o in 0..<outer { for i in 0..<inner {
            let base = o * len * inner + i
            var dot: Float = 0
            for k in 0..<len { dot += g[base + k * inner] * y[base + k * inner] }
            for k in 0..<len { back[base + k * inner] = y[base + k * inner] * (g[base + k * inner] - dot) }
        } }
        x.accumulate(back)
    }
    return out
}

/// Tensors joined along `axis` (all other dimensions equal).
public func concat(_ parts: [Tensor], axis: Int) -> Tensor {
    let r = parts[0].rank, a = axis < 0 ? axis + r : axis
    precondition((0..<r).contains(a) && parts.allSatisfy { $0.rank == r && zip($0.shape, parts[0].shape).enumerated().allSatisfy { $0.offset == a || $0.element.0 == $0.element.1 } },
                 "concat along \(axis): shapes \(parts.map(\.shape)) do not fit")
    let outer = parts[0].shape[..<a].reduce(1, *), inner = parts[0].shape[(a + 1)...].reduce(1, *)
    let lens = parts.map { $0.shape[a] }, total = lens.reduce(0, +)
    var y = [Float](repeating: 0, count: outer * total * inner)
    var offset = 0
    for (p, len) in zip(parts, lens) {
        let pd = p.data
        for o in 0..<outer {
            let dst = (o * total + offset) * inner, src = o * len * inner
            y.replaceSubrange(dst..<(dst + len * inner), with: pd[src..<(src + len * inner)])
        }
        offset += len
    }
    var shape = parts[0].shape
    shape[a] = total
    let out = Tensor(shape: shape, data: y)
    out.record(op: "concat", parents: parts) { g in
        var offset = 0
        for (p, len) in zip(parts, lens) {
            if p.tracksGrad {
                var back = [Float](repeating: 0, count: p.count)
                for o in 0..<outer {
                    let src = (o * total + offset) * inner, dst = o * len * inner
                    back.replaceSubrange(dst..<(dst + len * inner), with: g[src..<(src + len * inner)])
                }
                p.accumulate(back)
            }
            offset += len
        }
    }
    return out
}

/// Numpy matmul: 1-D operands promoted, leading (batch) dimensions broadcast.
public func batchMatmul(_ a: Tensor, _ b: Tensor) -> Tensor {
    _ = blasIsSingleThreaded
    precondition(a.rank >= 1 && b.rank >= 1, "matmul of scalars")
    let a2 = a.rank == 1 ? a.reshaped([1, a.shape[0]]) : a, b2 = b.rank == 1 ? b.reshaped([b.shape[0], 1]) : b
    let m = a2.shape[a2.rank - 2], k = a2.shape[a2.rank - 1], n = b2.shape[b2.rank - 1]
    precondition(b2.shape[b2.rank - 2] == k, "matmul of \(a.shape) and \(b.shape)")
    guard let batch = broadcastShape(Array(a2.shape.dropLast(2)), Array(b2.shape.dropLast(2))) else {
        preconditionFailure("matmul batch dimensions \(a.shape) and \(b.shape) do not broadcast")
    }
    let nb = batch.reduce(1, *)
    let ia = broadcastIndex(Array(a2.shape.dropLast(2)), to: batch), ib = broadcastIndex(Array(b2.shape.dropLast(2)), to: batch)
    var y = [Float](repeating: 0, count: nb * m * n)
    let ad = a2.data, bd = b2.data
    ad.withUnsafeBufferPointer { ap in bd.withUnsafeBufferPointer { bp in y.withUnsafeMutableBufferPointer { yp in
        for t in 0..<nb {
            sgemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: ap.baseAddress! + ia[t] * m * k, lda: k,
                  b: bp.baseAddress! + ib[t] * k * n, ldb: n, beta: 0, c: yp.baseAddress! + t * m * n, ldc: n)
        }
    } } }
    var shape = batch + [m, n]
    if a.rank == 1 { shape.remove(at: shape.count - 2) }
    if b.rank == 1 { shape.removeLast() }
    let out = Tensor(shape: shape, data: y)
    out.record(op: "matmul", parents: [a2, b2]) { g in
        var ga = a2.tracksGrad ? [Float](repeating: 0, count: a2.count) : [], gb = b2.tracksGrad ? [Float](repeating: 0, count: b2.count) : []
        g.withUnsafeBufferPointer { gp in ad.withUnsafeBufferPointer { ap in bd.withUnsafeBufferPointer { bp in
            for t in 0..<nb {
                if !ga.isEmpty {  // dA = dY · Bᵀ, accumulated over broadcast batches
                    ga.withUnsafeMutableBufferPointer { gap in
                        sgemm(transA: false, transB: true, m: m, n: k, k: n, alpha: 1, a: gp.baseAddress! + t * m * n, lda: n,
                              b: bp.baseAddress! + ib[t] * k * n, ldb: n, beta: 1, c: gap.baseAddress! + ia[t] * m * k, ldc: k)
                    }
                }
                if !gb.isEmpty {  // dB = Aᵀ · dY
                    gb.withUnsafeMutableBufferPointer { gbp in
                        sgemm(transA: true, transB: false, m: k, n: n, k: m, alpha: 1, a: ap.baseAddress! + ia[t] * m * k, lda: k,
                              b: gp.baseAddress! + t * m * n, ldb: n, beta: 1, c: gbp.baseAddress! + ib[t] * k * n, ldc: n)
                    }
                }
            }
        } } }
        if !ga.isEmpty { a2.accumulate(ga) }
        if !gb.isEmpty { b2.accumulate(gb) }
    }
    return out
}

/// A pointwise function with its derivative (in terms of x and y), as one op.
public func pointwise(_ x: Tensor, name: String, _ f: (Float) -> Float, derivative: @escaping (Float, Float) -> Float) -> Tensor {
    let xd = x.data
    let y = xd.map(f)
    let out = Tensor(shape: x.shape, data: y)
    out.record(op: name, parents: [x]) { g in
        var back = [Float](repeating: 0, count: g.count)
        for i in 0..<g.count { back[i] = g[i] * derivative(xd[i], y[i]) }
        x.accumulate(back)
    }
    return out
}

/// min(max(x, lo), hi); the gradient passes where lo < x < hi (as PyTorch's clamp: also at equality it passes).
public func clip(_ x: Tensor, min lo: Float, max hi: Float) -> Tensor {
    pointwise(x, name: "clip", { Swift.min(Swift.max($0, lo), hi) }, derivative: { x, _ in x >= lo && x <= hi ? 1 : 0 })
}

public func leakyRelu(_ x: Tensor, alpha: Float) -> Tensor {
    pointwise(x, name: "leaky_relu", { $0 >= 0 ? $0 : alpha * $0 }, derivative: { x, _ in x >= 0 ? 1 : alpha })
}

/// Constant padding of every axis: `pads` = [begin_0, …, begin_{r-1}, end_0, …, end_{r-1}] (ONNX's order; negative
/// values crop).
public func pad(_ x: Tensor, pads: [Int], value: Float = 0) -> Tensor {
    let r = x.rank
    precondition(pads.count == 2 * r, "pads \(pads) for a rank-\(r) tensor")
    let shape = (0..<r).map { x.shape[$0] + pads[$0] + pads[r + $0] }
    precondition(shape.allSatisfy { $0 >= 0 }, "padding \(pads) crops \(x.shape) below zero")
    let n = shape.reduce(1, *), xs = strides(x.shape)
    var y = [Float](repeating: value, count: n)
    var map = [Int](repeating: -1, count: n)
    var pos = [Int](repeating: 0, count: r)
    let xd = x.data
    for i in 0..<n {
        var src = 0, inside = true
        for d in 0..<r {
            let s = pos[d] - pads[d]
            if s < 0 || s >= x.shape[d] { inside = false; break }
            src += s * xs[d]
        }
        if inside { y[i] = xd[src]; map[i] = src }
        var d = r - 1
        while d >= 0 { pos[d] += 1; if pos[d] < shape[d] { break }; pos[d] = 0; d -= 1 }
    }
    let out = Tensor(shape: shape, data: y)
    out.record(op: "pad", parents: [x]) { g in
        var back = [Float](repeating: 0, count: x.count)
        for i in 0..<n where map[i] >= 0 { back[map[i]] += g[i] }
        x.accumulate(back)
    }
    return out
}

/// ONNX/numpy slicing: per listed axis, indices start, start+step, … before end (negative steps walk backwards;
/// bounds already clamped by the caller).
public func slice(_ x: Tensor, ranges: [(axis: Int, start: Int, end: Int, step: Int)]) -> Tensor {
    var index: [[Int]] = x.shape.map { Array(0..<$0) }
    for r in ranges {
        precondition(r.step != 0 && (0..<x.rank).contains(r.axis), "slice step 0 or axis \(r.axis)")
        index[r.axis] = Array(stride(from: r.start, to: r.end, by: r.step))
    }
    let shape = index.map(\.count), xs = strides(x.shape), n = shape.reduce(1, *), rank = x.rank
    var map = [Int](repeating: 0, count: n), pos = [Int](repeating: 0, count: rank)
    for i in 0..<n {
        var src = 0
        for d in 0..<rank { src += index[d][pos[d]] * xs[d] }
        map[i] = src
        var d = rank - 1
        while d >= 0 { pos[d] += 1; if pos[d] < shape[d] { break }; pos[d] = 0; d -= 1 }
    }
    let xd = x.data
    let out = Tensor(shape: shape, data: map.map { xd[$0] })
    out.record(op: "slice", parents: [x]) { g in
        var back = [Float](repeating: 0, count: x.count)
        for (i, j) in map.enumerated() { back[j] += g[i] }
        x.accumulate(back)
    }
    return out
}

/// numpy `take(x, indices, axis)`: out.shape = x.shape[..<axis] + indicesShape + x.shape[axis+1...] (indices already
/// made non-negative and in range by the caller).
public func gather(_ x: Tensor, axis: Int, indices: [Int], indicesShape: [Int]) -> Tensor {
    precondition((0..<x.rank).contains(axis) && indices.allSatisfy { (0..<x.shape[axis]).contains($0) }, "gather indices out of range")
    let outer = x.shape[..<axis].reduce(1, *), len = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *)
    var map = [Int](repeating: 0, count: outer * indices.count * inner)
    var i = 0
    for o in 0..<outer { for k in indices { for j in 0..<inner { map[i] = (o * len + k) * inner + j; i += 1 } } }
    let xd = x.data
    let out = Tensor(shape: Array(x.shape[..<axis]) + indicesShape + Array(x.shape[(axis + 1)...]), data: map.map { xd[$0] })
    out.record(op: "gather", parents: [x]) { g in
        var back = [Float](repeating: 0, count: x.count)
        for (i, j) in map.enumerated() { back[j] += g[i] }
        x.accumulate(back)
    }
    return out
}
