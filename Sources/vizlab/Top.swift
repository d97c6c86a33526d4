import ArgumentParser
import Engine
import Models
import Foundation
import Visualize

struct Top: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A unit's top- (or bottom-) activating images from an index made by `vizlab index`, as a grid.",
        discussion: "Answers from the database (no model run); the images are re-read from disk to draw them.")

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "LAYER:CHANNEL, e.g. blocks.12:40 or logits:281.")
    var unit: String

    @Option(help: "How many images.")
    var k: Int = 16

    @Flag(help: "The least-activating images instead.")
    var negative = false

    @Option(help: "Rank by the channel's spatial max or mean.")
    var by: String = "max"

    @Flag(help: "Show the receptive field around the max position instead of the whole model view.")
    var patches = false

    @Flag(help: "Overlay the channel's activation map as a heat map (runs the model on the shown images).")
    var heatmap = false

    @Option(help: "The index database (default: $VIZLAB_HOME/examples.sqlite).")
    var db: String?

    @Option(help: "Output PNG (a JSON listing is written beside it).")
    var out: String?

    @Flag(help: "Print the listing as JSON on stdout.")
    var json = false

    struct Listing: Encodable {
        var unit: String
        var rankBy: String
        var end: String
        var receptiveField: Int
        var examples: [Example]
        var grid: String
    }
    struct Example: Encodable { var rank: Int; var path: String; var value: Float; var x: Int; var y: Int; var box: [Int] }

    func run() throws {
        guard (1...1000).contains(k) else { CLI.fail("--k must be 1…1000 (got \(k))"); throw ExitCode(2) }
        guard let rankBy = RankBy(rawValue: by) else { CLI.fail("--by must be max or mean (got '\(by)')"); throw ExitCode(2) }
        let dbURL = CLI.indexURL(db)
        guard FileManager.default.fileExists(atPath: dbURL.path) else {
            CLI.fail("\(dbURL.path): no index yet — run `vizlab index FOLDER` first"); throw ExitCode(1)
        }
        let index: ExampleIndex
        do { index = try ExampleIndex(url: dbURL) } catch { CLI.fail("\(dbURL.path): \(error)"); throw ExitCode(1) }
        let table = (try? index.layerTable()) ?? []
        let layer: LayerInfo, channel: Int
        do {
            (layer, channel, _) = try ObjectiveExpression.parseUnit(unit, position: false) { name in
                guard let l = table.first(where: { $0.name == name }) else {
                    throw ImageError(file: dbURL.path, reason: "layer '\(name)' is not in this index; indexed: \(table.map(\.name).joined(separator: ", "))")
                }
                return l
            }
        } catch { CLI.fail(CLI.describe(error)); throw ExitCode(2) }
        let end: RankEnd = negative ? .bottom : .top
        let rows = try index.ranked(layer: layer.name, channel: channel, by: rankBy, end: end, limit: k)
        let spatial = layer.shape.count == 3
        guard !rows.isEmpty else { CLI.fail("\(dbURL.path): no images indexed for \(unit)"); throw ExitCode(1) }
        // A query names its model only to be checked against the index's; the view is the index model's.
        var given: (any VisionModel)?
        if modelOptions.model != nil || ProcessInfo.processInfo.environment["VIZLAB_MODEL"].map({ !$0.isEmpty }) == true {
            let m = try CLI.loadModel(modelOptions)
            do { try index.checkModel(m.spec.id) } catch { CLI.fail(CLI.describe(error)); throw ExitCode(2) }
            given = m
        }
        guard let preprocessing = index.preprocessing else {
            CLI.fail("\(dbURL.path): this index records no model (made by an older vizlab); delete it and index again"); throw ExitCode(2)
        }
        var model = given
        if heatmap && spatial && model == nil {
            guard let args = index.modelArguments else { CLI.fail("\(dbURL.path): this index does not record its model; give --model"); throw ExitCode(2) }
            let m = try CLI.loadModel(try ModelOptions.parse(args))
            do { try index.checkModel(m.spec.id) } catch {
                CLI.fail("--heatmap: the index's weight file has changed since indexing (\(CLI.describe(error)))"); throw ExitCode(2)
            }
            model = m
        }
        if !(heatmap && spatial) { model = nil }
        var tiles: [Figures.Tile] = [], examples: [Example] = []
        for (rank, (e, path)) in rows.enumerated() {
            let box = spatial ? layer.receptiveBox(x: e.x, y: e.y) : (x0: 0, y0: 0, side: preprocessing.crop)
            examples.append(Example(rank: rank + 1, path: path, value: e.value, x: e.x, y: e.y, box: [box.x0, box.y0, box.side]))
            let caption = [String(format: "%.2f", e.value), URL(fileURLWithPath: path).lastPathComponent]
            do {
                var view = preprocessing.view(Preprocess.compositeOnWhite(try ImageDecoder.decode(contentsOf: URL(fileURLWithPath: path))))
                if let model {
                    let act = GradMode.withoutGrad { model.forward(preprocessing.normalize(view), capture: [layer.name])[layer.name]! }
                    view = ExampleView.overlay(view, map: act, channel: channel)
                }
                let picture = patches && spatial ? ExampleView.crop(view, box: box) : ExampleView.outline(view, box: spatial ? box : nil)
                tiles.append(Figures.Tile(image: picture, caption: caption))
            } catch {
                CLI.fail("\(path): \(CLI.describe(error)) (indexed, but cannot be read now)")
                tiles.append(Figures.Tile(image: RGBImage(width: 1, height: 1, pixels: [200, 200, 200]), caption: caption + ["unreadable"]))
            }
        }
        let title = "\(layer.name):\(channel) — \(end == .top ? "top" : "bottom") \(rows.count) by spatial \(rankBy.rawValue)"
            + (patches ? " (receptive field \(layer.receptiveField)px around the max)" : "")
        let grid = Figures.grid(tiles, columns: min(8, tiles.count), tileSize: patches ? 128 : 160, title: title)
        let outURL = URL(fileURLWithPath: out ?? "out/top/\(layer.name)_\(channel)\(negative ? "_negative" : "")\(patches ? "_patches" : "").png")
        try FileManager.default.createDirectory(at: outURL.deletingLastPathComponent(), withIntermediateDirectories: true)
        try PNGEncoder.write(grid, to: outURL)
        let listing = Listing(unit: "\(layer.name):\(channel)", rankBy: rankBy.rawValue, end: end.rawValue,
                              receptiveField: layer.receptiveField, examples: examples, grid: outURL.path)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try encoder.encode(listing), to: outURL.deletingPathExtension().appendingPathExtension("json"))
        if json { try CLI.printJSON(listing) } else {
            for e in examples { print(String(format: "%3d  %8.3f  %@", e.rank, e.value, e.path)) }
            print(outURL.path)
        }
    }
}
