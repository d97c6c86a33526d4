import CZlib
import Engine
import Foundation

/// The HNSW graph of one (layer, metric) of an index, saved beside the SQLite file in `<db>.hnsw/` and kept in
/// step with it. The SQLite ids are hnswlib's labels; the database is the truth and the graph a cache:
///
/// - `<key>.json` names the graph file, its byte count, its CRC-32, how many vectors it holds and the parameters
///   and model it was built with. It is replaced (by rename) only after the graph file it names is complete and
///   flushed, so a kill at any moment leaves the previous pair (or none): the next run resumes from it or builds.
/// - A graph whose bytes do not match its record, or that fails the shim's structural checks, is refused with
///   `Corrupt` (never loaded, nothing written) unless the caller asks for a rebuild.
/// - On open, images added to the database since are added (in id order), removed ones marked deleted; the graph
///   is rebuilt from scratch when the model, layer, metric, dimension or parameters differ, or when more than
///   `maxDeletedFraction` of it would be deleted entries.
public struct HNSWStore {
    public let directory: URL
    public let key: String
    public var maxDeletedFraction = 0.1

    public init(database: URL, layer: String, metric: Metric) {
        directory = URL(fileURLWithPath: database.path + ".hnsw", isDirectory: true)
        key = String("\(layer)-\(metric.rawValue)".map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" })
    }

    public struct Record: Codable, Equatable {
        public var format = 1
        public var model: String
        public var layer: String
        public var metric: Metric
        public var dim: Int
        public var parameters: HNSWIndex.Parameters
        public var count: Int
        public var deleted: Int
        public var file: String
        public var bytes: Int
        public var crc32: UInt32
    }

    /// What opening did, for the JSON summary.
    public struct Report: Codable, Sendable {
        public var action = "loaded"       // loaded | updated | built | rebuilt
        public var reason: String?
        public var added = 0
        public var markedDeleted = 0
        public var seconds = 0.0
        public var buildSeconds = 0.0
        public var file = ""
        public var fileBytes = 0
        public var vectors = 0
        public var deletedEntries = 0
    }

    public struct Corrupt: Error, CustomStringConvertible {
        public var file: String
        public var reason: String
        public var description: String { "\(file): \(reason) — run with --rebuild to build it again" }
    }

    var recordURL: URL { directory.appendingPathComponent(key + ".json") }

    public func record() throws -> Record? {
        guard FileManager.default.fileExists(atPath: recordURL.path) else { return nil }
        let data = try Data(contentsOf: recordURL)
        guard data.count < 1 << 20, let r = try? JSONDecoder().decode(Record.self, from: data) else {
            throw Corrupt(file: recordURL.path, reason: "unreadable HNSW record")
        }
        guard r.format == 1, !r.file.contains("/"), r.file.hasPrefix(key + "-") else {
            throw Corrupt(file: recordURL.path, reason: "HNSW record names an unexpected file")
        }
        return r
    }

    /// Opens (loading, updating or building) the graph over `vectors` (prepared for `metric`, ids ascending).
    public func open(_ vectors: VectorSet, model: String, layer: String, metric: Metric, parameters: HNSWIndex.Parameters,
                     rebuild: Bool = false, progress: ((Int, Int, Double) -> Void)? = nil) throws -> (HNSWIndex, Report) {
        let start = Date()
        var report = Report()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        removeStaleTemporaries()
        var index: HNSWIndex?
        var stored: Record?
        var hadGraph = rebuild  // "rebuilt" rather than "built" in the report
        if rebuild {
            report.reason = "--rebuild"
        } else if let r = try record() {
            hadGraph = true
            if r.model != model || r.layer != layer || r.metric != metric || r.dim != vectors.dim || r.parameters != parameters {
                report.reason = "model, layer, metric or parameters changed"
            } else {
                let url = directory.appendingPathComponent(r.file)
                let data: Data
                do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
                    throw Corrupt(file: url.path, reason: "the HNSW file its record names is missing")
                }
                guard data.count == r.bytes, HNSWStore.crc32(data) == r.crc32 else {
                    throw Corrupt(file: url.path, reason: "HNSW file does not match its checksum")
                }
                do { index = try HNSWIndex.load(url, metric: metric, dim: vectors.dim, capacity: vectors.count) } catch let e as HNSWIndex.CorruptIndex {
                    throw Corrupt(file: url.path, reason: e.description)
                }
                guard index!.count == r.count, index!.deletedCount == r.deleted else {
                    throw Corrupt(file: url.path, reason: "HNSW file holds \(index!.count) vectors, its record says \(r.count)")
                }
                stored = r
            }
        } else {
            report.reason = "no graph yet"
        }

        if let graph = index {
            // Bring it in step with the database.
            let labels = graph.labels()
            var live = Set<Int64>(), seen = Set<Int64>()
            for (id, deleted) in labels {
                guard seen.insert(id).inserted else { throw Corrupt(file: directory.appendingPathComponent(stored!.file).path, reason: "an id is stored twice") }
                if !deleted { live.insert(id) }
            }
            let wanted = Set(vectors.ids)
            let gone = live.subtracting(wanted).sorted()
            let fresh = vectors.ids.filter { !live.contains($0) }
            // A re-added id that was deleted is revived by hnswlib (same label, new vector): counted as added.
            if Double(graph.deletedCount + gone.count) > maxDeletedFraction * Double(max(labels.count, 1)) {
                report.reason = "\(graph.deletedCount + gone.count) of \(labels.count) entries deleted"
                index = nil
            } else if !gone.isEmpty || !fresh.isEmpty {
                let t = Date()
                for id in gone { try graph.markDeleted(id) }
                graph.reseed(parameters.seed + labels.count)
                try add(vectors.subset(Set(fresh)), to: graph, progress: progress)
                report.buildSeconds = Date().timeIntervalSince(t)
                report.action = "updated"; report.added = fresh.count; report.markedDeleted = gone.count
                try save(graph, model: model, layer: layer, metric: metric, parameters: parameters, report: &report)
            } else {
                report.file = directory.appendingPathComponent(stored!.file).path
                report.fileBytes = stored!.bytes
            }
        }
        if index == nil {
            report.action = hadGraph ? "rebuilt" : "built"
            let t = Date()
            let graph = try HNSWIndex.empty(metric: metric, dim: vectors.dim, capacity: vectors.count, parameters: parameters)
            try add(vectors, to: graph, progress: progress)
            report.buildSeconds = Date().timeIntervalSince(t)
            report.added = vectors.count
            try save(graph, model: model, layer: layer, metric: metric, parameters: parameters, report: &report)
            index = graph
        }
        report.vectors = index!.count - index!.deletedCount
        report.deletedEntries = index!.deletedCount
        report.seconds = Date().timeIntervalSince(start)
        return (index!, report)
    }

