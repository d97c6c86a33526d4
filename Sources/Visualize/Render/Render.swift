import Engine
import Foundation

/// Everything that determines a rendering, so it can be recorded and reproduced.
public struct RenderSettings: Codable, Sendable {
    public enum Parameterization: String, Codable, Sendable { case fft, pixel }
    public var steps = 512
    public var learningRate: Float = 0.05
    public var size = 224
    public var batch = 1
    public var parameterization = Parameterization.fft
    public var decorrelate = true
    public var transforms = TransformSettings()
    public var regularizers = Regularizers()
    /// For this many first steps, ReLU/ReLU6 pass gradients that would bring a clamped unit back into range
    /// (Lucid's redirected ReLU), so a unit that starts dead or saturated on the initial noise still gets a signal.
    public var redirectSteps = 0
    public var seed: UInt64 = 0

    public init() {}
}

public struct RenderResult {
    /// [N, 3, H, W] in [0, 1].
    public var image: Tensor
    /// The objective after each step (on that step's transformed image), before regularizer penalties.
    public var history: [Float]
    /// The weighted regularizer penalty at each step (0 without regularizers).
    public var penalties: [Float]
    /// Wall-clock seconds per phase summed over the steps (image, transforms, forward, backward, update).
    public var phaseSeconds: [String: Double]
}

/// Model input from an image in [0, 1]: the model's normalization of x · 255, as photos get it.
public func modelInput(fromUnitImage image: Tensor, _ preprocessing: Preprocessing) -> Tensor {
    let (source, scale, shift) = preprocessing.affine
    return channelAffine(image, source: source, scale: scale.map { $0 * 255 }, shift: shift)
}

/// Image `index` of [N, 3, H, W] in [0, 1] → 8-bit RGB.
public func rgbImage(fromUnitImage image: Tensor, index: Int = 0) -> RGBImage {
    let h = image.shape[2], w = image.shape[3], base = index * 3 * h * w
    var px = [UInt8](repeating: 0, count: h * w * 3)
    for y in 0..<h { for x in 0..<w { for c in 0..<3 {
        px[(y * w + x) * 3 + c] = UInt8(max(0, min(255, (image.data[base + (c * h + y) * w + x] * 255).rounded())))
    } } }
    return RGBImage(width: w, height: h, pixels: px)
}

/// The parameterization `settings` asks for, drawn from `generator`.
public func makeParameterization(_ settings: RenderSettings, generator: inout SeededGenerator) -> ImageParameterization {
    switch settings.parameterization {
    case .fft: FFTImage(batch: settings.batch, height: settings.size, width: settings.size, decorrelate: settings.decorrelate,
                        generator: &generator)
    case .pixel: PixelImage(batch: settings.batch, height: settings.size, width: settings.size, decorrelate: settings.decorrelate,
                            generator: &generator)
    }
}

/// Activation maximization: Adam on the image parameterization, the objective evaluated on a randomly
/// transformed copy every step, minus the regularizers on the untransformed image. `start` replaces the random
/// initial image (DeepDream on a photo). `progress(step, objective)` is called after each step.
public func render(_ model: any VisionModel, _ objective: Objective, _ settings: RenderSettings,
                   start: ImageParameterization? = nil, progress: (Int, Float) -> Void = { _, _ in }) -> RenderResult {
    var generator = SeededGenerator(seed: settings.seed)
    let param = start ?? makeParameterization(settings, generator: &generator)
    var adam = Adam(learningRate: settings.learningRate)
    var history: [Float] = [], penalties: [Float] = []
    let reg = settings.regularizers
    var phases: [String: Double] = [:]
    var clock = DispatchTime.now().uptimeNanoseconds
    func lap(_ phase: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        phases[phase, default: 0] += Double(now - clock) / 1e9
        clock = now
    }
    for step in 0..<settings.steps {
        for v in param.variables { v.grad = nil }
        let image = param.image()
        lap("image")
        let transformed = settings.transforms.apply(image, settings.transforms.draw(&generator))
        lap("transforms")
        let value = objective.evaluate(model.forward(modelInput(fromUnitImage: transformed, model.preprocessing), capture: objective.layers))
        let penalty = reg.penalty(image)
        lap("forward")
        ClampGradient.redirecting(step < settings.redirectSteps) { (penalty.map { add(value, scale($0, by: -1)) } ?? value).backward() }
        lap("backward")
        adam.update(param.variables, ascend: true)
        if reg.blurEvery > 0 && (step + 1) % reg.blurEvery == 0 && step + 1 < settings.steps { param.blur(sigma: reg.blurSigma) }
        history.append(value.item)
        penalties.append(penalty?.item ?? 0)
        lap("update")
        progress(step, value.item)
    }
    return RenderResult(image: GradMode.withoutGrad { param.image() }, history: history, penalties: penalties, phaseSeconds: phases)
}

/// What a rendered picture does to the model as it was saved: read back from disk (8 bits, no transforms).
public struct SavedImageMeasurement: Sendable {
    /// The objective's value on the saved image.
    public var value: Float
    public var top5: [ClassScore]
    /// Summed probability of `classes`, when asked.
    public var classProbability: Float?
    /// Mean |neighbour difference| of the saved image in [0, 1] (what total variation penalizes).
    public var totalVariation: Float
}

/// Re-reads the PNG at `url` and measures `objective` (and the probability of `classes`) on it.
public func measureSavedImage(_ model: any VisionModel, at url: URL, objective: Objective, classes: [Int]? = nil) throws -> SavedImageMeasurement {
    let rgb = Preprocess.compositeOnWhite(try ImageDecoder.decode(contentsOf: url))
    var capture = objective.layers
    let logits = model.spec.logits
    capture.insert(logits)
    let acts = GradMode.withoutGrad { model.forward(model.preprocessing.normalize(rgb), capture: capture) }
    let value = GradMode.withoutGrad { objective.evaluate(acts).item }
    let probability = classes.map { cls in
        let p = GradMode.withoutGrad { softmax(acts[logits]!) }
        return cls.map { p.data[$0] }.reduce(0, +)
    }
    let unitImage = Tensor(shape: [1, 3, rgb.height, rgb.width], data: (0..<3).flatMap { c in
        (0..<(rgb.width * rgb.height)).map { Float(rgb.pixels[$0 * 3 + c]) / 255 } })
    return SavedImageMeasurement(value: value, top5: model.topK(acts[logits]!, k: 5)[0], classProbability: probability,
                                 totalVariation: GradMode.withoutGrad { totalVariation(unitImage).item })
}
