import ArgumentParser
import Engine
import Models
import Foundation
import Visualize

/// Options shared by the feature-visualization commands (neuron, channel, layer, dream, ideal, invert): the
/// optimization's length and everything else about it (`RenderTuning`, read through as if it were declared here).
@dynamicMemberLookup
struct RenderOptions: ParsableArguments {
    @Option(help: "Optimization steps.")
    var steps: Int = 512

    @OptionGroup var tuning: RenderTuning

    subscript<T>(dynamicMember path: KeyPath<RenderTuning, T>) -> T { tuning[keyPath: path] }

    static let defaultTV = RenderTuning.defaultTV

    func validate() throws {
        guard (1...100_000).contains(steps) else { throw ValidationError("--steps must be 1…100000 (got \(steps))") }
    }

    var settings: RenderSettings { tuning.settings(steps: steps) }
}

/// Everything about a render but its length (`interpolate` uses --steps for its frames).
struct RenderTuning: ParsableArguments {
    @Option(help: "Adam learning rate.")
    var lr: Float = 0.05

    @Option(help: "Image side in pixels (default: the model's input size, 224 for lite0).")
    var size: Int?

    @Option(help: "Image parameterization: fft (Lucid's default, 1/f-scaled spectrum) or pixel.")
    var param: RenderSettings.Parameterization = .fft

    @Flag(help: "Optimize in plain RGB instead of Lucid's decorrelated colour basis.")
    var noDecorrelate = false

    @Flag(help: "Evaluate the objective on the image as is, without random pad/jitter/scale/rotate.")
    var noTransforms = false

    @Option(help: "Total-variation weight (mean |neighbour difference| is subtracted × this). 0 turns it off.")
    var tv: Float = RenderOptions.defaultTV

    @Option(help: "L1 weight: mean |pixel − 0.5| is subtracted × this.")
    var l1: Float = 0

    @Option(help: "L2 weight: mean (pixel − 0.5)² is subtracted × this (default 0; 20 for invert and interpolate).")
    var l2: Float?

    @Option(help: "Blur the image every N steps (0: never).")
    var blurEvery: Int = 0

    @Option(help: "Blur σ in pixels for --blur-every.")
    var blurSigma: Float = 0.5

    @Option(help: "For the first N steps let gradients through clamped ReLU6 units (Lucid's redirected ReLU); 0: off.")
    var redirectSteps: Int = 0

    @Option(help: "Random seed; the same seed and thread count give the same PNG.")
    var seed: UInt64 = 0

    @Option(help: "Output folder (created if missing).")
    var out: String = "out"

    @Flag(help: "Also write one captioned grid of all images (always written for more than one image).")
    var grid = false

    @Flag(help: "Also write a plot of the objective over the steps (NAME_loss.png).")
    var plot = false

    @Flag(help: "Print a JSON summary on stdout instead of the file paths.")
    var json = false

    /// Chosen so `--tv 0` vs the default lowers total variation by ≥ 30% while keeping ≥ 70% of the activation
    /// (measured on 4 units at 256 steps and 20 channels at 512, see the README).
    static let defaultTV: Float = 50

    func validate() throws {
        guard lr > 0 && lr < 10 else { throw ValidationError("--lr must be in (0, 10) (got \(lr))") }
        if let size, !(32...1024).contains(size) { throw ValidationError("--size must be 32…1024 (got \(size))") }
        for (name, v) in [("--tv", tv), ("--l1", l1), ("--l2", l2 ?? 0)] where !(v >= 0 && v < 1e6) {
            throw ValidationError("\(name) must be ≥ 0 (got \(v))")
        }
        guard redirectSteps >= 0 else { throw ValidationError("--redirect-steps must be ≥ 0 (got \(redirectSteps))") }
        guard blurEvery >= 0 else { throw ValidationError("--blur-every must be ≥ 0 (got \(blurEvery))") }
        guard blurSigma > 0 && blurSigma <= 20 else { throw ValidationError("--blur-sigma must be in (0, 20] (got \(blurSigma))") }
    }

    func settings(steps: Int) -> RenderSettings {
        var s = RenderSettings()
        s.steps = steps; s.learningRate = lr; s.size = size ?? 224; s.parameterization = param
        s.decorrelate = !noDecorrelate; s.seed = seed
        s.transforms = noTransforms ? .none : TransformSettings()
        s.regularizers.totalVariation = tv; s.regularizers.l1 = l1; s.regularizers.l2 = l2 ?? 0
        s.regularizers.blurEvery = blurEvery; s.regularizers.blurSigma = blurSigma
        s.redirectSteps = redirectSteps
        return s
    }
}

extension RenderSettings.Parameterization: ExpressibleByArgument {}

/// One picture of a batch: its objective (on its own image), a file name and how to caption it.
struct RenderItem {
    var name: String
    var objective: Objective
    /// Measured on the saved image: the unit alone (without diversity or other batch terms).
    var measure: Objective
    var caption: String
    /// Classes whose probability the caption and sidecar report (ideal class).
    var classes: ClassSelection? = nil
}

