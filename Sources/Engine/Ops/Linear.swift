/// y = x · Wᵀ + b, with x: [N, In], weight: [Out, In] (PyTorch layout), bias: [Out].
public func linear(_ x: Tensor, _ weight: Tensor, bias: Tensor? = nil) -> Tensor {
    precondition(x.rank == 2 && weight.rank == 2 && x.shape[1] == weight.shape[1],
                 "linear: input \(x.shape) does not fit weight \(weight.shape)")
    _ = blasIsSingleThreaded
    let n = x.shape[0], inF = x.shape[1], outF = weight.shape[0]
    var y = [Float](repeating: 0, count: n * outF)
    if let b = bias { for r in 0..<n { for o in 0..<outF { y[r * outF + o] = b.data[o] } } }
    x.data.withUnsafeBufferPointer { xp in weight.data.withUnsafeBufferPointer { wp in y.withUnsafeMutableBufferPointer { yp in
        sgemm(transB: true, m: n, n: outF, k: inF, a: xp.baseAddress!, lda: inF, b: wp.baseAddress!, ldb: inF,
              beta: 1, c: yp.baseAddress!, ldc: outF)
    } } }
    let out = Tensor(shape: [n, outF], data: y)
    out.record(op: "linear", parents: [x, weight] + (bias.map { [$0] } ?? [])) { g in
        g.withUnsafeBufferPointer { gp in
            if x.tracksGrad {  // dX = dY · W
                var dx = [Float](repeating: 0, count: x.count)
                weight.data.withUnsafeBufferPointer { wp in dx.withUnsafeMutableBufferPointer { dxp in
                    sgemm(m: n, n: inF, k: outF, a: gp.baseAddress!, lda: outF, b: wp.baseAddress!, ldb: inF,
                          c: dxp.baseAddress!, ldc: inF)
                } }
                x.accumulate(dx)
            }
            if weight.tracksGrad {  // dW = dYᵀ · X
                var dw = [Float](repeating: 0, count: weight.count)
                x.data.withUnsafeBufferPointer { xp in dw.withUnsafeMutableBufferPointer { dwp in
                    sgemm(transA: true, m: outF, n: inF, k: n, a: gp.baseAddress!, lda: outF, b: xp.baseAddress!, ldb: inF,
                          c: dwp.baseAddress!, ldc: inF)
                } }
                weight.accumulate(dw)
            }
            if let b = bias, b.tracksGrad {
                var db = [Float](repeating: 0, count: outF)
                for r in 0..<n { for o in 0..<outF { db[o] += gp[r * outF + o] } }
                b.accumulate(db)
            }
        }
    }
    return out
}
