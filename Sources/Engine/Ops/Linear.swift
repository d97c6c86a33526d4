import CBLAS

/// y = x · Wᵀ + b, with x: [N, In], weight: [Out, In] (PyTorch layout), bias: [Out].
public func linear(_ x: Tensor, _ weight: Tensor, bias: Tensor? = nil) -> Tensor {
    precondition(x.rank == 2 && weight.rank == 2 && x.shape[1] == weight.shape[1],
                 "linear: input \(x.shape) does not fit weight \(weight.shape)")
    _ = blasIsSingleThreaded
    let n = x.shape[0], inF = x.shape[1], outF = weight.shape[0]
    var y = [Float](repeating: 0, count: n * outF)
    if let b = bias { for r in 0..<n { for o in 0..<outF { y[r * outF + o] = b.data[o] } } }
    // The weight is read once whatever the batch (VGG16's first dense layer is 411 MB): split its rows over our threads.
    x.data.withUnsafeBufferPointer { xp in weight.data.withUnsafeBufferPointer { wp in y.withUnsafeMutableBufferPointer { yp in
        let (xa, wa, ya) = (xp.baseAddress!, wp.baseAddress!, yp.baseAddress!)
        Parallel.forEachChunk(outF, grain: 64) { rows in
            if n == 1 {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(rows.count), Int32(inF), 1, wa + rows.lowerBound * inF, Int32(inF),
                            xa, 1, 1, ya + rows.lowerBound, 1)
            } else {
                sgemm(transB: true, m: n, n: rows.count, k: inF, a: xa, lda: inF, b: wa + rows.lowerBound * inF, ldb: inF,
                      beta: 1, c: ya + rows.lowerBound, ldc: outF)
            }
        }
    } } }
    let out = Tensor(shape: [n, outF], data: y)
    out.record(op: "linear", parents: [x, weight] + (bias.map { [$0] } ?? [])) { g in
        g.withUnsafeBufferPointer { gp in
            if x.tracksGrad {  // dX = dY · W
                var dx = [Float](repeating: 0, count: x.count)
                weight.data.withUnsafeBufferPointer { wp in dx.withUnsafeMutableBufferPointer { dxp in
                    let (ga, wa, da) = (gp.baseAddress!, wp.baseAddress!, dxp.baseAddress!)
                    Parallel.forEachChunk(inF, grain: 256) { cols in
                        if n == 1 {
                            cblas_sgemv(CblasRowMajor, CblasTrans, Int32(outF), Int32(cols.count), 1, wa + cols.lowerBound, Int32(inF),
                                        ga, 1, 0, da + cols.lowerBound, 1)
                        } else {
                            sgemm(m: n, n: cols.count, k: outF, a: ga, lda: outF, b: wa + cols.lowerBound, ldb: inF,
                                  c: da + cols.lowerBound, ldc: inF)
                        }
                    }
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
