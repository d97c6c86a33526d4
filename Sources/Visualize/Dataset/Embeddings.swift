import Engine
import Foundation
import GRDB
import Models
import Similarity

/// The index's vectors for search: the pooled embedding the indexer stores for every image, or — for any other
/// indexed layer — each channel's spatial mean (from the stored channel stats: global average pooling of that
/// layer), so an earlier layer's space needs no second pass over the images.
extension ExampleIndex {
    /// The layers a search can use: the embedding first, then the indexed layers.
    public func searchLayers() throws -> [String] {
        var out: [String] = []
        if let e = try meta("embedding") { out.append(e) }
        for l in (try meta("layers") ?? "").split(separator: ",").map(String.init) where !out.contains(l) { out.append(l) }
        return out
    }

    /// Every readable image's vector at `layer`, ids ascending.
    public func vectors(layer: String) throws -> VectorSet {
        let embedding = try meta("embedding")
        let layers = try searchLayers()
        guard layers.contains(layer) else {
            throw ImageError(file: url.path, reason: "layer '\(layer)' is not in this index; searchable: \(layers.joined(separator: ", "))")
        }
        return try db.read { db in
            var ids: [Int64] = [], data: [Float] = [], dim = -1
            let rows = layer == embedding
                ? try Row.fetchCursor(db, sql: "SELECT imageId, vector FROM embedding ORDER BY imageId")
                : try Row.fetchCursor(db, sql: "SELECT imageId, data AS vector FROM stats WHERE layer = ? ORDER BY imageId", arguments: [layer])
            while let row = try rows.next() {
                let blob: Data = row["vector"]
                var v: [Float]
                if layer == embedding {
                    guard blob.count % 4 == 0 else { throw ImageError(file: url.path, reason: "a stored embedding has \(blob.count) bytes") }
                    v = blob.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                } else {
                    guard let s = ChannelStats(blob: blob) else { throw ImageError(file: url.path, reason: "unreadable channel stats for \(layer)") }
                    v = s.mean
                }
                if dim < 0 { dim = v.count }
                guard v.count == dim, dim > 0 else { throw ImageError(file: url.path, reason: "vectors of \(layer) differ in length") }
                ids.append(row["imageId"]); data += v
            }
            guard dim > 0 else {
                throw ImageError(file: url.path, reason: "this index holds no embeddings (no image indexed yet); run `vizlab index FOLDER --db \(url.path)`")
            }
            return VectorSet(ids: ids, dim: dim, data: data)
        }
    }

    /// Paths of the given ids (an id no longer in the database is missing from the answer).
    public func paths(of ids: Set<Int64>) throws -> [Int64: String] {
        try db.read { db in
            var out: [Int64: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, path FROM image WHERE error IS NULL") where ids.contains(row["id"]) {
                out[row["id"]] = row["path"]
            }
            return out
        }
    }
}

/// Embeds image files the way the indexer does (same preprocessing, same vector per layer), batched, decoding on
/// both cores. A file that cannot be read gives its error instead of a vector.
public enum Embedder {
    public static func vectors(_ urls: [URL], model: any VisionModel, layer: String, batch: Int = 8,
                               progress: ((Int, Int, Double) -> Void)? = nil) -> (vectors: [[Float]?], errors: [String?]) {
        var vectors = [[Float]?](repeating: nil, count: urls.count), errors = [String?](repeating: nil, count: urls.count)
        let start = Date()
        for c in stride(from: 0, to: urls.count, by: batch) {
            let chunk = Array(c..<min(c + batch, urls.count))
            let prepared = Indexer.prepareAll(chunk.map { urls[$0] }, known: [:], preprocessing: model.preprocessing)
            var inputs: [(Int, Tensor)] = []
            for (i, p) in prepared.enumerated() {
                if let e = p.error { errors[chunk[i]] = e } else if let t = p.input { inputs.append((chunk[i], t)) }
            }
            if !inputs.isEmpty {
                let act = Indexer.forward(inputs.map(\.1), model: model, capture: [layer])[layer]!
                for (b, (slot, _)) in inputs.enumerated() { vectors[slot] = spatialMean(act, image: b) }
            }
            progress?(chunk.last! + 1, urls.count, Date().timeIntervalSince(start))
        }
        return (vectors, errors)
    }

    /// Image b's vector of a [N, C] or [N, C, H, W] activation: the channels' spatial means (the pooled vector
    /// itself for a pooled layer) — the same numbers the index stores.
    public static func spatialMean(_ t: Tensor, image b: Int) -> [Float] {
        t.rank == 4 ? ChannelStats(t, image: b).mean : Array(t.data[(b * t.shape[1])..<((b + 1) * t.shape[1])])
    }
}
