import ArgumentParser
import Engine
import Foundation
import Models
import Similarity
import Visualize

struct DuplicatesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "duplicates",
        abstract: "Groups of near-duplicate images (resized, recompressed, cropped copies) by embedding cosine.",
        discussion: """
            From a folder (every image embedded now) or an index (its stored vectors: no model run). Each vector is power-normalized \
            (--power, default the signed square root) and made unit length; every pair at or above --threshold is joined, exactly (all pairs, one matrix product); groups are the connected components. \
            Writes a grid per group and duplicates.json to --out.
            Examples:
              vizlab duplicates ~/Pictures
              vizlab duplicates --db out/demo/examples.sqlite --threshold 0.9
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "A folder of images (searched recursively); or give --db.")
    var folder: String?

    @Option(help: "The index database to take the vectors from (instead of a folder).")
    var db: String?

    @Option(help: "The vector space: pool (the pooled embedding, default) or an indexed layer (--db only).")
    var layer: String?

    @Option(help: "Cosine similarity (of the power-normalized vectors) at or above which two images are duplicates.")
    var threshold: Float = 0.83

    @Option(help: "Power normalization before the cosine: each entry to this power, sign kept (1: the plain embedding).")
    var power: Float = 0.5

    @Option(help: "Output folder for the group grids and duplicates.json.")
    var out: String = "out/duplicates"

    @Flag(help: "Write only duplicates.json (no grid pictures).")
    var noGrids = false

    @Flag(help: "Print the summary JSON on stdout.")
    var json = false

    func validate() throws {
        guard (folder == nil) != (db == nil) else { throw ValidationError("give a folder or --db (one of them)") }
        guard threshold > 0 && threshold <= 1 else { throw ValidationError("--threshold must be in (0, 1] (got \(threshold))") }
        guard power > 0 && power <= 4 else { throw ValidationError("--power must be in (0, 4] (got \(power))") }
    }

    struct Group: Codable { var images: [String]; var minCosine: Float; var grid: String? }
    struct Summary: Codable {
        var source: String
        var layer: String
        var threshold: Float
        var power: Float
        var images: Int
        var failed: [String]
        var groups: [Group]
        var duplicatePairs: Int
        var embedSeconds: Double
        var searchSeconds: Double
        var seconds: Double
    }

    func run() throws {
        let start = Date()
        var paths: [Int64: String] = [:], failed: [String] = []
        var vectors: VectorSet
        var preprocessing: Preprocessing?
        var layerName = layer ?? "pool"
        var embedSeconds = 0.0
        if let db {
            let index = try CLI.openIndexForSearch(URL(fileURLWithPath: db))
            do {
                layerName = try CLI.searchLayer(layer, index)
                vectors = try index.vectors(layer: layerName)
            } catch { CLI.fail(CLI.describe(error)); throw ExitCode(2) }
            paths = try index.paths(of: Set(vectors.ids))
            preprocessing = index.preprocessing
        } else {
            let root = URL(fileURLWithPath: folder!, isDirectory: true)
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDir), isDir.boolValue else {
                CLI.fail("\(folder!): no such folder"); throw ExitCode(2)
            }
            let model = try CLI.loadModel(modelOptions)
            if let layer, layer != "pool" {
                guard model.layerInfo(named: layer) != nil else { CLI.fail("--layer: '\(layer)' is not a layer of \(model.spec.id) (see `vizlab layers`)"); throw ExitCode(2) }
            }
            layerName = layer == nil || layer == "pool" ? model.spec.embedding : layer!
            let files = try Indexer.imageFiles(under: root)
            guard !files.isEmpty else { CLI.fail("\(folder!): no PNG, JPEG or WebP images"); throw ExitCode(2) }
            let t = Date()
            let got = try CLI.embed(files, model: model, layer: layerName) { done, total, elapsed in
                FileHandle.standardError.write(Data(String(format: "\rduplicates: embedded %d/%d, ETA %.0fs ", done, total,
                                                           elapsed / Double(done) * Double(total - done)).utf8))
            }
            embedSeconds = Date().timeIntervalSince(t)
            let embedded = Set(got.map(\.0))
            failed = files.filter { !embedded.contains($0) }.map(\.path)
            var ids: [Int64] = [], data: [Float] = []
            for (i, (f, v)) in got.enumerated() { ids.append(Int64(i)); data += v; paths[Int64(i)] = f.path }
            vectors = VectorSet(ids: ids, dim: data.count / max(ids.count, 1), data: data)
            preprocessing = model.preprocessing
        }
        let unit: VectorSet
        do { unit = try NearDuplicates.descriptors(vectors, power: power) } catch { CLI.fail(CLI.describe(error)); throw ExitCode(1) }
        let t = Date()
        let found = NearDuplicates.find(unit, threshold: threshold)
        let searchSeconds = Date().timeIntervalSince(t)
        var groupOf: [Int64: Int] = [:]
        for (g, members) in found.groups.enumerated() { for m in members { groupOf[m] = g } }
        var minCos = [Float](repeating: 1, count: found.groups.count)
        for p in found.pairs { minCos[groupOf[p.a]!] = min(minCos[groupOf[p.a]!], p.cosine) }
        var row: [Int64: Int] = [:]
        for (i, id) in unit.ids.enumerated() { row[id] = i }
        let outDir = URL(fileURLWithPath: out, isDirectory: true)
        do { try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true) } catch {
            CLI.fail("cannot create the output folder \(outDir.path): \(error.localizedDescription)"); throw ExitCode(1)
        }
        var groups: [Group] = []
        for (g, members) in found.groups.enumerated() {
            let images = members.compactMap { paths[$0] }
            var group = Group(images: images, minCosine: minCos[g])
            if !noGrids {
                // The first member, then the others with their cosine to it.
                let url = outDir.appendingPathComponent(String(format: "group_%03d.png", g + 1))
                let first = unit.row(row[members[0]]!)
                let hits = members.dropFirst().compactMap { m in
                    paths[m].map { ($0, zip(first, unit.row(row[m]!)).reduce(Float(0)) { $0 + $1.0 * $1.1 }) }
                }
                try CLI.writeNeighbourGrid(query: images[0], hits: hits, preprocessing: preprocessing, metric: .cosine, layer: layerName, to: url)
                group.grid = url.path
            }
            groups.append(group)
        }
        let summary = Summary(source: db ?? folder!, layer: layerName, threshold: threshold, power: power, images: unit.count, failed: failed,
                              groups: groups, duplicatePairs: found.pairs.count, embedSeconds: embedSeconds,
                              searchSeconds: searchSeconds, seconds: Date().timeIntervalSince(start))
        try AtomicFile.write(try CLI.jsonEncoder().encode(summary), to: outDir.appendingPathComponent("duplicates.json"))
        if json { try CLI.printJSON(summary) } else {
            for (g, group) in groups.enumerated() {
                print(String(format: "group %d (%d images, min cosine %.3f):", g + 1, group.images.count, group.minCosine))
                for p in group.images { print("  \(p)") }
            }
            print(String(format: "%d images, %d groups of near-duplicates (cosine ≥ %.3f of the vectors to the power %.2g) in %.2f s",
                         unit.count, groups.count, threshold, power, summary.seconds))
        }
        if !failed.isEmpty { throw ExitCode(1) }
    }
}
