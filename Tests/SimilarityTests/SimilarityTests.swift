import Foundation
import Similarity
import TestSupport
import XCTest

/// Clustered random vectors: `clusters` centres, points scattered around them (so neighbours are meaningful).
func clustered(_ n: Int, dim: Int, clusters: Int = 20, seed: UInt64 = 1, firstID: Int64 = 1) -> VectorSet {
    var rng = TestRNG(seed: seed)
    let centres = (0..<clusters).map { _ in rng.uniform(dim) }
    var data: [Float] = []
    for i in 0..<n { data += centres[i % clusters].map { $0 + 0.3 * Float.random(in: -1...1, using: &rng) } }
    return VectorSet(ids: (0..<n).map { firstID + Int64($0) }, dim: dim, data: data)
}

/// The definition, in Double: every distance, sorted by (distance, id).
func naive(_ q: VectorSet, _ b: VectorSet, k: Int, metric: Metric) -> [[Int64]] {
    (0..<q.count).map { i in
        let qi = Array(q.row(i))
        return (0..<b.count).map { j -> (Double, Int64) in
            let bj = Array(b.row(j))
            let d: Double = metric == .l2 ? zip(qi, bj).reduce(0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
                                          : 1 - zip(qi, bj).reduce(0) { $0 + Double($1.0) * Double($1.1) }
            return (d, b.ids[j])
        }.sorted { $0 < $1 }.prefix(k).map(\.1)
    }
}

final class ExactSearchTests: XCTestCase {
    func testMatchesTheDefinitionForEveryMetric() throws {
        let base = clustered(700, dim: 24, seed: 3), queries = clustered(40, dim: 24, seed: 4, firstID: 10_000)
        for metric in Metric.allCases {
            let b = try base.prepared(for: metric), q = try queries.prepared(for: metric)
            let got = ExactSearch.search(q, in: b, k: 7, metric: metric).map { $0.map(\.id) }
            XCTAssertEqual(got, naive(q, b, k: 7, metric: metric), "\(metric)")
        }
    }

    func testExcludesTheQueryItselfAndBreaksTiesByID() throws {
        // Three identical vectors: equal distances, so the smaller ids come first; the excluded id never appears.
        let v: [Float] = [1, 0, 0]
        let base = VectorSet(ids: [5, 3, 9, 1], dim: 3, data: v + v + v + [0, 1, 0])
        let got = ExactSearch.search(base, in: base, k: 2, metric: .cosine, exclude: [5, 3, 9, 1])
        XCTAssertEqual(got.map { $0.map(\.id) }, [[3, 9], [5, 9], [3, 5], [3, 5]])
    }

    func testUnitVectorsAndNonFiniteInput() throws {
        let u = try VectorSet(ids: [1], dim: 2, data: [3, 4]).prepared(for: .cosine)
        XCTAssertEqual(u.data[0], 0.6, accuracy: 1e-7); XCTAssertEqual(u.data[1], 0.8, accuracy: 1e-7)
        XCTAssertThrowsError(try VectorSet(ids: [1], dim: 2, data: [.nan, 1]).prepared(for: .l2))
    }
}

final class HNSWTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("vizlab-hnsw-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func testRecallAgainstExactAndSameBytesFromTheSameSeed() throws {
        let base = try clustered(3000, dim: 32).prepared(for: .cosine), queries = try clustered(200, dim: 32, seed: 9, firstID: 1_000_000).prepared(for: .cosine)
        let truth = ExactSearch.search(queries, in: base, k: 10, metric: .cosine)
        let g = try HNSWIndex.empty(metric: .cosine, dim: 32, capacity: 10, parameters: .init())  // grows as it goes
        try g.add(base)
        XCTAssertEqual(g.count, 3000)
        let low = recall(try g.search(queries, k: 10, ef: 10), truth: truth, k: 10)
        let high = recall(try g.search(queries, k: 10, ef: 200), truth: truth, k: 10)
        XCTAssertGreaterThan(high, 0.98); XCTAssertGreaterThanOrEqual(high, low)
        XCTAssertLessThan(low, 1.0, "ef 10 should miss something on clustered data, or this test measures nothing")
        // Same seed, same order → same file; another seed → another graph.
        let a = dir.appendingPathComponent("a.bin"), b = dir.appendingPathComponent("b.bin"), c = dir.appendingPathComponent("c.bin")
        try g.save(to: a)
        let g2 = try HNSWIndex.empty(metric: .cosine, dim: 32, capacity: 3000, parameters: .init()); try g2.add(base); try g2.save(to: b)
        let g3 = try HNSWIndex.empty(metric: .cosine, dim: 32, capacity: 3000, parameters: .init(seed: 7)); try g3.add(base); try g3.save(to: c)
        XCTAssertEqual(try Data(contentsOf: a), try Data(contentsOf: b))
        XCTAssertNotEqual(try Data(contentsOf: a), try Data(contentsOf: c))
        // Reloaded, it answers the same.
        let loaded = try HNSWIndex.load(a, metric: .cosine, dim: 32)
        XCTAssertEqual(try loaded.search(queries, k: 10, ef: 50), try g.search(queries, k: 10, ef: 50))
    }

    func testDeletedAreNeverReturnedAndErrorsAreErrors() throws {
        let base = try clustered(500, dim: 8).prepared(for: .l2)
        let g = try HNSWIndex.empty(metric: .l2, dim: 8, capacity: 500, parameters: .init())
        try g.add(base)
        let gone = Set(base.ids.prefix(100))
        for id in gone { try g.markDeleted(id) }
        XCTAssertEqual(g.deletedCount, 100)
        let hits = try g.search(base, k: 20, ef: 50)
        XCTAssertTrue(hits.allSatisfy { $0.allSatisfy { !gone.contains($0.id) } })
        // hnswlib's exceptions come back as errors (no crash, no exception across Swift).
        XCTAssertThrowsError(try g.markDeleted(123_456)) { XCTAssertTrue("\($0)".contains("Label not found"), "\($0)") }
        XCTAssertThrowsError(try g.markDeleted(base.ids[0]))  // already deleted
        XCTAssertThrowsError(try HNSWIndex.load(dir.appendingPathComponent("missing.bin"), metric: .l2, dim: 8))
    }

    /// The shim's checks run before hnswlib parses a file: truncations, bit flips and overwritten header fields
    /// must be refused or (if the flip lands in vector data) give a structurally valid index — never a crash.
    func testFuzzedFilesAreRefusedNotTrusted() throws {
        let base = try clustered(300, dim: 6).prepared(for: .cosine)
        let g = try HNSWIndex.empty(metric: .cosine, dim: 6, capacity: 300, parameters: .init(M: 8))
        try g.add(base)
        let url = dir.appendingPathComponent("g.bin")
        try g.save(to: url)
        let good = [UInt8](try Data(contentsOf: url))
        XCTAssertNil(HNSWIndex.validate(good, dim: 6))
        XCTAssertNotNil(HNSWIndex.validate(good, dim: 7), "a file for another dimension")
        XCTAssertNotNil(HNSWIndex.validate(Array(good.prefix(good.count - 1)), dim: 6))
        XCTAssertNotNil(HNSWIndex.validate(good + [0], dim: 6))
        XCTAssertNotNil(HNSWIndex.validate([], dim: 6))
        var rng = TestRNG(seed: 11)
        var refused = 0
        let queries = VectorSet(ids: [0], dim: 6, data: Array(base.row(0)))
        for round in 0..<400 {
            var bytes = mutate(good, &rng)
            if round % 4 == 0 { bytes = Array(good.prefix(Int.random(in: 0..<good.count, using: &rng))) }
            if HNSWIndex.validate(bytes, dim: 6) != nil { refused += 1; continue }
            // Accepted: it must load and answer without crashing.
            let f = dir.appendingPathComponent("fuzz.bin")
            try Data(bytes).write(to: f)
            if let h = try? HNSWIndex.load(f, metric: .cosine, dim: 6) { _ = try? h.search(queries, k: 5, ef: 20) }
        }
        XCTAssertGreaterThan(refused, 100, "the mutations should mostly break the structure")
    }
}

