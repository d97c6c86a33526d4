import Foundation
import CBLAS

/// Work splitting for the kernels that are not BLAS calls (depthwise conv, elementwise epilogues).
public enum Parallel {
    /// Worker count for Swift-side kernels; BLAS uses its own pool.
    nonisolated(unsafe) public static var threads: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Runs `body(range)` over `count` items split into at most `threads` contiguous chunks.
    /// Small jobs (below `grain` items) run inline: waking a thread costs more than they do.
    @inline(__always)
    public static func forEachChunk(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        let chunks = min(threads, max(1, count / max(grain, 1)))
        if chunks <= 1 { body(0..<count); return }
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = count * c / chunks, hi = count * (c + 1) / chunks
            if lo < hi { body(lo..<hi) }
        }
    }

    /// Sets the thread count of our kernels. OpenBLAS stays single-threaded whatever the count: all parallelism is
    /// ours (tiles over threads), so a product's summation order — and so its bits — never depends on whether
    /// OpenBLAS' own pool happened to be on (the same seed must give the same weights).
    public static func setThreads(_ n: Int) {
        threads = max(1, n)
        _ = blasIsSingleThreaded
        openblas_set_num_threads(1)
    }
}

#if os(Linux)
/// Activations are multi-megabyte arrays allocated and freed on every pass. glibc would hand each one
/// back to the kernel (mmap/trim) and page-fault it in again next pass, which costs more than the math;
/// keeping freed memory in the heap makes steady-state passes fault-free.
let mallocTuned: Void = {
    _ = mallopt(M_MMAP_THRESHOLD, 512 << 20)
    _ = mallopt(M_TRIM_THRESHOLD, 1 << 30)
}()
#else
let mallocTuned: Void = ()
#endif
