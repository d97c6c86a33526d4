import CBLAS
import Foundation

/// Brute-force k-nearest search: one matrix product of the queries with every stored vector (BLAS, blocked so
/// the score tile stays small), then a top-k per query. The baseline every approximate answer is judged by.
/// Ties in distance go to the smaller id, so the answer does not depend on storage order.
public enum ExactSearch {
    /// `queries` and `base` already prepared for `metric` (see `VectorSet.prepared`). `exclude[q]`, if given, is
    /// an id never returned for query q (the query itself when it is an indexed image).
    public static func search(_ queries: VectorSet, in base: VectorSet, k: Int, metric: Metric,
                              exclude: [Int64?]? = nil, threads: Int = 2) -> [[Neighbour]] {
        precondition(queries.dim == base.dim && k > 0)
        let nq = queries.count, nb = base.count, d = base.dim
        var out = [[Neighbour]](repeating: [], count: nq)
        guard nq > 0, nb > 0 else { return out }
        let norms: [Float] = metric == .l2 ? (0..<nb).map { i in base.row(i).reduce(0) { $0 + $1 * $1 } } : []
        let qBlock = 64, bBlock = 4096
        let qBlocks = (nq + qBlock - 1) / qBlock
        out.withUnsafeMutableBufferPointer { results in
            queries.data.withUnsafeBufferPointer { qp in
                base.data.withUnsafeBufferPointer { bp in
                    DispatchQueue.concurrentPerform(iterations: min(max(threads, 1), qBlocks)) { worker in
                        var scores = [Float](repeating: 0, count: qBlock * bBlock)
                        var block = worker
                        while block < qBlocks {
                            let q0 = block * qBlock, qn = min(qBlock, nq - q0)
                            var heaps = (0..<qn).map { _ in TopK(k: k) }
                            var qNorms = [Float](repeating: 0, count: qn)
                            if metric == .l2 { for i in 0..<qn { qNorms[i] = queries.row(q0 + i).reduce(0) { $0 + $1 * $1 } } }
                            for b0 in stride(from: 0, to: nb, by: bBlock) {
                                let bn = min(bBlock, nb - b0)
                                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(qn), Int32(bn), Int32(d), 1,
                                            qp.baseAddress! + q0 * d, Int32(d), bp.baseAddress! + b0 * d, Int32(d), 0, &scores, Int32(bn))
                                for i in 0..<qn {
                                    let skip = exclude?[q0 + i]
                                    for j in 0..<bn {
                                        let id = base.ids[b0 + j]
                                        if id == skip { continue }
                                        let s = scores[i * bn + j]
                                        let dist = metric == .l2 ? max(0, qNorms[i] + norms[b0 + j] - 2 * s) : 1 - s
                                        heaps[i].offer(Neighbour(id: id, distance: dist))
                                    }
                                }
                            }
                            for i in 0..<qn { results[q0 + i] = heaps[i].sorted() }
                            block += max(threads, 1)
                        }
                    }
                }
            }
        }
        return out
    }
}

/// The k smallest by (distance, id): a bounded max-heap.
struct TopK {
    let k: Int
    private var heap: [Neighbour] = []
    init(k: Int) { self.k = k; heap.reserveCapacity(k) }

    private static func worse(_ a: Neighbour, _ b: Neighbour) -> Bool { a.distance > b.distance || (a.distance == b.distance && a.id > b.id) }

    mutating func offer(_ n: Neighbour) {
        if heap.count < k {
            heap.append(n)
            var i = heap.count - 1
            while i > 0 { let p = (i - 1) / 2; if TopK.worse(heap[i], heap[p]) { heap.swapAt(i, p); i = p } else { break } }
        } else if TopK.worse(heap[0], n) {
            heap[0] = n
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count && TopK.worse(heap[l], heap[m]) { m = l }
                if r < heap.count && TopK.worse(heap[r], heap[m]) { m = r }
                if m == i { break }
                heap.swapAt(i, m); i = m
            }
        }
    }

    func sorted() -> [Neighbour] { heap.sorted { TopK.worse($1, $0) } }
}
