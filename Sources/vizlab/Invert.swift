import ArgumentParser
import Engine
import Foundation
import Models
import Similarity
import Visualize

/// The embedding space as pictures: feature inversion of a photo, and a walk between two photos' embeddings.
/// Both render with the same parameterization, transforms and TV as `vizlab channel`, maximizing the cosine of the
/// render's pooled vector to a target; both measure the saved PNGs the way `vizlab similar` embeds a file.
struct Invert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render an image whose embedding matches a photo's (feature inversion).",
        discussion: "Examples:\n  vizlab invert photo.jpg\n  vizlab invert photo.jpg --layer blocks.10 --steps 1024")

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "Photos to invert (one render each, one batch).")
    var photos: [String]

    @Option(help: "The vector to match: pool (the pooled embedding, default) or a layer (its channels' spatial means).")
    var layer: String = "pool"

    @OptionGroup var options: RenderOptions

    struct Result: Codable {
        var photo: String; var image: String; var layer: String
        /// The saved PNG re-read and fed as it is (a render is a model input: how every render is measured).
        var cosineOfSavedImage: Float
        /// The saved PNG embedded as `vizlab similar` embeds a file (resized and cropped by the model's preprocessing).
        var cosineAsQuery: Float
    }

    func run() throws {
        let model = try CLI.loadModel(modelOptions)
        let layerName = try CLI.embeddingLayer(layer, model)
        let targets = try CLI.embed(photos.map { URL(fileURLWithPath: $0) }, model: model, layer: layerName)
        let items = targets.map { url, v in
            let stem = CLI.fileName(url.deletingPathExtension().lastPathComponent)
            let o = Objective.embeddingCosine(layerName, target: v, name: stem)
            return RenderItem(name: "invert_\(stem)_\(CLI.fileName(layerName))", objective: CLI.inversionWeight * o, measure: o,
                              caption: "invert \(url.lastPathComponent)")
        }
        guard !items.isEmpty else { throw ExitCode(1) }
        try CLI.renderAndSave(model, items, options: options, batchName: "invert", settings: CLI.inversionSettings(options.settings, options.size, l2: options.l2, model))
        let outDir = URL(fileURLWithPath: options.out, isDirectory: true)
        let saved = items.map { outDir.appendingPathComponent($0.name + ".png") }
        let again = try CLI.embed(saved, model: model, layer: layerName).map(\.1)
        let asIs = try CLI.embedAsIs(saved, model: model, layer: layerName)
        var results: [Result] = []
        for (i, (url, v)) in targets.enumerated() {
            results.append(Result(photo: url.path, image: saved[i].path, layer: layerName, cosineOfSavedImage: cosine(v, asIs[i]),
                                  cosineAsQuery: cosine(v, again[i])))
        }
        try AtomicFile.write(try CLI.jsonEncoder().encode(results), to: outDir.appendingPathComponent("invert.json"))
        for r in results {
            FileHandle.standardError.write(Data(String(format: "%@: cosine of the saved render's embedding to the photo's: %.4f (embedded as a query photo: %.4f)\n",
                                                       r.image, r.cosineOfSavedImage, r.cosineAsQuery).utf8))
        }
        if targets.count < photos.count { throw ExitCode(1) }
    }
}

