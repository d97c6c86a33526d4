import ArgumentParser
import Engine
import Foundation
import Visualize

struct Top: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A unit's top- (or bottom-) activating images from an index made by `vizlab index`, as a grid.",
        discussion: "Answers from the database (no model run); the images are re-read from disk to draw them.")

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
        let parts = unit.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let channel = Int(parts[1]) else { CLI.fail("'\(unit)' is not LAYER:CHANNEL (e.g. blocks.12:40)"); throw ExitCode(2) }
        guard let layer = table.first(where: { $0.name == parts[0] }) else {
            CLI.fail("layer '\(parts[0])' is not in this index; indexed: \(table.map(\.name).joined(separator: ", "))"); throw ExitCode(2)
        }
        guard channel >= 0 && channel < layer.channels else {
            CLI.fail("channel \(channel) is out of range for \(layer.name): it has channels 0…\(layer.channels - 1)"); throw ExitCode(2)
        }
        let end: RankEnd = negative ? .bottom : .top
        let rows = try index.ranked(layer: layer.name, channel: channel, by: rankBy, end: end, limit: k)
        let spatial = layer.shape.count == 3
        guard !rows.isEmpty else { CLI.fail("\(dbURL.path): no images indexed for \(unit)"); throw ExitCode(1) }
        let model = heatmap && spatial ? try CLI.loadModel() : nil
        var tiles: [Figures.Tile] = [], examples: [Example] = []
        for (rank, (e, path)) in rows.enumerated() {
            let box = spatial ? layer.receptiveBox(x: e.x, y: e.y) : (x0: 0, y0: 0, side: 224)
            examples.append(Example(rank: rank + 1, path: path, value: e.value, x: e.x, y: e.y, box: [box.x0, box.y0, box.side]))
            let caption = [String(format: "%.2f", e.value), URL(fileURLWithPath: path).lastPathComponent]
            do {
                var view = Preprocess.modelView(Preprocess.compositeOnWhite(try ImageDecoder.decode(contentsOf: URL(fileURLWithPath: path))))
                if let model {
                    let act = GradMode.withoutGrad { model.forward(Preprocess.normalize(view), capture: [layer.name])[layer.name]! }
                    view = Top.overlay(view, map: act, channel: channel)
                }
                let picture = patches && spatial ? Top.crop(view, box: box) : Top.outline(view, box: spatial ? box : nil)
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

    /// The part of the model view inside the receptive-field box (the box clipped to the image: units deep in the
    /// network see more than the whole 224² view), on a grey square.
    static func crop(_ view: RGBImage, box: (x0: Int, y0: Int, side: Int)) -> RGBImage {
        let x0 = max(0, box.x0), y0 = max(0, box.y0)
        let x1 = min(view.width, box.x0 + box.side), y1 = min(view.height, box.y0 + box.side)
        let side = max(x1 - x0, y1 - y0, 1)
        var px = [UInt8](repeating: 128, count: side * side * 3)
        let ox = (side - (x1 - x0)) / 2, oy = (side - (y1 - y0)) / 2
        for y in y0..<y1 { for x in x0..<x1 {
            for c in 0..<3 { px[((y - y0 + oy) * side + (x - x0 + ox)) * 3 + c] = view.pixels[(y * view.width + x) * 3 + c] }
        } }
        return RGBImage(width: side, height: side, pixels: px)
    }

    /// The activation map of one channel (upsampled bilinearly to the view, clipped at 0, scaled to its own max)
    /// blended over the view from transparent to red–yellow.
    static func overlay(_ view: RGBImage, map t: Tensor, channel: Int) -> RGBImage {
        let h = t.shape[2], w = t.shape[3]
        let plane = Array(t.data[(channel * h * w)..<((channel + 1) * h * w)])
        let top = max(plane.max() ?? 0, 1e-6)
        var out = view
        for y in 0..<view.height { for x in 0..<view.width {
            let fy = max(0, min(Double(h - 1), (Double(y) + 0.5) * Double(h) / Double(view.height) - 0.5))
            let fx = max(0, min(Double(w - 1), (Double(x) + 0.5) * Double(w) / Double(view.width) - 0.5))
            let y0 = Int(fy), x0 = Int(fx), y1 = min(y0 + 1, h - 1), x1 = min(x0 + 1, w - 1)
            let ty = Float(fy - Double(y0)), tx = Float(fx - Double(x0))
            let v = (plane[y0 * w + x0] * (1 - tx) + plane[y0 * w + x1] * tx) * (1 - ty) + (plane[y1 * w + x0] * (1 - tx) + plane[y1 * w + x1] * tx) * ty
            let a = max(0, min(1, v / top)) * 0.6
            let heat: [Float] = [255, 255 * max(0, min(1, 2 * v / top - 1)), 0]
            for c in 0..<3 {
                let i = (y * view.width + x) * 3 + c
                out.pixels[i] = UInt8((Float(view.pixels[i]) * (1 - a) + heat[c] * a).rounded())
            }
        } }
        return out
    }

    /// The model view with the receptive field of the max position outlined in orange.
    static func outline(_ view: RGBImage, box: (x0: Int, y0: Int, side: Int)?) -> RGBImage {
        guard let b = box, b.side < view.width else { return view }
        var out = view
        let x0 = max(0, b.x0), y0 = max(0, b.y0), x1 = min(view.width - 1, b.x0 + b.side - 1), y1 = min(view.height - 1, b.y0 + b.side - 1)
        func set(_ x: Int, _ y: Int) { let i = (y * view.width + x) * 3; out.pixels[i] = 255; out.pixels[i + 1] = 140; out.pixels[i + 2] = 0 }
        for x in x0...x1 { set(x, y0); set(x, y1) }
        for y in y0...y1 { set(x0, y); set(x1, y) }
        return out
    }
}
