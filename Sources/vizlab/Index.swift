import ArgumentParser
import Engine
import Models
import Foundation
import Visualize

struct IndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Index a folder of images once (recursively) for `vizlab top`: every unit's top and bottom images.",
        discussion: """
        Runs the model once per new or changed image (batched, forward only) and stores per image and layer each \
        channel's spatial max (with its position) and mean, plus the pooled 1280-d embedding, in SQLite. Re-running \
        processes only new or changed files and drops removed ones; a killed run resumes cleanly. Unreadable files \
        are recorded with their error and skipped.
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "Folder of PNG, JPEG and WebP images (searched recursively).")
    var folder: String

    @Option(help: "The index database (default: $VIZLAB_HOME/examples.sqlite).")
    var db: String?

    @Option(parsing: .upToNextOption, help: "Layers to index (default: every block output and the logits).")
    var layers: [String] = []

    @Option(help: "Images kept per list (top/bottom × max/mean) for every channel.")
    var k: Int = 32

    @Option(help: "Images per forward pass.")
    var batch: Int = 8

    @Flag(help: "Print the summary as JSON on stdout.")
    var json = false

    func run() throws {
        guard (1...1000).contains(k) else { CLI.fail("--k must be 1…1000 (got \(k))"); throw ExitCode(2) }
        guard (1...64).contains(batch) else { CLI.fail("--batch must be 1…64 (got \(batch))"); throw ExitCode(2) }
        let root = URL(fileURLWithPath: folder, isDirectory: true)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDir), isDir.boolValue else {
            CLI.fail("\(folder): no such folder"); throw ExitCode(1)
        }
        let model = try CLI.loadModel(modelOptions)
        let chosen = layers.isEmpty ? Indexer.defaultLayers(model) : layers
        for name in chosen where model.layerInfo(named: name) == nil || name == model.spec.embedding {
            CLI.fail("--layers: '\(name)' is not an indexable layer (see `vizlab layers`)"); throw ExitCode(2)
        }
        let dbURL = CLI.indexURL(db)
        let index: ExampleIndex
        do { index = try ExampleIndex(url: dbURL) } catch { CLI.fail("\(dbURL.path): \(error)"); throw ExitCode(1) }
        let summary: Indexer.Summary
        do {
            summary = try Indexer(layers: chosen, k: k, batch: batch).run(root: root, index: index, model: model) { done, total, elapsed in
                let rate = Double(done) / max(elapsed, 1e-9)
                let eta = Double(total - done) / max(rate, 1e-9)
                FileHandle.standardError.write(Data(String(format: "\rindex: %d/%d new or changed images, %.1f images/s, ETA %.0fs   ",
                                                           done, total, rate, eta).utf8))
            }
        } catch { FileHandle.standardError.write(Data("\n".utf8)); CLI.fail(CLI.describe(error)); throw ExitCode(1) }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        if json { try CLI.printJSON(summary) } else {
            print(String(format: "%@: %d images found — %d new, %d changed, %d unchanged, %d only touched, %d removed, %d failed",
                         folder, summary.found, summary.new, summary.changed, summary.unchanged, summary.touched, summary.removed, summary.failed.count))
            print(String(format: "processed %d in %.1f s: %.1f images/s end to end; model alone %.1f images/s (%.1f s), reading+decoding %.1f s, database %.1f s",
                         summary.processed, summary.seconds, summary.imagesPerSecond, summary.modelImagesPerSecond,
                         summary.modelSeconds, summary.decodeSeconds, summary.databaseSeconds))
            for f in summary.failed { print("  failed: \(f.error)") }
            print("index: \(dbURL.path)")
        }
    }
}

extension CLI {
    static func indexURL(_ given: String?) -> URL {
        given.map { URL(fileURLWithPath: $0) } ?? WeightStore.home.appendingPathComponent("examples.sqlite")
    }
}
