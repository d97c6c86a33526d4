import Engine
import Foundation

/// `vizlab index DIR`: walks a folder, runs the model once per new or changed image (batched, forward only,
/// decoding on both cores), stores each image's channel stats and pooled embedding, drops removed files, and
/// rebuilds the ranked lists. Safe to kill at any moment and run again.
public struct Indexer {
    public var layers: [String]
    public var k: Int
    public var batch: Int

    /// Default units: every block output and the logits.
    public static func defaultLayers(_ model: any VisionModel) -> [String] {
        model.spec.blocks + [model.spec.logits]
    }

    public init(layers: [String], k: Int = 32, batch: Int = 8) {
        self.layers = layers; self.k = k; self.batch = batch
    }

    public struct Summary: Codable, Sendable {
        public var found = 0
        public var new = 0
        public var changed = 0
        public var unchanged = 0
        public var touched = 0
        public var removed = 0
        public var failed: [Failure] = []
        public var processed = 0
        public var seconds = 0.0
        public var modelSeconds = 0.0
        public var decodeSeconds = 0.0
        public var databaseSeconds = 0.0
        public var imagesPerSecond: Double { seconds > 0 ? Double(processed) / seconds : 0 }
        public var modelImagesPerSecond: Double { modelSeconds > 0 ? Double(processed - failed.count) / modelSeconds : 0 }
    }
    public struct Failure: Codable, Sendable { public var path: String; public var error: String }