extension CLI {
    /// Renders `items` in one batch (extra batch-wide terms such as diversity in `extra`), with progress and ETA
    /// on stderr, then writes NAME.png + NAME.json per item atomically, and the grid / loss plot if asked.
    static func renderAndSave(_ model: any VisionModel, _ items: [RenderItem], options: RenderOptions,
                              extra: Objective? = nil, batchName: String, initial: ImageParameterization? = nil,
                              settings override: RenderSettings? = nil) throws {
        var settings = override ?? options.settings
        if override == nil && options.size == nil { settings.size = model.inputSize }
        do { try model.checkInputSize(height: settings.size, width: settings.size) } catch {
            fail("--size \(settings.size): \(describe(error))"); throw ExitCode(2)
        }
        settings.batch = items.count
        let outDir = URL(fileURLWithPath: options.out, isDirectory: true)
        do { try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true) } catch {
            fail("cannot create the output folder \(outDir.path): \(error.localizedDescription)"); throw ExitCode(1)
        }
        var objective = Objective.perImage(items.map(\.objective))
        if let e = extra { objective = objective + e }
        let start = Date()
        let label = items.count == 1 ? items[0].objective.description : "\(items.count) images"
        let result = render(model, objective, settings, start: initial) { step, value in
            let done = step + 1
            guard done % 8 == 0 || done == settings.steps else { return }
            let elapsed = Date().timeIntervalSince(start)
            let eta = elapsed / Double(done) * Double(settings.steps - done)
            FileHandle.standardError.write(Data(String(format: "\r%@: step %d/%d  objective %.3f  %.1fs elapsed, ETA %.1fs ",
                                                       label, done, settings.steps, value, elapsed, eta).utf8))
        }
        FileHandle.standardError.write(Data("\n".utf8))
        let seconds = Date().timeIntervalSince(start)

        var summaries: [Sidecar] = [], tiles: [Figures.Tile] = []
        for (b, item) in items.enumerated() {
            let pngURL = outDir.appendingPathComponent(item.name + ".png")
            let rgb = rgbImage(fromUnitImage: result.image, index: b)
            try PNGEncoder.write(rgb, to: pngURL)
            // Measured on the image as saved (re-read, 8-bit, no transforms), not on the last transformed step.
            let measured = try measureSavedImage(model, at: pngURL, objective: item.measure, classes: item.classes?.indices)
            let value = measured.value, top5 = measured.top5, tv = measured.totalVariation
            let classProbability = measured.classProbability
            var captionLines = [item.caption, String(format: "%@ %.3g", item.classes == nil ? "act" : "objective", value)]
            if let p = classProbability {
                captionLines.append(String(format: "p = %.3f, top-1 %@", p, top5[0].name))
            }
            tiles.append(Figures.Tile(image: rgb, caption: captionLines))
            let sidecar = Sidecar(model: model.spec.id, weights: model.spec.weightsFile, command: CommandLine.arguments.dropFirst().joined(separator: " "),
                                  objective: item.objective.description, measured: item.measure.description,
                                  batchObjective: objective.description, settings: settings,
                                  finalObjectiveDuringOptimization: result.history.last ?? 0, valueOnSavedImage: value,
                                  totalVariationOfSavedImage: tv,
                                  classes: item.classes, classProbabilityOnSavedImage: classProbability, top5OnSavedImage: top5,
                                  objectiveHistory: result.history, penaltyHistory: settings.regularizers == Regularizers() ? nil : result.penalties,
                                  seconds: seconds, phaseSeconds: result.phaseSeconds, image: pngURL.lastPathComponent)
            try AtomicFile.write(try jsonEncoder().encode(sidecar), to: outDir.appendingPathComponent(item.name + ".json"))
            summaries.append(sidecar)
            if !options.json { print(pngURL.path) }
        }
        if options.grid || items.count > 1 {
            let url = outDir.appendingPathComponent(batchName + "_grid.png")
            try PNGEncoder.write(Figures.grid(tiles, title: "\(batchName) — \(settings.steps) steps, seed \(settings.seed)"), to: url)
            if !options.json { print(url.path) }
        }
        if options.plot {
            let url = outDir.appendingPathComponent(batchName + "_loss.png")
            var series: [(name: String, values: [Float])] = [("objective", result.history)]
            if settings.regularizers != Regularizers() { series.append(("penalty", result.penalties)) }
            try PNGEncoder.write(Figures.plot(series, title: "\(label): objective per step"), to: url)
            if !options.json { print(url.path) }
        }
        if options.json { try printJSON(summaries) }
    }

    struct Sidecar: Encodable {
        /// The model's id (architecture @ weights sha256) and its weight file.
        var model: String
        var weights: String
        var command: String
        var objective: String
        var measured: String
        var batchObjective: String
        var settings: RenderSettings
        var finalObjectiveDuringOptimization: Float
        /// The unit's value (or class log-probability/logit) on the saved PNG, re-read, without transforms.
        var valueOnSavedImage: Float
        /// Mean |neighbour difference| of the saved 8-bit image in [0, 1] (what --tv penalizes).
        var totalVariationOfSavedImage: Float
        var classes: ClassSelection?
        var classProbabilityOnSavedImage: Float?
        var top5OnSavedImage: [ClassScore]
        var objectiveHistory: [Float]
        var penaltyHistory: [Float]?
        var seconds: Double
        /// Where the optimization's time went (image parameterization, transforms, forward, backward, update).
        var phaseSeconds: [String: Double]
        var image: String
    }

    static func jsonEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    /// A file-name-safe form of a unit or class name.
    static func fileName(_ s: String) -> String {
        String(s.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" })
    }

    /// Parses an objective expression; any error becomes one line and exit code 2.
    static func parseObjective(_ text: String, model: any VisionModel, kind: ObjectiveExpression.UnitKind)
        throws -> (objective: Objective, terms: [ObjectiveExpression.Term]) {
        do {
            let parsed = try ObjectiveExpression.parse(text) { try model.resolveLayer($0) }
            let terms = parsed.map(\.0)
            return (ObjectiveExpression.objective(terms, kind: kind), terms)
        } catch {
            fail(describe(error)); throw ExitCode(2)
        }
    }
}
