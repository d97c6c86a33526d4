import CHNSW
import Foundation

/// hnswlib's graph through the C shim: one owner, one thread at a time (searches are single-threaded by design:
/// the figures this lab reports are per-core).
public final class HNSWIndex {
    /// hnswlib's own defaults (M 16, efConstruction 200, random_seed 100, ef 10).
    public struct Parameters: Codable, Sendable, Equatable {
        public var M = 16
        public var efConstruction = 200
        public var seed = 100
        public init(M: Int = 16, efConstruction: Int = 200, seed: Int = 100) {
            self.M = M; self.efConstruction = efConstruction; self.seed = seed
        }
        public func validate() throws {
            guard (2...1024).contains(M) else { throw SimilarityError("M must be 2…1024 (got \(M))") }
            guard (1...100_000).contains(efConstruction) else { throw SimilarityError("efConstruction must be 1…100000 (got \(efConstruction))") }
            guard seed >= 0 else { throw SimilarityError("the seed must be ≥ 0 (got \(seed))") }
        }
    }

    let handle: OpaquePointer
    public let metric: Metric
    public let dim: Int

    private init(handle: OpaquePointer, metric: Metric, dim: Int) { self.handle = handle; self.metric = metric; self.dim = dim }
    deinit { vz_hnsw_free(handle) }

    static func call(_ what: String, _ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws -> Int32 {
        var err = [CChar](repeating: 0, count: 512)
        let rc = err.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
        guard rc == Int32(VZ_HNSW_OK) else {
            let message = String(cString: err)
            if rc == Int32(VZ_HNSW_CORRUPT) { throw CorruptIndex(reason: message) }
            throw SimilarityError("hnswlib: \(what): \(message)")
        }
        return rc
    }

    public struct CorruptIndex: Error, CustomStringConvertible {
        public var reason: String
        public var description: String { "not a valid hnswlib index (\(reason))" }
    }

    public static func empty(metric: Metric, dim: Int, capacity: Int, parameters p: Parameters) throws -> HNSWIndex {
        try p.validate()
        var h: OpaquePointer?
        _ = try call("create") { vz_hnsw_new(metric.space, dim, max(capacity, 1), p.M, p.efConstruction, p.seed, &h, $0, $1) }
        return HNSWIndex(handle: h!, metric: metric, dim: dim)
    }

    /// Reads a saved graph; the shim validates the whole file before hnswlib parses it (`CorruptIndex` if not).
    public static func load(_ url: URL, metric: Metric, dim: Int, capacity: Int = 0) throws -> HNSWIndex {
        var h: OpaquePointer?
        _ = try call("load \(url.path)") { vz_hnsw_load(url.path, metric.space, dim, capacity, &h, $0, $1) }
        return HNSWIndex(handle: h!, metric: metric, dim: dim)
    }

    /// Adds prepared vectors (see `VectorSet.prepared`) in their order, on this thread.
    public func add(_ vectors: VectorSet) throws {
        precondition(vectors.dim == dim)
        guard vectors.count > 0 else { return }
        let labels = vectors.ids.map { UInt64(bitPattern: $0) }
        _ = try HNSWIndex.call("add") { vz_hnsw_add(handle, vectors.data, labels, vectors.count, $0, $1) }
    }

    public func markDeleted(_ id: Int64) throws {
        _ = try HNSWIndex.call("delete \(id)") { vz_hnsw_mark_deleted(handle, UInt64(bitPattern: id), $0, $1) }
    }

    public func reseed(_ seed: Int) { vz_hnsw_reseed(handle, seed) }

    /// k nearest per prepared query, nearest first (fewer when the index holds fewer live vectors).
    public func search(_ queries: VectorSet, k: Int, ef: Int) throws -> [[Neighbour]] {
        precondition(queries.dim == dim && k > 0)
        vz_hnsw_set_ef(handle, max(ef, 1))
        var labels = [UInt64](repeating: 0, count: queries.count * k)
        var distances = [Float](repeating: 0, count: queries.count * k)
        _ = try HNSWIndex.call("search") { vz_hnsw_search(handle, queries.data, queries.count, k, &labels, &distances, $0, $1) }
        return (0..<queries.count).map { q in
            (0..<k).compactMap { j in
                labels[q * k + j] == UInt64.max ? nil : Neighbour(id: Int64(bitPattern: labels[q * k + j]), distance: distances[q * k + j])
            }
        }
    }

    public func save(to url: URL) throws {
        _ = try HNSWIndex.call("save \(url.path)") { vz_hnsw_save(handle, url.path, $0, $1) }
    }

    public var count: Int { vz_hnsw_count(handle) }
    public var deletedCount: Int { vz_hnsw_deleted(handle) }
    public var M: Int { vz_hnsw_M(handle) }
    public var efConstruction: Int { vz_hnsw_ef_construction(handle) }

    /// Every stored id with its deleted mark, in insertion order.
    public func labels() -> [(id: Int64, deleted: Bool)] {
        let n = count
        var labels = [UInt64](repeating: 0, count: n), deleted = [UInt8](repeating: 0, count: n)
        let got = vz_hnsw_labels(handle, &labels, &deleted, n)
        return (0..<got).map { (Int64(bitPattern: labels[$0]), deleted[$0] != 0) }
    }

    /// The shim's file checks on raw bytes (tests and fuzzing): nil if valid, else the reason.
    public static func validate(_ bytes: [UInt8], dim: Int) -> String? {
        var err = [CChar](repeating: 0, count: 512)
        let rc = vz_hnsw_validate(bytes, bytes.count, dim, &err, err.count)
        return rc == Int32(VZ_HNSW_OK) ? nil : String(cString: err)
    }
}