struct Interpolate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A strip of renders whose embedding walks from one photo's to another's.",
        discussion: "Frame i of n maximizes (1 − t)·cos(x, a) + t·cos(x, b) on the pooled embeddings (t = i/(n − 1)), all frames in one batch from one shared initial image, with a hinge penalty on any frame that is not --order-margin farther from a and nearer to b than the frame before it.\nExample:\n  vizlab interpolate a.jpg b.jpg --steps 8")

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "The first photo.")
    var a: String
    @Argument(help: "The last photo.")
    var b: String

    @Option(help: "Frames in the strip (the photos' own renders included).")
    var steps: Int = 8

    @Option(help: "Optimization steps per render.")
    var renderSteps: Int = 512

    @Option(help: "The vector to walk: pool (default) or a layer.")
    var layer: String = "pool"

    @Option(help: "Weight of the order penalty (0: off), relative to a frame's cosines.")
    var orderWeight: Float = 1

    @Option(help: "How much farther from a, and nearer to b, each frame must be than the one before it (cosine).")
    var orderMargin: Float = 0.02

    @OptionGroup var tuning: RenderTuning

    func validate() throws {
        guard orderWeight.isFinite, orderWeight >= 0 else { throw ValidationError("--order-weight must be ≥ 0 (got \(orderWeight))") }
        guard orderMargin.isFinite, (0...0.5).contains(orderMargin) else { throw ValidationError("--order-margin must be 0…0.5 (got \(orderMargin))") }
        guard (2...32).contains(steps) else { throw ValidationError("--steps must be 2…32 frames (got \(steps))") }
        guard (1...100_000).contains(renderSteps) else { throw ValidationError("--render-steps must be 1…100000 (got \(renderSteps))") }
    }

    /// Cosines of the saved frame fed as it is; the `AsQuery` pair embeds it as `vizlab similar` embeds a file.
    struct Frame: Codable { var t: Float; var image: String; var cosineToA: Float; var cosineToB: Float; var cosineToAAsQuery: Float; var cosineToBAsQuery: Float }
    struct Summary: Codable {
        var a: String, b: String, layer: String
        var cosineAB: Float
        /// The order penalty's weight and margin (`--order-weight`, `--order-margin`).
        var orderWeight: Float, orderMargin: Float
        var frames: [Frame]
        var monotonic: Bool
        var monotonicAsQuery: Bool
        var strip: String
    }

    func run() throws {
        let model = try CLI.loadModel(modelOptions)
        let layerName = try CLI.embeddingLayer(layer, model)
        let ends = try CLI.embed([URL(fileURLWithPath: a), URL(fileURLWithPath: b)], model: model, layer: layerName)
        guard ends.count == 2 else { throw ExitCode(1) }
        let ua = unit(ends[0].1), ub = unit(ends[1].1)
        let stemA = CLI.fileName(ends[0].0.deletingPathExtension().lastPathComponent), stemB = CLI.fileName(ends[1].0.deletingPathExtension().lastPathComponent)
        let ts = (0..<steps).map { Float($0) / Float(steps - 1) }
        let items = ts.enumerated().map { i, t in
            // (1 − t)·cos(x, a) + t·cos(x, b): each frame a point on the trade-off between the two cosines, weighted
            // by t, so along the strip the cosine to a can only fall and the cosine to b only rise (at the optimum).
            let toA = Objective.embeddingCosine(layerName, target: ua, name: stemA), toB = Objective.embeddingCosine(layerName, target: ub, name: stemB)
            let o = ((1 - t) * toA + t * toB).named(String(format: "%.2f·cos(%@, %@) + %.2f·cos(%@, %@)", 1 - t, layerName, stemA, t, layerName, stemB))
            return RenderItem(name: String(format: "interpolate_%@_%@_%02d", stemA, stemB, i), objective: CLI.inversionWeight * o, measure: o,
                              caption: String(format: "t = %.2f", t))
        }
        var options = try RenderOptions.parse([])
        options.steps = renderSteps
        options.tuning = tuning
        var settings = CLI.inversionSettings(options.settings, tuning.size, l2: tuning.l2, model)
        settings.batch = items.count
        // Every frame starts from the same random image (and the transforms are drawn once per step for the whole
        // batch), so frames differ only by their targets: neighbouring frames stay alike and the walk is smooth.
        var generator = SeededGenerator(seed: settings.seed)
        let start = makeParameterization(settings, generator: &generator)
        for v in start.variables {
            let per = v.count / items.count
            for b in 1..<items.count { for i in 0..<per { v.data[b * per + i] = v.data[i] } }
        }
        // The frames' own trade-offs order the strip only at their optima; near an end the nearer cosine saturates and
        // neighbours come out a noise apart, in either order. The hinge makes the order part of the objective.
        let order = orderWeight > 0 ? CLI.inversionWeight * orderWeight * Objective.walkOrder(layerName, a: ua, b: ub, margin: orderMargin) : nil
        try CLI.renderAndSave(model, items, options: options, extra: order, batchName: "interpolate_\(stemA)_\(stemB)", initial: start, settings: settings)
        let outDir = URL(fileURLWithPath: tuning.out, isDirectory: true)
        let saved = items.map { outDir.appendingPathComponent($0.name + ".png") }
        let again = try CLI.embed(saved, model: model, layer: layerName).map(\.1)
        let asIs = try CLI.embedAsIs(saved, model: model, layer: layerName)
        let frames = ts.indices.map { i in
            Frame(t: ts[i], image: saved[i].path, cosineToA: cosine(asIs[i], ends[0].1), cosineToB: cosine(asIs[i], ends[1].1),
                  cosineToAAsQuery: cosine(again[i], ends[0].1), cosineToBAsQuery: cosine(again[i], ends[1].1))
        }
        let monotonic = zip(frames, frames.dropFirst()).allSatisfy { $1.cosineToA <= $0.cosineToA && $1.cosineToB >= $0.cosineToB }
        let monotonicAsQuery = zip(frames, frames.dropFirst()).allSatisfy { $1.cosineToAAsQuery <= $0.cosineToAAsQuery && $1.cosineToBAsQuery >= $0.cosineToBAsQuery }
        let tiles = [Figures.Tile(image: model.preprocessing.view(Preprocess.compositeOnWhite(try ImageDecoder.decode(contentsOf: ends[0].0))), caption: ["a", ends[0].0.lastPathComponent])]
            + zip(frames, saved).map { f, url in
                Figures.Tile(image: Preprocess.compositeOnWhite((try? ImageDecoder.decode(contentsOf: url)) ?? RGBAImage(width: 1, height: 1, pixels: [0, 0, 0, 255])),
                             caption: [String(format: "t = %.2f", f.t), String(format: "cos a %.3f · b %.3f", f.cosineToA, f.cosineToB)])
            }
            + [Figures.Tile(image: model.preprocessing.view(Preprocess.compositeOnWhite(try ImageDecoder.decode(contentsOf: ends[1].0))), caption: ["b", ends[1].0.lastPathComponent])]
        let strip = outDir.appendingPathComponent("interpolate_\(stemA)_\(stemB)_strip.png")
        try PNGEncoder.write(Figures.grid(tiles, columns: tiles.count, tileSize: 160,
                                          title: "\(ends[0].0.lastPathComponent) → \(ends[1].0.lastPathComponent) on \(layerName)"), to: strip)
        let summary = Summary(a: ends[0].0.path, b: ends[1].0.path, layer: layerName, cosineAB: cosine(ends[0].1, ends[1].1),
                              orderWeight: orderWeight, orderMargin: orderMargin, frames: frames, monotonic: monotonic, monotonicAsQuery: monotonicAsQuery, strip: strip.path)
        try AtomicFile.write(try CLI.jsonEncoder().encode(summary), to: outDir.appendingPathComponent("interpolate_\(stemA)_\(stemB).json"))
        for f in frames {
            FileHandle.standardError.write(Data(String(format: "t = %.2f  cos a %.4f  cos b %.4f  (as a query photo: %.4f, %.4f)\n",
                                                       f.t, f.cosineToA, f.cosineToB, f.cosineToAAsQuery, f.cosineToBAsQuery).utf8))
        }
        FileHandle.standardError.write(Data("cosines \(monotonic ? "change monotonically" : "are NOT monotonic") along the strip\n".utf8))
        if !tuning.json { print(strip.path) }
    }
}

