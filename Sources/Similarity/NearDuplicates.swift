import CBLAS
import Foundation

/// Near-duplicate groups: every pair of unit vectors with cosine ≥ threshold is joined (exact, one blocked matrix
/// product over all pairs), and groups are the connected components. Deterministic: members ascending, groups
/// by their first member.
public enum NearDuplicates {
    public struct Pair: Codable, Sendable { public var a: Int64; public var b: Int64; public var cosine: Float }

    /// The descriptor compared: each entry raised to `power` keeping its sign (power normalization; 0.5 is the
    /// signed square root of the instance-retrieval literature), then unit length. On the sample photos and their
    /// resized / recompressed / cropped copies, the square root widens the gap between the weakest link inside a
    /// photo's copies and the closest pair of different photos from 0.014 to 0.063 (docs/similar.md).
    public static func descriptors(_ v: VectorSet, power: Float = 0.5) throws -> VectorSet {
        var out = v
        if power != 1 { out.data = v.data.map { $0 < 0 ? -powf(-$0, power) : powf($0, power) } }
        return try out.prepared(for: .cosine)
    }

    public static func find(_ unit: VectorSet, threshold: Float) -> (groups: [[Int64]], pairs: [Pair]) {
        let n = unit.count, d = unit.dim, block = 1024
        var parent = Array(0..<n)
        func root(_ i: Int) -> Int { var i = i; while parent[i] != i { parent[i] = parent[parent[i]]; i = parent[i] }; return i }
        var pairs: [Pair] = []
        var scores = [Float](repeating: 0, count: block * block)
        unit.data.withUnsafeBufferPointer { p in
            for a0 in stride(from: 0, to: n, by: block) {
                let an = min(block, n - a0)
                for b0 in stride(from: a0, to: n, by: block) {
                    let bn = min(block, n - b0)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(an), Int32(bn), Int32(d), 1,
                                p.baseAddress! + a0 * d, Int32(d), p.baseAddress! + b0 * d, Int32(d), 0, &scores, Int32(bn))
                    for i in 0..<an {
                        for j in 0..<bn where b0 + j > a0 + i && scores[i * bn + j] >= threshold {
                            pairs.append(Pair(a: unit.ids[a0 + i], b: unit.ids[b0 + j], cosine: scores[i * bn + j]))
                            let ra = root(a0 + i), rb = root(b0 + j)
                            if ra != rb { parent[max(ra, rb)] = min(ra, rb) }
                        }
                    }
                }
            }
        }
        var members: [Int: [Int64]] = [:]
        for i in 0..<n { members[root(i), default: []].append(unit.ids[i]) }
        let groups = members.values.filter { $0.count > 1 }.map { $0.sorted() }.sorted { $0[0] < $1[0] }
        return (groups, pairs.sorted { ($0.a, $0.b) < ($1.a, $1.b) })
    }
}