final class HNSWStoreTests: XCTestCase {
    var db: URL!
    override func setUpWithError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vizlab-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        db = dir.appendingPathComponent("x.sqlite")
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: db.deletingLastPathComponent()) }

    func open(_ v: VectorSet, rebuild: Bool = false, seed: Int = 100) throws -> (HNSWIndex, HNSWStore.Report) {
        try HNSWStore(database: db, layer: "pool", metric: .cosine).open(v, model: "m", layer: "pool", metric: .cosine,
                                                                          parameters: .init(seed: seed), rebuild: rebuild)
    }

    func testBuildLoadUpdateRebuildAndCorruption() throws {
        let all = try clustered(1200, dim: 16).prepared(for: .cosine)
        let first = all.subset(Set(all.ids.prefix(1000)))
        var (g, r) = try open(first)
        XCTAssertEqual(r.action, "built"); XCTAssertEqual(r.added, 1000)
        (g, r) = try open(first)
        XCTAssertEqual(r.action, "loaded"); XCTAssertEqual(r.added, 0); XCTAssertEqual(g.count, 1000)
        // +200 new ids: only those added; 50 removed: marked deleted and never returned.
        let removed = Set(all.ids.prefix(50))
        let now = all.subset(Set(all.ids).subtracting(removed))
        (g, r) = try open(now)
        XCTAssertEqual(r.action, "updated"); XCTAssertEqual(r.added, 200); XCTAssertEqual(r.markedDeleted, 50)
        XCTAssertTrue(try g.search(now, k: 10, ef: 40).allSatisfy { $0.allSatisfy { !removed.contains($0.id) } })
        // Too many deletions: rebuilt from the database alone.
        let few = now.subset(Set(now.ids.suffix(600)))
        (g, r) = try open(few)
        XCTAssertEqual(r.action, "rebuilt"); XCTAssertEqual(g.count, 600); XCTAssertEqual(g.deletedCount, 0)
        // A rebuilt graph is the same bytes as a clean build of the same vectors.
        let cleanDB = db.deletingLastPathComponent().appendingPathComponent("clean.sqlite")
        let (_, cr) = try HNSWStore(database: cleanDB, layer: "pool", metric: .cosine).open(few, model: "m", layer: "pool", metric: .cosine, parameters: .init())
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: r.file)), try Data(contentsOf: URL(fileURLWithPath: cr.file)))
        // Other parameters: rebuilt.
        (_, r) = try open(few, seed: 5)
        XCTAssertEqual(r.action, "rebuilt")
        // A flipped byte: refused, the file left as it is; --rebuild gets past it.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: r.file)))
        bytes[bytes.count / 2] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: r.file))
        XCTAssertThrowsError(try open(few, seed: 5)) { XCTAssertTrue("\($0)".contains("checksum"), "\($0)") }
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: r.file))), bytes)
        (_, r) = try open(few, rebuild: true, seed: 5)
        XCTAssertEqual(r.action, "rebuilt")
        XCTAssertEqual(try open(few, seed: 5).1.action, "loaded")
        // Exactly one graph file per key is left.
        let files = try FileManager.default.contentsOfDirectory(atPath: db.path + ".hnsw")
        XCTAssertEqual(files.filter { $0.hasSuffix(".bin") }.count, 1, "\(files)")
    }
}