func unit(_ v: [Float]) -> [Float] { let n = max(v.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12); return v.map { $0 / n } }
func cosine(_ a: [Float], _ b: [Float]) -> Float { zip(unit(a), unit(b)).reduce(0) { $0 + $1.0 * $1.1 } }

extension CLI {
    /// The cosine (≤ 1) is about a tenth of a typical unit's activation, so it is optimized ×10: `--tv 50` then weighs
    /// it as it weighs a channel (at ×1 the total-variation term wins and the render is flat black and white blobs;
    /// Adam makes ×10 with TV 50 the same as ×1 with TV 5). The value reported is the cosine itself.
    static let inversionWeight: Float = 10

    /// Without a prior on the pixels, a long inversion drifts to overexposed black-and-white regions (the pooled
    /// embedding is matched all the same); `--l2 20` (mean (pixel − 0.5)² × 20) keeps it a picture. Measured on three
    /// photos at 512 steps: recognizable castles and flowers, cosines unchanged (docs/similar.md).
    static let inversionL2: Float = 20

    /// `vizlab channel`'s settings (the L2 prior unless `--l2` is given), with Lucid's random zooms (0.90–1.10) widened to 0.90–1.24: a file embedded as a
    /// photo is resized and centre-cropped by the model's preprocessing (for Lite0 a 256/224 = 1.14 zoom), and the
    /// render should keep its embedding under that view too.
    static func inversionSettings(_ base: RenderSettings, _ size: Int?, l2: Float?, _ model: any VisionModel) -> RenderSettings {
        var s = base
        if size == nil { s.size = model.inputSize }
        s.regularizers.l2 = l2 ?? inversionL2
        if s.transforms != .none { s.transforms.scales = (0...17).map { 1 + Double($0 - 5) / 50 } }
        return s
    }

    /// "pool" → the model's embedding; any other name must be a layer of the model.
    static func embeddingLayer(_ name: String, _ model: any VisionModel) throws -> String {
        if name == "pool" { return model.spec.embedding }
        guard model.layerInfo(named: name) != nil else { fail("--layer: '\(name)' is not a layer of \(model.spec.id) (see `vizlab layers`)"); throw ExitCode(2) }
        return name
    }

    /// Saved renders' vectors, each PNG fed to the model as it is (normalized only), as renders are measured.
    static func embedAsIs(_ urls: [URL], model: any VisionModel, layer: String) throws -> [[Float]] {
        try urls.map { url in
            let rgb = Preprocess.compositeOnWhite(try ImageDecoder.decode(contentsOf: url))
            let act = GradMode.withoutGrad { model.forward(model.preprocessing.normalize(rgb), capture: [layer])[layer]! }
            return Embedder.spatialMean(act, image: 0)
        }
    }

    /// Each file's vector at `layer` as `vizlab similar` embeds a query; unreadable files are one line each and dropped.
    static func embed(_ urls: [URL], model: any VisionModel, layer: String,
                      progress: ((Int, Int, Double) -> Void)? = nil) throws -> [(URL, [Float])] {
        let got = Embedder.vectors(urls, model: model, layer: layer, progress: progress)
        if progress != nil { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        var out: [(URL, [Float])] = []
        for (i, u) in urls.enumerated() {
            if let e = got.errors[i] { fail(e.hasPrefix(u.path) ? e : "\(u.path): \(e)"); continue }
            out.append((u, got.vectors[i]!))
        }
        return out
    }
}
