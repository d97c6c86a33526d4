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

/// Tensors of one shape but the channel axis joined along it: [N, C_i, ...] -> [N, ΣC_i, ...] (`concat` on axis 1).
public func concatChannels(_ parts: [Tensor]) -> Tensor {
    precondition(!parts.isEmpty && parts.allSatisfy { $0.rank >= 2 && $0.shape[0] == parts[0].shape[0]
        && Array($0.shape.dropFirst(2)) == Array(parts[0].shape.dropFirst(2)) }, "concat: shapes \(parts.map(\.shape)) do not fit")
    return concat(parts, axis: 1)
}

/// [N, C, H, W] -> [N, H·W·C] in channels-last order (Keras' `Flatten` on its NHWC tensors).
public func flattenChannelsLast(_ x: Tensor) -> Tensor {
    precondition(x.rank == 4, "flattenChannelsLast wants NCHW, got \(x.shape)")
    let n = x.shape[0], c = x.shape[1], plane = x.shape[2] * x.shape[3]
    var y = [Float](repeating: 0, count: x.count)
    for b in 0..<n { for ch in 0..<c { for i in 0..<plane { y[(b * plane + i) * c + ch] = x.data[(b * c + ch) * plane + i] } } }
    let out = Tensor(shape: [n, c * plane], data: y)
    out.record(op: "flattenNHWC", parents: [x]) { g in
        var d = [Float](repeating: 0, count: x.count)
        for b in 0..<n { for ch in 0..<c { for i in 0..<plane { d[(b * c + ch) * plane + i] = g[(b * plane + i) * c + ch] } } }
        x.accumulate(d)
    }
    return out
}

/// Zero padding of the two spatial axes (Keras `ZeroPadding2D`, ONNX `Pad` with constant 0).
public func zeroPad2d(_ x: Tensor, top: Int, bottom: Int, left: Int, right: Int) -> Tensor {
    precondition(x.rank == 4 && min(top, bottom, left, right) >= 0, "zeroPad2d wants NCHW and padding ≥ 0")
    let planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3]
    let oh = h + top + bottom, ow = w + left + right
    var y = [Float](repeating: 0, count: planes * oh * ow)
    for p in 0..<planes { for r in 0..<h {
        y.replaceSubrange(((p * oh + r + top) * ow + left)..<((p * oh + r + top) * ow + left + w), with: x.data[((p * h + r) * w)..<((p * h + r + 1) * w)])
    } }
    let out = Tensor(shape: [x.shape[0], x.shape[1], oh, ow], data: y)
    out.record(op: "zeroPad2d", parents: [x]) { g in
        var d = [Float](repeating: 0, count: x.count)
        for p in 0..<planes { for r in 0..<h {
            d.replaceSubrange(((p * h + r) * w)..<((p * h + r + 1) * w), with: g[((p * oh + r + top) * ow + left)..<((p * oh + r + top) * ow + left + w)])
        } }
        x.accumulate(d)
    }
    return out
}
