import ArgumentParser
import Engine
import Models
import Foundation
import Visualize

struct LayerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "layer",
        abstract: "DeepDream a whole layer from noise (mean squared activation), or follow a direction in its channel space.",
        discussion: "Examples:\n  vizlab layer blocks.8\n  vizlab layer blocks.8 --direction vector.txt   (one number per channel)")

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "Layer name (see `vizlab layers`).")
    var layer: String

    @Option(help: "A file with one weight per channel of the layer (whitespace or comma separated): maximize Σ w_c·a_c.")
    var direction: String?

    @OptionGroup var options: RenderOptions

    func run() throws {
        let model = try CLI.loadModel(modelOptions)
        let info: LayerInfo
        do { info = try model.resolveLayer(layer) } catch { CLI.fail(CLI.describe(error)); throw ExitCode(2) }
        var objective = Objective.layer(info.name)
        var name = "layer_\(info.name)"
        if let path = direction {
            let vector = try CLI.readVector(path, count: info.channels, layer: info.name)
            let base = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            objective = .direction(info.name, vector, name: base)
            name = "direction_\(base)_\(info.name)"
        }
        try CLI.renderAndSave(model, [RenderItem(name: CLI.fileName(name), objective: objective, measure: objective, caption: objective.description)],
                              options: options, batchName: CLI.fileName(name))
    }
}

struct Dream: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "DeepDream on a photo: start from the picture (its centre 224 crop) and amplify what a layer sees in it.",
        discussion: "Example:\n  vizlab dream photo.jpg --layer blocks.8 --steps 64")

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "The photo (PNG, JPEG, WebP).")
    var photo: String

    @Option(help: "Layer whose squared activation is maximized.")
    var layer: String?

    @OptionGroup var options: RenderOptions

    func run() throws {
        let model = try CLI.loadModel(modelOptions)
        let info: LayerInfo
        do { info = try model.resolveLayer(layer ?? model.spec.defaultLayer) } catch { CLI.fail("--layer " + CLI.describe(error)); throw ExitCode(2) }
        let rgb: RGBImage
        do {
            rgb = model.preprocessing.view(Preprocess.compositeOnWhite(try ImageDecoder.decode(contentsOf: URL(fileURLWithPath: photo))))
        } catch { CLI.fail(CLI.describe(error)); throw ExitCode(1) }
        let side = rgb.width
        let unit = Tensor(shape: [1, 3, side, side], data: (0..<3).flatMap { c in (0..<(side * side)).map { Float(rgb.pixels[$0 * 3 + c]) / 255 } })
        var settings = options.settings
        settings.size = side
        settings.parameterization = .pixel
        let objective = Objective.layer(info.name)
        let base = CLI.fileName("dream_" + URL(fileURLWithPath: photo).deletingPathExtension().lastPathComponent + "_" + info.name)
        try CLI.renderAndSave(model, [RenderItem(name: base, objective: objective, measure: objective, caption: "dream \(info.name)")],
                              options: options, batchName: base, initial: PixelImage(photo: unit, decorrelate: settings.decorrelate),
                              settings: settings)
    }
}

extension CLI {
    /// One float per channel from a text file; one-line errors for a missing file, bad numbers or a wrong count.
    static func readVector(_ path: String, count: Int, layer: String) throws -> [Float] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            fail("--direction \(path): cannot read the file (\(error.localizedDescription))"); throw ExitCode(2)
        }
        let fields = text.split { $0.isWhitespace || $0 == "," || $0 == "[" || $0 == "]" }
        var values: [Float] = []
        for f in fields {
            guard let v = Float(f), v.isFinite else { fail("--direction \(path): '\(f)' is not a number"); throw ExitCode(2) }
            values.append(v)
        }
        guard values.count == count else {
            fail("--direction \(path): has \(values.count) numbers, \(layer) has \(count) channels"); throw ExitCode(2)
        }
        return values
    }
}
