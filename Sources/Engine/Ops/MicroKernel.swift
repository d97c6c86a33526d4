import CKernels
import Foundation

/// The engine's own matrix-product kernel, for products OpenBLAS runs poorly: many small ones (Winograd's 36 per
/// block of tiles), each called from our threads, where OpenBLAS re-packs both operands on every call and its
/// buffer pool serializes concurrent callers.
///
/// C (rows × cols) = A · B with both operands packed in panels (GotoBLAS' layout): A in panels of `mr` = 6 rows,
/// k-major (`a[p][kk][r]`, packed once per weight tensor), B in panels of `nr` = 16 columns (`b[q][kk][c]`, written
/// so by whoever makes it). The 6×16 tile of C lives in 12 AVX registers through the k loop: per k, two vector
/// loads of B, six broadcasts of A and twelve FMAs.
/// On a CPU with AVX-512 the products run a 6×32 tile in 12 zmm registers instead (`vz_tile_6x32_avx512` in
/// CKernels: the same fused multiply-adds in the same order, so the same bits, at twice the width per instruction).
enum MicroKernel {
    typealias V8 = SIMD8<Float>
    static let mr = 6, nr = 16

    /// Whether the products use the AVX-512 tile: the CPU has it and `VIZLAB_NO_AVX512` is not set (for A/B runs).
    static let avx512: Bool = vz_cpu_has_avx512() != 0 && ProcessInfo.processInfo.environment["VIZLAB_NO_AVX512"] == nil

    /// Rows of an `m`-row matrix rounded up to whole A panels.
    static func paddedRows(_ m: Int) -> Int { (m + mr - 1) / mr * mr }

    /// Packs row-major A (m × k, leading dimension lda) into 6-row panels, zero rows past m.
    static func packA(_ a: UnsafePointer<Float>, m: Int, k: Int, lda: Int, into out: UnsafeMutablePointer<Float>) {
        for p in 0..<(m + mr - 1) / mr {
            let dst = out + p * mr * k
            for kk in 0..<k { for r in 0..<mr {
                let row = p * mr + r
                dst[kk * mr + r] = row < m ? a[row * lda + kk] : 0
            } }
        }
    }

    /// C[0..<rows, 0..<cols] = A panel · B panel over `k` (rows ≤ 6, cols ≤ 16; partial tiles write only their part).
    /// B's rows are `ldb` apart: 16 for a packed panel, the matrix's row length when read in place.
    @inline(__always)
    static func tile(k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, ldb: Int = nr, c: UnsafeMutablePointer<Float>, ldc: Int,
                     rows: Int, cols: Int) {
        var c00 = V8(), c01 = V8(), c10 = V8(), c11 = V8(), c20 = V8(), c21 = V8()
        var c30 = V8(), c31 = V8(), c40 = V8(), c41 = V8(), c50 = V8(), c51 = V8()
        var ap = a, bp = b
        for _ in 0..<k {
            let b0 = UnsafeRawPointer(bp).loadUnaligned(as: V8.self), b1 = UnsafeRawPointer(bp + 8).loadUnaligned(as: V8.self)
            var x = V8(repeating: ap[0]); c00.addProduct(x, b0); c01.addProduct(x, b1)
            x = V8(repeating: ap[1]); c10.addProduct(x, b0); c11.addProduct(x, b1)
            x = V8(repeating: ap[2]); c20.addProduct(x, b0); c21.addProduct(x, b1)
            x = V8(repeating: ap[3]); c30.addProduct(x, b0); c31.addProduct(x, b1)
            x = V8(repeating: ap[4]); c40.addProduct(x, b0); c41.addProduct(x, b1)
            x = V8(repeating: ap[5]); c50.addProduct(x, b0); c51.addProduct(x, b1)
            ap += mr; bp += ldb
        }
        if rows == mr && cols == nr {
            @inline(__always) func store(_ r: Int, _ v0: V8, _ v1: V8) {
                UnsafeMutableRawPointer(c + r * ldc).storeBytes(of: v0, as: V8.self)
                UnsafeMutableRawPointer(c + r * ldc + 8).storeBytes(of: v1, as: V8.self)
            }
            store(0, c00, c01); store(1, c10, c11); store(2, c20, c21); store(3, c30, c31); store(4, c40, c41); store(5, c50, c51)
            return
        }
        // A partial tile: through a stack buffer (an array literal here was a heap allocation per edge tile).
        withUnsafeTemporaryAllocation(of: V8.self, capacity: 12) { acc in
            acc[0] = c00; acc[1] = c01; acc[2] = c10; acc[3] = c11; acc[4] = c20; acc[5] = c21
            acc[6] = c30; acc[7] = c31; acc[8] = c40; acc[9] = c41; acc[10] = c50; acc[11] = c51
            let f = UnsafeRawPointer(acc.baseAddress!).assumingMemoryBound(to: Float.self)
            for r in 0..<rows { for col in 0..<cols { c[r * ldc + col] = f[r * nr + col] } }
        }
    }

