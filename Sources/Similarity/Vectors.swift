import CHNSW
import Foundation

/// How two embeddings are compared. Distances are hnswlib's: cosine and ip give 1 − a·b (cosine on unit vectors),
/// l2 the squared Euclidean distance; similarity is 1 − distance for cosine/ip and −distance for l2.
public enum Metric: String, Codable, Sendable, CaseIterable {
    case cosine, l2, ip

    var space: Int32 { self == .l2 ? Int32(VZ_HNSW_L2) : Int32(VZ_HNSW_IP) }

    public func similarity(distance: Float) -> Float { self == .l2 ? -distance : 1 - distance }
}

/// Row-major vectors with one id each (the SQLite image ids of an index, or positions for a loose folder).
public struct VectorSet: Sendable {
    public var ids: [Int64]
    public let dim: Int
    public var data: [Float]

    public init(ids: [Int64], dim: Int, data: [Float]) {
        precondition(data.count == ids.count * dim, "vector data does not match ids × dim")
        self.ids = ids; self.dim = dim; self.data = data
    }

    public var count: Int { ids.count }

    public func row(_ i: Int) -> ArraySlice<Float> { data[(i * dim)..<((i + 1) * dim)] }

    /// The vectors as the metric compares them: unit length for cosine (hnswlib's own normalization), as given
    /// otherwise. Every entry must be finite.
    public func prepared(for metric: Metric) throws -> VectorSet {
        if let bad = data.firstIndex(where: { !$0.isFinite }) {
            throw SimilarityError("vector of id \(ids[bad / dim]) has a non-finite entry")
        }
        guard metric == .cosine else { return self }
        var out = self
        out.data.withUnsafeMutableBufferPointer { p in
            for i in 0..<count { vz_hnsw_normalize(p.baseAddress! + i * dim, dim) }
        }
        return out
    }

    /// The rows whose ids are in `keep`, in this set's order.
    public func subset(_ keep: Set<Int64>) -> VectorSet {
        var ids: [Int64] = [], data: [Float] = []
        for (i, id) in self.ids.enumerated() where keep.contains(id) { ids.append(id); data += row(i) }
        return VectorSet(ids: ids, dim: dim, data: data)
    }
}

/// One search answer: the neighbour's id and its distance (nearest first).
public struct Neighbour: Codable, Sendable, Equatable {
    public var id: Int64
    public var distance: Float
    public init(id: Int64, distance: Float) { self.id = id; self.distance = distance }
}

public struct SimilarityError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Recall@k of `found` against `truth` (ann-benchmarks' definition: the fraction of the true k nearest returned).
public func recall(_ found: [[Neighbour]], truth: [[Neighbour]], k: Int) -> Double {
    precondition(found.count == truth.count)
    var hit = 0, total = 0
    for (f, t) in zip(found, truth) {
        let want = Set(t.prefix(k).map(\.id))
        hit += f.prefix(k).filter { want.contains($0.id) }.count
        total += want.count
    }
    return total == 0 ? 1 : Double(hit) / Double(total)
}
