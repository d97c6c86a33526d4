import CBLAS

/// Thin wrapper over cblas_sgemm on raw row-major buffers: C = alpha * op(A) * op(B) + beta * C.
@inline(__always)
func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
           alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
           b: UnsafePointer<Float>, ldb: Int,
           beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// sgemm split into tiles that our own threads run with single-threaded BLAS, each followed by `epilogue`
/// on the tile it just wrote (while it is still in cache): C[rows, cols] = op(A)[rows, :] · B[:, cols].
///
/// `prologue` runs on a tile's column range of B before the tile is multiplied (e.g. masking a gradient).
/// Tiles run over columns (spatial positions) first; when there are too few columns to keep every core busy
/// (7×7 and 14×14 layers), rows (output channels) are split too.
func tiledGemm(transA: Bool = false, m: Int, n: Int, k: Int,
               a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
               beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
               prologue: ((_ cols: Range<Int>) -> Void)? = nil,
               epilogue: ((_ rows: Range<Int>, _ cols: Range<Int>) -> Void)? = nil) {
    _ = blasIsSingleThreaded
    _ = mallocTuned
    // Column tile: keep the C tile (m × width floats) within ~192 KB of L2.
    let width = max(64, min(n, (48 * 1024 / max(m, 1)) / 16 * 16))
    let colTiles = (n + width - 1) / width
    // A prologue prepares B's columns for a tile, so each column range must belong to exactly one tile.
    let rowTiles = prologue != nil || colTiles >= 2 * Parallel.threads || m < 32
        ? 1 : max(1, min(Parallel.threads * 2 / colTiles, m / 16))
    let tiles = rowTiles * colTiles
    Parallel.forEachChunk(tiles) { range in
        for t in range {
            let r = t / colTiles, cTile = t % colTiles
            let rows = (m * r / rowTiles)..<(m * (r + 1) / rowTiles)
            let cols = (cTile * width)..<min(n, (cTile + 1) * width)
            prologue?(cols)
            let aRows = transA ? a + rows.lowerBound : a + rows.lowerBound * lda
            sgemm(transA: transA, m: rows.count, n: cols.count, k: k, a: aRows, lda: lda,
                  b: b + cols.lowerBound, ldb: ldb, beta: beta, c: c + rows.lowerBound * ldc + cols.lowerBound, ldc: ldc)
            epilogue?(rows, cols)
        }
    }
}

/// All parallelism is ours (tiles over threads); OpenBLAS's own pool would oversubscribe the two cores.
let blasIsSingleThreaded: Void = { openblas_set_num_threads(1) }()

/// C = alpha · op(A) · op(B) + beta · C on row-major buffers, the columns of C split over our threads (each
/// running single-threaded BLAS). For other modules' ops (the spectral image) that need a plain large product.
public func parallelGemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                         a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                         beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    _ = blasIsSingleThreaded
    let chunks = n >= 128 ? Parallel.threads : 1
    Parallel.forEachChunk(chunks) { range in
        for t in range {
            let cols = (n * t / chunks)..<(n * (t + 1) / chunks)
            let bCols = transB ? b + cols.lowerBound * ldb : b + cols.lowerBound
            sgemm(transA: transA, transB: transB, m: m, n: cols.count, k: k, alpha: alpha, a: a, lda: lda,
                  b: bCols, ldb: ldb, beta: beta, c: c + cols.lowerBound, ldc: ldc)
        }
    }
}