    /// All image files under `root`, recursively, sorted (standardized absolute paths).
    public static func imageFiles(under root: URL) throws -> [URL] {
        guard let e = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey],
                                                     options: [.skipsHiddenFiles]) else {
            throw ImageError(file: root.path, reason: "cannot read this folder")
        }
        var out: [URL] = []
        for case let url as URL in e where ImageDecoder.fileExtensions.contains(url.pathExtension.lowercased()) {
            if (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true { out.append(url.standardizedFileURL) }
        }
        return out.sorted { $0.path < $1.path }
    }

    /// Indexes `root` into `index`. `progress(done, total, elapsed)` after every batch.
    public func run(root: URL, index: ExampleIndex, model: any VisionModel,
                    progress: ((Int, Int, Double) -> Void)? = nil) throws -> Summary {
        let start = Date()
        var summary = Summary()
        try checkSettings(index, model: model)
        let files = try Indexer.imageFiles(under: root)
        summary.found = files.count
        let known = try index.images()
        let present = Set(files.map(\.path))
        // Files gone from the folder drop out (only those under this root: one database may hold several folders).
        let rootPath = root.standardizedFileURL.path
        let prefix = rootPath.hasSuffix("/") ? rootPath : rootPath + "/"
        let gone = known.keys.filter { $0.hasPrefix(prefix) && !present.contains($0) }
        try index.remove(paths: gone)
        summary.removed = gone.count

        // New or changed (size or mtime differs) files need work; the rest are skipped without reading them.
        var todo: [(URL, Int64, Double)] = []
        for url in files {
            let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
            let size = (attributes?[.size] as? NSNumber)?.int64Value ?? -1
            let mtime = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            if let k = known[url.path], k.size == size, k.mtime == mtime { summary.unchanged += 1; continue }
            todo.append((url, size, mtime))
        }
        let embedding = model.spec.embedding
        let capture = Set(layers + [embedding])
        var done = 0
        // Read, hash and decode on both cores, the next chunk while the model runs this one (the model's two threads
        // leave gaps on this kind of host); decodeSeconds counts only the time spent waiting for a chunk's files.
        let chunks = stride(from: 0, to: todo.count, by: batch).map { Array(todo[$0..<min($0 + batch, todo.count)]) }
        let preprocessing = model.preprocessing
        let ahead = PreparedChunk()
        func prepareAhead(_ c: Int) {
            guard c < chunks.count else { return }
            let urls = chunks[c].map(\.0)
            ahead.group.enter()
            DispatchQueue.global().async {
                ahead.value = Indexer.prepareAll(urls, known: known, preprocessing: preprocessing)
                ahead.group.leave()
            }
        }
        prepareAhead(0)
        for (c, chunk) in chunks.enumerated() {
            let t0 = Date()
            ahead.group.wait()
            let prepared = ahead.value
            summary.decodeSeconds += Date().timeIntervalSince(t0)
            prepareAhead(c + 1)
            var entries: [ExampleIndex.Entry] = []
            var inputs: [(Int, Tensor)] = []
            for (i, p) in prepared.enumerated() {
                let (url, size, mtime) = chunk[i]
                if p.sameBytes {  // only the modification time moved
                    try index.touch(path: url.path, mtime: mtime); summary.touched += 1; continue
                }
                if known[url.path] == nil { summary.new += 1 } else { summary.changed += 1 }
                var e = ExampleIndex.Entry(path: url.path, size: size, mtime: mtime, sha256: p.sha256, width: p.width, height: p.height,
                                           stats: [:], embedding: nil, error: p.error)
                if let err = p.error { summary.failed.append(Failure(path: url.path, error: err)); e.width = nil; e.height = nil }
                else if let input = p.input { inputs.append((entries.count, input)) }
                entries.append(e)
            }
            if !inputs.isEmpty {
                let t1 = Date()
                let acts = Indexer.forward(inputs.map(\.1), model: model, capture: capture)
                for (b, (slot, _)) in inputs.enumerated() {
                    for layer in layers { entries[slot].stats[layer] = ChannelStats(acts[layer]!, image: b) }
                    let pooled = acts[embedding]!
                    let width = pooled.count / inputs.count
                    entries[slot].embedding = Array(pooled.data[(b * width)..<((b + 1) * width)])
                }
                summary.modelSeconds += Date().timeIntervalSince(t1)
            }
            let t2 = Date()
            try index.store(entries)
            summary.databaseSeconds += Date().timeIntervalSince(t2)
            done += chunk.count
            summary.processed = done
            progress?(done, todo.count, Date().timeIntervalSince(start))
        }
        if index.listsStale || summary.removed > 0 || done > 0 {
            let t3 = Date()
            try index.rebuildLists(layers: layers, k: k)
            summary.databaseSeconds += Date().timeIntervalSince(t3)
        }
        summary.seconds = Date().timeIntervalSince(start)
        return summary
    }

    /// The model, the layers and k are fixed per database (the stats of other layers were never stored).
    func checkSettings(_ index: ExampleIndex, model: any VisionModel) throws {
        try index.checkModel(model.spec.id)
        let stored = try index.meta("layers"), storedK = try index.meta("k")
        let mine = layers.joined(separator: ",")
        if let s = stored, s != mine {
            throw ImageError(file: index.url.path, reason: "this index holds layers \(s); use the same --layers or another --db")
        }
        if let s = storedK, Int(s) != k {
            try index.setMeta(["k": String(k), "listsStale": "1"])  // lists are derived: just rebuild them
        }
        if stored == nil {
            let table = String(decoding: try JSONEncoder().encode(layers.compactMap { model.layerInfo(named: $0) }), as: UTF8.self)
            let preprocessing = String(decoding: try JSONEncoder().encode(model.preprocessing), as: UTF8.self)
            try index.setMeta(["layers": mine, "k": String(k), "layerTable": table, "model": model.spec.id,
                               "embedding": model.spec.embedding, "modelFile": model.spec.weightsFile,
                               "architecture": model.spec.architecture, "preprocessing": preprocessing])
        }
    }

    /// The files of the chunk being prepared ahead, and the group that says when they are ready (one at a time:
    /// the next is started only after this one is taken).
    final class PreparedChunk: @unchecked Sendable {
        let group = DispatchGroup()
        var value: [Prepared] = []
    }

    struct Prepared {
        var sha256 = ""
        var sameBytes = false
        var input: Tensor?
        var width: Int?
        var height: Int?
        var error: String?
    }

    /// `prepare` for every file, on both cores, in order.
    static func prepareAll(_ urls: [URL], known: [String: ExampleIndex.ImageRecord], preprocessing: Preprocessing) -> [Prepared] {
        var prepared = [Prepared](repeating: Prepared(), count: urls.count)
        prepared.withUnsafeMutableBufferPointer { slots in
            DispatchQueue.concurrentPerform(iterations: urls.count) { i in
                slots[i] = Indexer.prepare(urls[i], known: known[urls[i].path], preprocessing: preprocessing)
            }
        }
        return prepared
    }

    /// One forward pass (no gradients) over preprocessed inputs stacked as a [N, 3, S, S] batch.
    static func forward(_ inputs: [Tensor], model: any VisionModel, capture: Set<String>) -> [String: Tensor] {
        let plane = inputs[0].count
        var data = [Float](repeating: 0, count: inputs.count * plane)
        for (b, t) in inputs.enumerated() { data.replaceSubrange((b * plane)..<((b + 1) * plane), with: t.data) }
        let x = Tensor(shape: [inputs.count, 3, model.inputSize, model.inputSize], data: data)
        return GradMode.withoutGrad { model.forward(x, capture: capture) }
    }

    /// Reads, hashes and (unless the bytes are known) decodes and preprocesses one file. Errors become data.
    static func prepare(_ url: URL, known: ExampleIndex.ImageRecord?, preprocessing: Preprocessing) -> Prepared {
        var p = Prepared()
        do {
            let data = try Data(contentsOf: url, options: .alwaysMapped)
            p.sha256 = SHA256.hex(of: data)
            if let k = known, k.sha256 == p.sha256, k.error == nil { p.sameBytes = true; return p }
            let image = try ImageDecoder.decode(data: data, name: url.path)
            p.width = image.width; p.height = image.height
            p.input = preprocessing.input(image)
        } catch {
            p.error = String(describing: error)
        }
        return p
    }
}
