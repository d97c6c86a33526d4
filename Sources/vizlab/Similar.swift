import ArgumentParser
import Engine
import Foundation
import Models
import Similarity
import Training
import Visualize

extension Metric: ExpressibleByArgument {}

/// Where the vectors come from and how they are compared: shared by `similar` and `duplicates`.
struct SearchOptions: ParsableArguments {
    @Option(help: "The index database (default: $VIZLAB_HOME/examples.sqlite).")
    var db: String?

    @Option(help: "The vector space: pool (the model's pooled embedding, default) or an indexed layer (its channels' spatial means).")
    var layer: String?

    @Option(help: "cosine, l2 (squared Euclidean) or ip (inner product).")
    var metric: Metric = .cosine

    func layerName(_ index: ExampleIndex) throws -> String { try CLI.searchLayer(layer, index) }
}

extension CLI {
    /// `--layer` as stored in the index: "pool" names the model's embedding whatever the graph calls it.
    static func searchLayer(_ layer: String?, _ index: ExampleIndex) throws -> String {
        guard let layer, layer != "pool" else {
            guard let e = try index.meta("embedding") else { throw ImageError(file: index.url.path, reason: "this index holds no embeddings") }
            return e
        }
        return layer
    }
}

struct HNSWOptions: ParsableArguments {
    @Flag(help: "Brute-force search (BLAS) instead of the HNSW graph.")
    var exact = false

    @Option(help: "HNSW search breadth (hnswlib's ef; at least k is used).")
    var ef: Int = 10

    @Option(name: .customLong("M"), help: "HNSW links per node (hnswlib's M).")
    var M: Int = 16

    @Option(help: "HNSW build breadth (hnswlib's ef_construction).")
    var efConstruction: Int = 200

    @Option(help: "HNSW level generator seed (hnswlib's random_seed); the same seed rebuilds the same bytes.")
    var hnswSeed: Int = 100

    @Flag(help: "Build the HNSW graph again from the database (also the way past a corrupt graph file).")
    var rebuild = false

    var parameters: HNSWIndex.Parameters { HNSWIndex.Parameters(M: M, efConstruction: efConstruction, seed: hnswSeed) }

    func validate() throws {
        guard (1...100_000).contains(ef) else { throw ValidationError("--ef must be 1…100000 (got \(ef))") }
        do { try parameters.validate() } catch { throw ValidationError("--M/--ef-construction/--hnsw-seed: \(error)") }
    }
}

