/// A · B for 2-D tensors [M, K] · [K, N] (through `linear`, which computes x · Wᵀ).
public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor { linear(a, transpose(b)) }

/// Bᵀ of a 2-D tensor.
public func transpose(_ b: Tensor) -> Tensor {
    precondition(b.rank == 2, "transpose wants a 2-D tensor, got \(b.shape)")
    let r = b.shape[0], c = b.shape[1]
    var out = [Float](repeating: 0, count: b.count)
    for i in 0..<r { for j in 0..<c { out[j * r + i] = b.data[i * c + j] } }
    let t = Tensor(shape: [c, r], data: out)
    t.record(op: "transpose", parents: [b]) { g in
        var back = [Float](repeating: 0, count: g.count)
        for i in 0..<r { for j in 0..<c { back[i * c + j] = g[j * r + i] } }
        b.accumulate(back)
    }
    return t
}

/// Tensors of one shape stacked along a new leading axis: n × [S] -> [n, S].
public func stack(_ parts: [Tensor]) -> Tensor {
    precondition(!parts.isEmpty && parts.allSatisfy { $0.shape == parts[0].shape }, "stack wants tensors of one shape")
    let n = parts[0].count
    let out = Tensor(shape: [parts.count] + parts[0].shape, data: parts.flatMap(\.data))
    out.record(op: "stack", parents: parts) { g in
        for (i, p) in parts.enumerated() where p.tracksGrad { p.accumulate(Array(g[(i * n)..<((i + 1) * n)])) }
    }
    return out
}

/// Entry `i` of the leading axis: [n, S] -> [S].
public func plane(_ x: Tensor, _ i: Int) -> Tensor {
    precondition(x.rank >= 1 && i >= 0 && i < x.shape[0], "index \(i) out of range for shape \(x.shape)")
    let n = x.count / x.shape[0]
    let out = Tensor(shape: Array(x.shape.dropFirst()), data: Array(x.data[(i * n)..<((i + 1) * n)]))
    out.record(op: "plane", parents: [x]) { g in
        var back = [Float](repeating: 0, count: x.count)
        back.replaceSubrange((i * n)..<((i + 1) * n), with: g)
        x.accumulate(back)
    }
    return out
}