    func add(_ vectors: VectorSet, to graph: HNSWIndex, progress: ((Int, Int, Double) -> Void)?) throws {
        let start = Date(), chunk = 2000
        for c in stride(from: 0, to: vectors.count, by: chunk) {
            let end = min(c + chunk, vectors.count)
            try graph.add(VectorSet(ids: Array(vectors.ids[c..<end]), dim: vectors.dim, data: Array(vectors.data[(c * vectors.dim)..<(end * vectors.dim)])))
            progress?(end, vectors.count, Date().timeIntervalSince(start))
        }
    }

    /// Graph file first (temporary name, flushed, renamed to a name carrying its checksum), then the record by
    /// rename, then older graph files of this key are removed.
    func save(_ graph: HNSWIndex, model: String, layer: String, metric: Metric, parameters: HNSWIndex.Parameters, report: inout Report) throws {
        let temp = directory.appendingPathComponent(".\(key).tmp-\(getpid())")
        try? FileManager.default.removeItem(at: temp)
        try graph.save(to: temp)
        let data = try Data(contentsOf: temp, options: .alwaysMapped)
        let crc = HNSWStore.crc32(data)
        let name = "\(key)-\(String(format: "%08x", crc)).bin"
        let final = directory.appendingPathComponent(name)
        try AtomicFile.flush(temp)
        guard rename(temp.path, final.path) == 0 else { throw SimilarityError("cannot rename \(temp.path) to \(final.path)") }
        let record = Record(model: model, layer: layer, metric: metric, dim: graph.dim, parameters: parameters,
                            count: graph.count, deleted: graph.deletedCount, file: name, bytes: data.count, crc32: crc)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(record), to: recordURL)  // temp, flush, rename
        try AtomicFile.flush(directory)
        for f in (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        where f.hasPrefix(key + "-") && f.hasSuffix(".bin") && f != name {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(f))
        }
        report.file = final.path
        report.fileBytes = data.count
    }

    /// Temporary files of runs that were killed (their process is gone): ".KEY.tmp-PID" (the graph) and
    /// ".KEY.json.tmp-PID-RANDOM" (the record, by `AtomicFile`).
    func removeStaleTemporaries() {
        for f in (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [] where f.hasPrefix(".\(key).") {
            guard let tail = f.range(of: ".tmp-").map({ f[$0.upperBound...] }),
                  let pid = tail.split(separator: "-").first.flatMap({ Int32($0) }) else { continue }
            if pid == getpid() || kill(pid, 0) != 0 { try? FileManager.default.removeItem(at: directory.appendingPathComponent(f)) }
        }
    }

    static func crc32(_ data: Data) -> UInt32 {
        data.withUnsafeBytes { p in
            var crc = CZlib.crc32(0, nil, 0)
            var offset = 0
            while offset < p.count {
                let n = min(p.count - offset, 1 << 30)
                crc = CZlib.crc32(crc, p.baseAddress!.advanced(by: offset).assumingMemoryBound(to: UInt8.self), uInt(n))
                offset += n
            }
            return UInt32(crc)
        }
    }
}
