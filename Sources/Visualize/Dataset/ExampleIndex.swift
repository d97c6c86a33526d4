import Engine
import Models
import Foundation
import GRDB

/// The dataset-examples database (SQLite through GRDB): the images seen, each image's per-layer channel stats
/// and pooled embedding, and the top/bottom lists derived from them. Every batch of images is one transaction, so
/// a killed run leaves a consistent database; the lists are rebuilt in one transaction at the end of a run (and
/// on the next run if that one was killed first — the `listsStale` flag).
public final class ExampleIndex {
    public let url: URL
    let db: DatabaseQueue

    public struct ImageRecord: Sendable {
        public var id: Int64
        public var path: String
        public var size: Int64
        public var mtime: Double
        public var sha256: String
        public var error: String?
    }

    /// Opens (and creates or migrates) the index at `url`; `readOnly` opens an existing one without changing a byte
    /// of it, and refuses a file that is not a complete vizlab index.
    public init(url: URL, readOnly: Bool = false) throws {
        self.url = url
        var config = Configuration()
        config.foreignKeysEnabled = true
        config.readonly = readOnly
        if !readOnly { try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true) }
        db = try DatabaseQueue(path: url.path, configuration: config)
        if readOnly {
            guard try db.read({ try ExampleIndex.migrator.hasCompletedMigrations($0) }) else { throw NotAnIndex() }
        } else {
            try ExampleIndex.migrator.migrate(db)
        }
    }

    struct NotAnIndex: Error, CustomStringConvertible {
        var description: String { "not a vizlab index (make one with `vizlab index FOLDER --db FILE`)" }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE image (
                    id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, size INTEGER NOT NULL, mtime REAL NOT NULL,
                    sha256 TEXT NOT NULL, width INTEGER, height INTEGER, error TEXT, indexedAt REAL NOT NULL);
                CREATE TABLE stats (
                    imageId INTEGER NOT NULL REFERENCES image(id) ON DELETE CASCADE, layer TEXT NOT NULL,
                    data BLOB NOT NULL, PRIMARY KEY (imageId, layer));
                CREATE TABLE embedding (
                    imageId INTEGER PRIMARY KEY REFERENCES image(id) ON DELETE CASCADE, vector BLOB NOT NULL);
                CREATE TABLE ranked (
                    layer TEXT NOT NULL, channel INTEGER NOT NULL, rankBy TEXT NOT NULL, end TEXT NOT NULL,
                    entries BLOB NOT NULL, PRIMARY KEY (layer, channel, rankBy, end)) WITHOUT ROWID;
                """)
        }
        return m
    }

    // MARK: settings

    public func meta(_ key: String) throws -> String? {
        try db.read { try String.fetchOne($0, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]) }
    }

    public func setMeta(_ values: [String: String]) throws {
        try db.write { db in
            for (k, v) in values { try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", arguments: [k, v]) }
        }
    }

    // MARK: images

    public func images() throws -> [String: ImageRecord] {
        try db.read { db in
            var out: [String: ImageRecord] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, path, size, mtime, sha256, error FROM image") {
                let r = ImageRecord(id: row["id"], path: row["path"], size: row["size"], mtime: row["mtime"], sha256: row["sha256"], error: row["error"])
                out[r.path] = r
            }
            return out
        }
    }

    /// The indexed layers' geometry (names, channels, receptive fields), stored with the first run, so
    /// `vizlab top` needs no model.
    public func layerTable() throws -> [LayerInfo] {
        guard let json = try meta("layerTable") else { return [] }
        return try JSONDecoder().decode([LayerInfo].self, from: Data(json.utf8))
    }

    public func errors() throws -> [(path: String, error: String)] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT path, error FROM image WHERE error IS NOT NULL ORDER BY path").map { ($0["path"], $0["error"]) }
        }
    }

    public func counts() throws -> (images: Int, failed: Int) {
        try db.read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM image WHERE error IS NULL") ?? 0,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM image WHERE error IS NOT NULL") ?? 0)
        }
    }

    /// One processed image: its file facts and either its stats (+ embedding) or the error it gave.
    public struct Entry {
        public var path: String
        public var size: Int64
        public var mtime: Double
        public var sha256: String
        public var width: Int?
        public var height: Int?
        public var stats: [String: ChannelStats]
        public var embedding: [Float]?
        public var error: String?
    }

    /// Writes a batch in one transaction (replacing earlier rows of the same paths) and marks the lists stale.
    public func store(_ entries: [Entry]) throws {
        try db.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('listsStale', '1')")
            for e in entries {
                try db.execute(sql: "DELETE FROM image WHERE path = ?", arguments: [e.path])
                try db.execute(sql: """
                    INSERT INTO image (path, size, mtime, sha256, width, height, error, indexedAt) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [e.path, e.size, e.mtime, e.sha256, e.width, e.height, e.error, Date().timeIntervalSince1970])
                let id = db.lastInsertedRowID
                for (layer, s) in e.stats {
                    try db.execute(sql: "INSERT INTO stats (imageId, layer, data) VALUES (?, ?, ?)", arguments: [id, layer, s.blob])
                }
                if let v = e.embedding {
                    try db.execute(sql: "INSERT INTO embedding (imageId, vector) VALUES (?, ?)",
                                   arguments: [id, v.withUnsafeBufferPointer { Data(buffer: $0) }])
                }
            }
        }
    }

    /// A file whose bytes did not change (only its modification time): keep its results.
    public func touch(path: String, mtime: Double) throws {
        try db.write { try $0.execute(sql: "UPDATE image SET mtime = ? WHERE path = ?", arguments: [mtime, path]) }
    }

    public func remove(paths: [String]) throws {
        guard !paths.isEmpty else { return }
        try db.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('listsStale', '1')")
            for p in paths { try db.execute(sql: "DELETE FROM image WHERE path = ?", arguments: [p]) }
        }
    }

    /// The model that made this index (its id), or nil for a new one.
    public var model: String? { try? meta("model") }

    /// How the indexing model saw each image (to show the same view without loading it); nil for an index made by a
    /// vizlab that did not record it.
    public var preprocessing: Preprocessing? {
        (try? meta("preprocessing")).flatMap { $0 }.flatMap { try? JSONDecoder().decode(Preprocessing.self, from: Data($0.utf8)) }
    }

    /// `--model` options that load the indexing model again (its weight file, and its architecture when built in).
    public var modelArguments: [String]? {
        guard let file = try? meta("modelFile"), let arch = try? meta("architecture") else { return nil }
        return ["--model", file] + (Zoo.architecture(named: arch) != nil ? ["--arch", arch] : [])
    }

    /// Refuses to mix models: an index made with one model answers for that model only.
    public func checkModel(_ id: String) throws {
        if let stored = model {
            guard stored == id else {
                throw ImageError(file: url.path, reason: "this index was made with model \(stored), not \(id); use that --model or another --db")
            }
        } else if try meta("layers") != nil {
            throw ImageError(file: url.path, reason: "this index records no model (made by an older vizlab); delete it and index again")
        }
    }

    public var listsStale: Bool { (try? meta("listsStale")) == "1" }

    // MARK: ranked lists

    /// Rebuilds every unit's top and bottom k by max and by mean from the stored stats, in one transaction.
    public func rebuildLists(layers: [String], k: Int) throws {
        try db.write { db in
            try db.execute(sql: "DELETE FROM ranked")
            for layer in layers {
                let rows = try Row.fetchAll(db, sql: """
                    SELECT s.imageId, i.path, i.sha256, s.data FROM stats s JOIN image i ON i.id = s.imageId
                    WHERE s.layer = ? ORDER BY i.path
                    """, arguments: [layer])
                // A file stored twice (same bytes under two names) is listed once, under its first path.
                var seen = Set<String>()
                // In path order (Swift's, which ties are broken by), so `Ranking.best` can break them by position.
                let stats = rows.compactMap { row -> (id: Int64, path: String, stats: ChannelStats)? in
                    guard seen.insert(row["sha256"]).inserted, let s = ChannelStats(blob: row["data"]) else { return nil }
                    return (row["imageId"], row["path"], s)
                }.sorted { $0.path < $1.path }
                guard let channels = stats.first?.stats.channels else { continue }
                // Every channel's four lists on both cores, then inserted in order.
                let kinds = RankBy.allCases.flatMap { by in RankEnd.allCases.map { (by, $0) } }
                var blobs = [Data](repeating: Data(), count: channels * kinds.count)
                blobs.withUnsafeMutableBufferPointer { out in
                    let out = out
                    Parallel.forEachChunk(channels) { range in
                        for ch in range {
                            let byMax = stats.map { $0.stats.max[ch] }, byMean = stats.map { $0.stats.mean[ch] }
                            for (j, (by, end)) in kinds.enumerated() {
                                let values = by == .max ? byMax : byMean
                                out[ch * kinds.count + j] = RankedExample.blob(Ranking.best(values, k: k, end: end).map { i in
                                    let s = stats[i].stats
                                    return RankedExample(imageID: stats[i].id, value: values[i], x: Int(s.argmaxX[ch]), y: Int(s.argmaxY[ch]))
                                })
                            }
                        }
                    }
                }
                let insert = try db.makeStatement(sql: "INSERT INTO ranked (layer, channel, rankBy, end, entries) VALUES (?, ?, ?, ?, ?)")
                for ch in 0..<channels {
                    for (j, (by, end)) in kinds.enumerated() {
                        try insert.execute(arguments: [layer, ch, by.rawValue, end.rawValue, blobs[ch * kinds.count + j]])
                    }
                }
            }
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('listsStale', '0')")
        }
    }

    public func ranked(layer: String, channel: Int, by: RankBy, end: RankEnd, limit: Int) throws -> [(RankedExample, String)] {
        try db.read { db in
            guard let blob = try Data.fetchOne(db, sql: "SELECT entries FROM ranked WHERE layer = ? AND channel = ? AND rankBy = ? AND end = ?",
                                               arguments: [layer, channel, by.rawValue, end.rawValue]) else { return [] }
            return try RankedExample.entries(blob).prefix(limit).compactMap { e in
                try String.fetchOne(db, sql: "SELECT path FROM image WHERE id = ?", arguments: [e.imageID]).map { (e, $0) }
            }
        }
    }

    /// Every list as "layer:channel:by:end" → image paths in order; for comparing two indexes.
    public func allLists() throws -> [String: [String]] {
        try db.read { db in
            var paths: [Int64: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, path FROM image") { paths[row["id"]] = row["path"] }
            var out: [String: [String]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT layer, channel, rankBy, end, entries FROM ranked") {
                let key = "\(row["layer"] as String):\(row["channel"] as Int):\(row["rankBy"] as String):\(row["end"] as String)"
                out[key] = RankedExample.entries(row["entries"]).map { paths[$0.imageID] ?? "?" }
            }
            return out
        }
    }

    public func integrityCheck() throws -> String {
        try db.read { try String.fetchOne($0, sql: "PRAGMA integrity_check") ?? "no answer" }
    }
}