    /// C rows `rowPanels` (in 6-row panels, clipped to m) = A · B for all n columns: A packed by `packA` (k columns),
    /// B in 16-column panels (k × 16 each, ⌈n/16⌉ of them), C row-major with leading dimension ldc.
    /// Each A panel (6 × k) stays in L1 while every B panel passes it.
    /// With AVX-512: 6×32 tiles (two B panels each), and a last ≤ 16 columns (all of them for Winograd's 16 tiles of a
    /// 14×14 plane) as 12×16 tiles over pairs of row panels, full vectors instead of half-masked ones.
    static func gemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                     c: UnsafeMutablePointer<Float>, ldc: Int, rowPanels: Range<Int>) {
        let panels = rowPanels.clamped(to: 0..<(m + mr - 1) / mr)
        if avx512 {
            let tail = narrowTail(n)
            for p in panels {
                let rows = min(mr, m - p * mr), ap = a + p * mr * k
                for q in Swift.stride(from: 0, to: tail.lowerBound / nr, by: 2) {
                    let b0 = b + q * nr * k
                    vz_tile_6x32_avx512(k, ap, b0, b0 + nr * k, nr, c + p * mr * ldc + q * nr, ldc, rows, min(2 * nr, n - q * nr), nil, 0, 0)
                }
            }
            if !tail.isEmpty {
                narrowTiles(m: m, k: k, a: a, b: b + tail.lowerBound * k, ldb: nr, c: c + tail.lowerBound, ldc: ldc, panels: panels,
                            cols: tail.count, depth: 0..<k, bias: nil, act: 0, accumulate: false)
            }
            return
        }
        for p in panels {
            let rows = min(mr, m - p * mr), ap = a + p * mr * k
            var q = 0
            while q * nr < n {
                tile(k: k, a: ap, b: b + q * nr * k, c: c + p * mr * ldc + q * nr, ldc: ldc, rows: rows, cols: min(nr, n - q * nr))
                q += 1
            }
        }
    }

    /// The last columns of an n-column product that the 12×16 tile runs: the remainder past whole 32-column tiles
    /// when it is 16 columns or fewer (empty otherwise: a wider remainder is one 6×32 tile).
    static func narrowTail(_ n: Int) -> Range<Int> {
        let rest = n % (2 * nr)
        return rest > 0 && rest <= nr ? (n - rest)..<n : n..<n
    }

    /// C[panels' rows, 0..<cols] (cols ≤ 16) = A[depth] · B (+ C with `accumulate`), 12×16 tiles over pairs of the
    /// row panels (a lone last one as 6 rows), the bias and activation applied when given. A packed by `packA` over
    /// k columns; B's rows ldb apart from `b` (its row `depth.lowerBound` first).
    static func narrowTiles(m: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, ldb: Int,
                            c: UnsafeMutablePointer<Float>, ldc: Int, panels: Range<Int>, cols: Int, depth: Range<Int>,
                            bias: UnsafePointer<Float>?, act: Int32, accumulate: Bool) {
        for p in Swift.stride(from: panels.lowerBound, to: panels.upperBound, by: 2) {
            let pair = p + 1 < panels.upperBound, rows = min(pair ? 2 * mr : mr, m - p * mr)
            let a0 = a + p * mr * k + depth.lowerBound * mr, a1 = pair ? a0 + mr * k : a0
            vz_tile_12x16_avx512(depth.count, a0, a1, b, ldb, c + p * mr * ldc, ldc, rows, cols, bias.map { $0 + p * mr }, act,
                                 accumulate ? 1 : 0)
        }
    }

    /// Columns per tile: 32 for the AVX-512 tile, 16 for the AVX2 one.
    static let tileColumns = avx512 ? 2 * nr : nr

    /// Blocks of B's n columns (k rows) within ~384 KB (L2), in whole tiles, balanced (their tile counts differ by at
    /// most one: 196 columns in three blocks are 64 + 64 + 68, not 96 + 96 + 4): their count and the widest's width.
    static func columnBlocks(n: Int, k: Int) -> (count: Int, width: Int) {
        let w = tileColumns
        let maxCols = max(w, (96 * 1024 / max(k, 1)) / w * w)
        let blocks = (n + maxCols - 1) / maxCols, tiles = (n + w - 1) / w
        return (blocks, (tiles + blocks - 1) / blocks * w)
    }

    /// The columns of block `i` of `count` (`columnBlocks`) over n columns.
    static func columnBlock(_ i: Int, of count: Int, n: Int) -> Range<Int> {
        let w = tileColumns, tiles = (n + w - 1) / w
        return min(n, tiles * i / count * w)..<min(n, tiles * (i + 1) / count * w)
    }

    /// C (m × n) = act(A · B + bias[row]) for row-major B (k × n, rows `ldb` apart) read in place, A packed by
    /// `packA`. The AVX-512 tile adds the bias and clamps in registers before its store; the AVX2 path runs
    /// `Activation.apply` on each finished row panel of a block while it is in cache (the same bits). GotoBLAS' blocking: B in column
    /// blocks of at most 384 KB, every A panel passing each block; blocks (or, when there are few, row panels) are
    /// split over our threads. A last partial 16-column panel is copied into a zero-padded one.
    /// With `batch` > 1 the same A multiplies `batch` pairs (B + i·strideB, C + i·strideC), all of their blocks
    /// one pool of tasks: one fork/join for the batch, and small planes (7×7: four panels) balanced over the threads.
    static func gemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, ldb: Int,
                     c: UnsafeMutablePointer<Float>, ldc: Int, batch: Int = 1, strideB: Int = 0, strideC: Int = 0,
                     bias: UnsafePointer<Float>? = nil, activation: Activation = .identity) {
        let fused = bias != nil || activation != .identity
        let act = activation.kernelCode
        let panels = (m + mr - 1) / mr
        let blocks = columnBlocks(n: n, k: k).count
        let units = blocks * batch
        let rowChunks = units >= 2 * Parallel.threads ? 1 : min(panels, (2 * Parallel.threads + units - 1) / units)
        Parallel.forEachChunk(units * rowChunks) { tasks in
            var edge: UnsafeMutablePointer<Float>?
            defer { edge?.deallocate() }
            for task in tasks {
                let unit = task / rowChunks, chunk = task % rowChunks
                let image = unit / blocks, blk = unit % blocks
                let b = b + image * strideB, c = c + image * strideC
                let cols = columnBlock(blk, of: blocks, n: n)
                let ps = (panels * chunk / rowChunks)..<(panels * (chunk + 1) / rowChunks)
                if avx512 {
                    avx512Block(m: m, k: k, a: a, b: b, ldb: ldb, c: c, ldc: ldc, panels: ps, columns: cols, bias: bias, act: act)
                    continue
                }
                // The last partial panel of this block, padded.
                let fullPanels = cols.count / nr, rest = cols.count % nr
                if rest > 0 {
                    if edge == nil { edge = .allocate(capacity: k * nr) }
                    let e = edge!, src = b + cols.lowerBound + fullPanels * nr
                    for kk in 0..<k {
                        for col in 0..<rest { e[kk * nr + col] = src[kk * ldb + col] }
                        for col in rest..<nr { e[kk * nr + col] = 0 }
                    }
                }
                for p in ps {
                    let rows = min(mr, m - p * mr), ap = a + p * mr * k, cRow = c + p * mr * ldc
                    for q in 0..<fullPanels {
                        let col = cols.lowerBound + q * nr
                        tile(k: k, a: ap, b: b + col, ldb: ldb, c: cRow + col, ldc: ldc, rows: rows, cols: nr)
                    }
                    if rest > 0 {
                        tile(k: k, a: ap, b: edge!, c: cRow + cols.lowerBound + fullPanels * nr, ldc: ldc, rows: rows, cols: rest)
                    }
                    if fused {
                        for r in 0..<rows { activation.apply(cRow + r * ldc + cols.lowerBound, count: cols.count, bias: bias?[p * mr + r] ?? 0) }
                    }
                }
            }
        }
    }

    /// Depth of one k block of the AVX-512 products: a tile's B operand (kc × 32 floats, 32 KB) stays in L1 while
    /// every row panel passes it, and one panel's A (6 × kc, 6 KB) is a short stream from L2.
    static let kc = 256

    /// The k blocks of a k-deep product: ⌈k / kc⌉ of them, of even depths (k = 384: two of 192, not 256 + 128).
    static func depthBlocks(_ k: Int) -> [Range<Int>] {
        let count = max(1, (k + kc - 1) / kc)
        return (0..<count).map { (k * $0 / count)..<(k * ($0 + 1) / count) }
    }

    /// C[row panels `panels`, `columns`] = act(A · B + bias) with the AVX-512 6×32 tile on the calling thread: A packed
    /// by `packA`, B (rows `ldb` apart) read in place or packed here. GotoBLAS' loops: k in blocks (`depthBlocks`),
    /// and in each block one 32-column tile of B at a time against every row panel (B from L1, A from L2), the tiles
    /// accumulating into C from the second block on and the bias and activation applied by the last. Every element
    /// is still one chain of FMAs in k order: the same bits.
    /// B's tile is copied into a contiguous, zero-padded kc × 32 panel when several row panels will read it (its
    /// rows in place straddle cache lines when ldb is not a multiple of 16, and a power-of-two ldb maps them onto a
    /// few L1 sets); a lone panel or two read it in place, where the copy would cost more than it saves. A last tile of
    /// 16 columns or fewer, when two or more row panels share it, runs as 12×16 tiles over pairs of them.
    static func avx512Block(m: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, ldb: Int,
                            c: UnsafeMutablePointer<Float>, ldc: Int, panels: Range<Int>, columns: Range<Int>,
                            bias: UnsafePointer<Float>?, act: Int32) {
        let depth = depthBlocks(k), tile = 2 * nr
        let pack = panels.count >= 3
        withUnsafeTemporaryAllocation(of: Float.self, capacity: pack ? depth.map(\.count).max()! * tile : 0) { panel in
            for (i, kb) in depth.enumerated() {
                let last = i == depth.count - 1
                var col = columns.lowerBound
                while col < columns.upperBound {
                    let cols = min(tile, columns.upperBound - col)
                    var bk = b + kb.lowerBound * ldb + col, bld = ldb
                    if pack, let dst = panel.baseAddress {
                        for kk in 0..<kb.count {
                            let from = bk + kk * ldb, to = dst + kk * tile
                            to.update(from: from, count: cols)
                            if cols < tile { (to + cols).update(repeating: 0, count: tile - cols) }
                        }
                        bk = UnsafePointer(dst); bld = tile
                    }
                    if cols <= nr && panels.count >= 2 {
                        narrowTiles(m: m, k: k, a: a, b: bk, ldb: bld, c: c + col, ldc: ldc, panels: panels, cols: cols, depth: kb,
                                    bias: last ? bias : nil, act: last ? act : 0, accumulate: i > 0)
                    } else {
                        for p in panels {
                            let rows = min(mr, m - p * mr), ap = a + p * mr * k + kb.lowerBound * mr
                            vz_tile_6x32_avx512(kb.count, ap, bk, bk + nr, bld, c + p * mr * ldc + col, ldc, rows, cols,
                                                last ? bias.map { $0 + p * mr } : nil, last ? act : 0, i > 0 ? 1 : 0)
                        }
                    }
                    col += tile
                }
            }
        }
    }
}