struct Similar: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The indexed images the network thinks most alike to a query: exact search or HNSW (hnswlib).",
        discussion: """
            A query is an indexed image (its stored vector; it is not returned as its own neighbour) or any image file \
            (embedded with the index's model). The HNSW graph is built on first use, saved beside the database in \
            DB.hnsw/ and kept in step with it (new images added, removed ones deleted). Writes a grid per query and \
            similar.json to --out.
            Examples:
              vizlab similar photo.jpg --k 10
              vizlab similar --queries test/ --no-grids --evaluate --ef 64
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var search: SearchOptions
    @OptionGroup var hnsw: HNSWOptions

    @Argument(help: "Query images (files, indexed or not).")
    var query: [String] = []

    @Option(help: "A folder of query images (searched recursively), answered in one run.")
    var queries: String?

    @Option(help: "Neighbours per query.")
    var k: Int = 10

    @Flag(help: "Also run exact search and report recall@k, and label agreement (neighbours in the query's folder).")
    var evaluate = false

    @Option(help: "Output folder for the grids and similar.json.")
    var out: String = "out/similar"

    @Flag(help: "Write only similar.json (no grid pictures).")
    var noGrids = false

    @Flag(help: "Print the summary JSON on stdout.")
    var json = false

    @Option(name: .customLong("repeat"), help: "Run the search this many times and report the fastest (for benchmarks; the answers are the same).")
    var repetitions: Int = 1

    func validate() throws {
        guard (1...100).contains(repetitions) else { throw ValidationError("--repeat must be 1…100 (got \(repetitions))") }
        guard (1...1000).contains(k) else { throw ValidationError("--k must be 1…1000 (got \(k))") }
        guard !query.isEmpty || queries != nil else { throw ValidationError("give query images or --queries DIR") }
    }

    struct Answer: Codable {
        var query: String
        var indexed: Bool
        var neighbours: [Hit]
        var grid: String?
    }
    struct Hit: Codable { var rank: Int; var path: String; var id: Int64; var distance: Float; var similarity: Float }
    struct Summary: Codable {
        var database: String
        var model: String
        var layer: String
        var metric: Metric
        var k: Int
        var method: String
        var ef: Int?
        var parameters: HNSWIndex.Parameters?
        var graph: HNSWStore.Report?
        var vectors: Int
        var dimension: Int
        var queries: Int
        var failed: [String]
        var searchSeconds: Double
        var queriesPerSecond: Double
        var threads: Int
        var exactSeconds: Double?
        var recall: Double?
        var labelAgreement: Double?
        var exactLabelAgreement: Double?
        var answers: [Answer]
    }

    func run() throws {
        let dbURL = CLI.indexURL(search.db)
        let index = try CLI.openIndexForSearch(dbURL)
        let layer: String, base: VectorSet
        do {
            layer = try search.layerName(index)
            base = try index.vectors(layer: layer).prepared(for: search.metric)
        } catch { CLI.fail(CLI.describe(error)); throw ExitCode(2) }
        // The queries: every file given, then every image under --queries, in order.
        var urls = query.map { URL(fileURLWithPath: $0).standardizedFileURL }
        if let dir = queries {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
                CLI.fail("--queries \(dir): no such folder"); throw ExitCode(2)
            }
            urls += try Indexer.imageFiles(under: URL(fileURLWithPath: dir, isDirectory: true))
        }
        // Every readable indexed image, read once: queries are looked up in it, answers drawn from it.
        var idOfPath: [String: Int64] = [:], pathOfID: [Int64: String] = [:]
        for r in try index.images().values where r.error == nil { idOfPath[r.path] = r.id; pathOfID[r.id] = r.path }
        let resolved = try CLI.queryVectors(urls, index: index, idOfPath: idOfPath, base: base, layer: layer, metric: search.metric,
                                            modelOptions: modelOptions)
        if resolved.vectors.count == 0 { throw ExitCode(1) }
        let queryVectors = resolved.vectors

        // Search.
        let progress = Training.Progress(enabled: !json || isatty(2) != 0)
        var graphReport: HNSWStore.Report?
        var found: [[Neighbour]], seconds: Double
        let want = k + 1  // one more, for the query itself when it is indexed
        if hnsw.exact {
            let t = Date()
            found = ExactSearch.search(queryVectors, in: base, k: k, metric: search.metric, exclude: resolved.selfIDs, threads: Parallel.threads)
            seconds = Date().timeIntervalSince(t)
        } else {
            let store = HNSWStore(database: dbURL, layer: layer, metric: search.metric)
            let graph: HNSWIndex
            do {
                var bar: Training.Progress.Bar?, shown = 0
                (graph, graphReport) = try store.open(base, model: index.model ?? "?", layer: layer, metric: search.metric,
                                                      parameters: hnsw.parameters, rebuild: hnsw.rebuild) { done, total, _ in
                    if bar == nil { bar = progress.bar("HNSW build", total: total) }
                    bar!.advance(by: done - shown); shown = done
                }
                bar?.finish()
            } catch { CLI.fail(CLI.describe(error)); throw ExitCode(1) }
            var raw: [[Neighbour]] = []
            seconds = .infinity
            for _ in 0..<repetitions {
                let t = Date()
                raw = try graph.search(queryVectors, k: want, ef: hnsw.ef)
                seconds = min(seconds, Date().timeIntervalSince(t))
            }
            found = zip(raw, resolved.selfIDs).map { hits, me in Array(hits.filter { $0.id != me }.prefix(k)) }
        }
        var exactSeconds: Double?, recallValue: Double?, truth: [[Neighbour]]?
        if evaluate {
            if hnsw.exact { truth = found } else {
                let t = Date()
                truth = ExactSearch.search(queryVectors, in: base, k: k, metric: search.metric, exclude: resolved.selfIDs, threads: Parallel.threads)
                exactSeconds = Date().timeIntervalSince(t)
                recallValue = recall(found, truth: truth!, k: k)
            }
        }
        func agreement(_ lists: [[Neighbour]]) -> Double {
            var same = 0, total = 0
            for (q, hits) in zip(resolved.names, lists) {
                let label = URL(fileURLWithPath: q).deletingLastPathComponent().lastPathComponent
                for h in hits { total += 1; if pathOfID[h.id].map({ URL(fileURLWithPath: $0).deletingLastPathComponent().lastPathComponent }) == label { same += 1 } }
            }
            return total == 0 ? 0 : Double(same) / Double(total)
        }

        // Answers, grids, summary.
        let outDir = URL(fileURLWithPath: out, isDirectory: true)
        do { try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true) } catch {
            CLI.fail("cannot create the output folder \(outDir.path): \(error.localizedDescription)"); throw ExitCode(1)
        }
        var answers: [Answer] = []
        for (q, hits) in zip(resolved.names, found) {
            let list = hits.enumerated().compactMap { r, h -> Hit? in
                guard let p = pathOfID[h.id] else { return nil }  // removed from the database: never returned
                return Hit(rank: r + 1, path: p, id: h.id, distance: h.distance, similarity: search.metric.similarity(distance: h.distance))
            }
            answers.append(Answer(query: q, indexed: resolved.indexed[answers.count], neighbours: list))
        }
        if !noGrids {
            var used = Set<String>()
            for i in answers.indices {
                var name = CLI.fileName(URL(fileURLWithPath: answers[i].query).deletingPathExtension().lastPathComponent)
                while !used.insert(name).inserted { name += "_" }
                let url = outDir.appendingPathComponent("similar_\(name).png")
                try CLI.writeNeighbourGrid(query: answers[i].query, hits: answers[i].neighbours.map { ($0.path, $0.similarity) },
                                           preprocessing: index.preprocessing, metric: search.metric, layer: layer, to: url)
                answers[i].grid = url.path
            }
            // A few queries: also one picture, a row per query.
            if (2...16).contains(answers.count) {
                let width = k + 1
                var tiles: [Figures.Tile] = []
                for a in answers {
                    var row = CLI.neighbourTiles(query: a.query, hits: a.neighbours.map { ($0.path, $0.similarity) }, preprocessing: index.preprocessing)
                    while row.count < width { row.append(Figures.Tile(image: RGBImage(width: 1, height: 1, pixels: [255, 255, 255]), caption: [""])) }
                    tiles += row
                }
                let url = outDir.appendingPathComponent("similar_grid.png")
                try PNGEncoder.write(Figures.grid(tiles, columns: width, tileSize: 112,
                                                  title: "\(answers.count) queries and their \(k) nearest by \(search.metric.rawValue) on \(layer) (\(hnsw.exact ? "exact" : "HNSW"))"), to: url)
                if !json { print(url.path) }
            }
        }
        let summary = Summary(database: dbURL.path, model: index.model ?? "?", layer: layer, metric: search.metric, k: k,
                              method: hnsw.exact ? "exact" : "hnsw", ef: hnsw.exact ? nil : max(hnsw.ef, want),
                              parameters: hnsw.exact ? nil : hnsw.parameters, graph: graphReport,
                              vectors: base.count, dimension: base.dim, queries: queryVectors.count, failed: resolved.failed,
                              searchSeconds: seconds, queriesPerSecond: Double(queryVectors.count) / max(seconds, 1e-9),
                              threads: hnsw.exact ? Parallel.threads : 1, exactSeconds: exactSeconds, recall: recallValue,
                              labelAgreement: evaluate ? agreement(found) : nil, exactLabelAgreement: truth.map(agreement),
                              answers: answers)
        let sidecar = outDir.appendingPathComponent("similar.json")
        try AtomicFile.write(try CLI.jsonEncoder().encode(summary), to: sidecar)
        if json {
            try CLI.printJSON(summary)
        } else {
            for a in answers.prefix(20) {
                print("\(a.query):")
                for h in a.neighbours { print(String(format: "  %2d  %.4f  %@", h.rank, h.similarity, h.path)) }
            }
            if answers.count > 20 { print("… \(answers.count - 20) more queries in \(sidecar.path)") }
            print(String(format: "%d queries, %@ search %.3f s (%.0f queries/s%@)", queryVectors.count, summary.method, seconds,
                         summary.queriesPerSecond, summary.threads == 1 ? ", one thread" : ""))
            if let r = recallValue { print(String(format: "recall@%d against exact: %.4f (exact %.2f s)", k, r, exactSeconds ?? 0)) }
            if let a = summary.labelAgreement { print(String(format: "label agreement@%d: %.4f", k, a)) }
            print(sidecar.path)
        }
        if !resolved.failed.isEmpty { throw ExitCode(1) }
    }
}

extension CLI {
    static func openIndexForSearch(_ url: URL) throws -> ExampleIndex {
        guard FileManager.default.fileExists(atPath: url.path) else {
            fail("\(url.path): no index yet — run `vizlab index FOLDER --db \(url.path)` first"); throw ExitCode(2)
        }
        do { return try ExampleIndex(url: url, readOnly: true) } catch { fail("\(url.path): \(describe(error))"); throw ExitCode(2) }
    }

    struct ResolvedQueries {
        var vectors: VectorSet
        var names: [String] = []
        var indexed: [Bool] = []
        var selfIDs: [Int64?] = []
        var failed: [String] = []
    }

    /// Each query's vector (prepared for the metric): an indexed image's stored one, else the file embedded with
    /// the index's model. A file that cannot be read is reported (one line) and skipped.
    static func queryVectors(_ urls: [URL], index: ExampleIndex, idOfPath: [String: Int64], base: VectorSet, layer: String, metric: Metric,
                             modelOptions: ModelOptions) throws -> ResolvedQueries {
        var row: [Int64: Int] = [:]
        for (i, id) in base.ids.enumerated() { row[id] = i }
        var slots = [(vector: [Float]?, id: Int64?)](repeating: (nil, nil), count: urls.count)
        var toEmbed: [Int] = []
        for (i, u) in urls.enumerated() {
            if let id = idOfPath[u.path], let r = row[id] { slots[i] = (Array(base.row(r)), id) } else { toEmbed.append(i) }
        }
        var errors = [String?](repeating: nil, count: urls.count)
        if !toEmbed.isEmpty {
            let model: any VisionModel
            if modelOptions.model != nil || ProcessInfo.processInfo.environment["VIZLAB_MODEL"].map({ !$0.isEmpty }) == true {
                model = try loadModel(modelOptions)
            } else {
                guard let args = index.modelArguments else { fail("\(index.url.path): this index does not record its model; give --model"); throw ExitCode(2) }
                model = try loadModel(try ModelOptions.parse(args))
            }
            do { try index.checkModel(model.spec.id) } catch { fail(describe(error)); throw ExitCode(2) }
            let got = Embedder.vectors(toEmbed.map { urls[$0] }, model: model, layer: layer)
            for (j, i) in toEmbed.enumerated() {
                if let e = got.errors[j] { errors[i] = e; continue }
                var v = VectorSet(ids: [-1], dim: base.dim, data: got.vectors[j]!)
                do { v = try v.prepared(for: metric) } catch { errors[i] = "\(urls[i].path): \(error)"; continue }
                slots[i] = (v.data, nil)
            }
        }
        var out = ResolvedQueries(vectors: VectorSet(ids: [], dim: base.dim, data: []))
        var data: [Float] = [], ids: [Int64] = []
        for (i, u) in urls.enumerated() {
            if let e = errors[i] { fail(e.hasPrefix(u.path) ? e : "\(u.path): \(e)"); out.failed.append(u.path); continue }
            guard let v = slots[i].vector else { continue }
            data += v; ids.append(Int64(ids.count)); out.names.append(u.path); out.indexed.append(slots[i].id != nil); out.selfIDs.append(slots[i].id)
        }
        out.vectors = VectorSet(ids: ids, dim: base.dim, data: data)
        return out
    }

    /// The query and its neighbours in the index model's view, similarity under each.
    static func neighbourTiles(query: String, hits: [(path: String, similarity: Float)], preprocessing: Preprocessing?) -> [Figures.Tile] {
        func picture(_ path: String) -> RGBImage {
            guard let image = try? ImageDecoder.decode(contentsOf: URL(fileURLWithPath: path)) else {
                return RGBImage(width: 1, height: 1, pixels: [200, 200, 200])
            }
            let rgb = Preprocess.compositeOnWhite(image)
            return preprocessing?.view(rgb) ?? rgb
        }
        var tiles = [Figures.Tile(image: picture(query), caption: ["query", URL(fileURLWithPath: query).lastPathComponent])]
        for (r, h) in hits.enumerated() {
            tiles.append(Figures.Tile(image: picture(h.path), caption: [String(format: "%d: %.3f", r + 1, h.similarity), URL(fileURLWithPath: h.path).lastPathComponent]))
        }
        return tiles
    }

    static func writeNeighbourGrid(query: String, hits: [(path: String, similarity: Float)], preprocessing: Preprocessing?,
                                   metric: Metric, layer: String, to url: URL) throws {
        let tiles = neighbourTiles(query: query, hits: hits, preprocessing: preprocessing)
        let grid = Figures.grid(tiles, columns: min(tiles.count, 11), tileSize: 128,
                                title: "\(URL(fileURLWithPath: query).lastPathComponent) — \(hits.count) nearest by \(metric.rawValue) on \(layer)")
        try PNGEncoder.write(grid, to: url)  // atomic
    }
}