final class NearDuplicateTests: XCTestCase {
    func testGroupsAreConnectedComponentsAboveTheThreshold() throws {
        // 0,1 close; 1,2 close (0,2 less so): one group by transitivity; 3 alone; 4,5 identical.
        let raw: [Float] = [1, 0, 0,  0.96, 0.28, 0,  0.85, 0.53, 0,  0, 0, 1,  0, 1, 0,  0, 1, 0]
        let v = try VectorSet(ids: [10, 11, 12, 13, 14, 15], dim: 3, data: raw).prepared(for: .cosine)
        let found = NearDuplicates.find(v, threshold: 0.95)
        XCTAssertEqual(found.groups, [[10, 11, 12], [14, 15]])
        XCTAssertEqual(Set(found.pairs.map { [$0.a, $0.b] }), [[10, 11], [11, 12], [14, 15]])
        XCTAssertEqual(NearDuplicates.find(v, threshold: 1.0).groups, [[14, 15]])
        // Across the 1024-row blocks, too.
        let many = try clustered(2100, dim: 8, clusters: 2100).prepared(for: .cosine)
        var data = many.data; data.replaceSubrange((2099 * 8)..<(2100 * 8), with: many.row(3))
        let withCopy = VectorSet(ids: many.ids, dim: 8, data: data)
        XCTAssertTrue(NearDuplicates.find(withCopy, threshold: 0.9999).groups.contains([many.ids[3], many.ids[2099]]))
    }
}
