@_exported import Engine
@_exported import Models
import Foundation

/// What is attacked: the user's photo at its own size, through the differentiable resize + crop (the default —
/// the output is the user's photo, and `vizlab classify` of the saved file is the check), or the model's
/// 224² centre crop itself (the output is that crop; `vizlab classify --as-is` feeds it unchanged).
public enum AttackRegion: String, Codable, Sendable, CaseIterable {
    case full, crop

    /// The exact model input of an 8-bit image of this region (the photo: resize + crop; the crop: as it is).
    public func modelInput(_ pixels: RGBImage, _ preprocessing: Preprocessing) -> Tensor {
        switch self {
        case .full: return preprocessing.input(rgb: pixels)
        case .crop: return preprocessing.normalize(pixels)
        }
    }
}

/// The model and the image under attack, and the one way the attack loop sees the model: the logits of an
/// 8-bit image through the exact input pipeline, plus gradients back to its pixels.
///
/// Gradients are taken at the 8-bit image the attack would save (straight through the rounding to 8 bits, and in
/// the full region through PIL's rounding between the resize passes, whose float twin is `ResizeCropPlan`).
/// So every gradient evaluation is also a check of the saved form: one forward+backward per step does both.
public final class AttackProblem {
    public let model: any VisionModel
    public let region: AttackRegion
    /// The opaque 8-bit pixels the attack starts from and is measured against.
    public let original: RGBImage
    /// `original` as planar [3, H, W] floats in 0…255 (the attack's working layout).
    public let originalPlanar: [Float]
    let plan: ResizeCropPlan?
    /// Forward+backward passes (each image in a batch counts).
    public private(set) var gradientEvaluations = 0
    public private(set) var forwardEvaluations = 0

    public init(model: any VisionModel, image: RGBAImage, region: AttackRegion) {
        self.model = model
        self.region = region
        let rgb = Preprocess.compositeOnWhite(image)
        switch region {
        case .full:
            original = rgb
            plan = model.preprocessing.plan(width: rgb.width, height: rgb.height)
        case .crop:
            original = model.preprocessing.view(rgb)
            plan = nil
        }
        originalPlanar = Pixels.planar(original)
    }

    /// Whether each planar value can change the model's input (the full region reads only the rows and columns
    /// around the centre crop). Random starts leave the rest alone: noise there could never be undone.
    public lazy var isRead: [Bool] = {
        guard let plan else { return [Bool](repeating: true, count: count) }
        var mask = [Bool](repeating: false, count: count)
        for c in 0..<3 { for y in plan.readRows { for x in plan.readColumns { mask[(c * height + y) * width + x] = true } } }
        return mask
    }()

    public var width: Int { original.width }
    public var height: Int { original.height }
    /// Values in the image (3 · H · W).
    public var count: Int { originalPlanar.count }

    /// The exact model input of an 8-bit image in this region.
    public func modelInput(_ pixels: RGBImage) -> Tensor { region.modelInput(pixels, model.preprocessing) }

    /// Logits of an 8-bit image, no gradient.
    public func logits(_ pixels: RGBImage) -> [Float] {
        forwardEvaluations += 1
        return GradMode.withoutGrad { model(modelInput(pixels)) }.data
    }

    /// Logits of `pixels` and, for each seed the closure returns (seeds are chosen after the forward pass, from
    /// the logits), the gradient of `Σ seed · logits` with respect to the planar pixels. `batch` is how many seeds
    /// the closure will return (the image is evaluated as a batch of that many copies).
    public func evaluate(_ pixels: RGBImage, batch: Int = 1,
                         seeds: ([Float]) -> [[Float]]) -> (logits: [Float], gradients: [[Float]]) {
        let single = modelInput(pixels)
        let plane = single.count
        var data = [Float](repeating: 0, count: batch * plane)
        for b in 0..<batch { data.replaceSubrange((b * plane)..<((b + 1) * plane), with: single.data) }
        let input = Tensor(shape: [batch, 3, model.inputSize, model.inputSize], data: data, requiresGrad: true)
        let logits = model(input)
        gradientEvaluations += batch
        let classes = logits.shape[1]
        let first = Array(logits.data[0..<classes])
        let rows = seeds(first)
        precondition(rows.count == batch && rows.allSatisfy { $0.count == classes }, "evaluate: \(batch) seeds of \(classes) expected")
        logits.backward(seed: rows.flatMap { $0 })
        let g = input.grad!
        let gradients = (0..<batch).map { b -> [Float] in
            let slice = Array(g[(b * plane)..<((b + 1) * plane)])
            if let plan { return plan.transpose(slice) }
            return cropGradient(slice)
        }
        logits.releaseGraph()
        return (first, gradients)
    }
}

extension AttackProblem {
    /// Gradient on the normalized crop → gradient on its 0…255 pixels (the normalization's transpose).
    func cropGradient(_ g: [Float]) -> [Float] {
        let (source, scale, _) = model.preprocessing.affine
        let plane = g.count / 3
        var out = [Float](repeating: 0, count: g.count)
        for c in 0..<3 { for i in 0..<plane { out[source[c] * plane + i] += g[c * plane + i] * scale[c] } }
        return out
    }
}

/// Conversions between the interleaved 8-bit layout images use and the planar float layout attacks use.
public enum Pixels {
    public static func planar(_ image: RGBImage) -> [Float] {
        let n = image.width * image.height
        var out = [Float](repeating: 0, count: 3 * n)
        image.pixels.withUnsafeBufferPointer { p in
            for i in 0..<n { for c in 0..<3 { out[c * n + i] = Float(p[i * 3 + c]) } }
        }
        return out
    }

    /// Planar values that are already whole numbers in 0…255 → an image.
    public static func image(_ planar: [Float], width: Int, height: Int) -> RGBImage {
        let n = width * height
        var px = [UInt8](repeating: 0, count: 3 * n)
        for i in 0..<n { for c in 0..<3 { px[i * 3 + c] = UInt8(max(0, min(255, planar[c * n + i].rounded()))) } }
        return RGBImage(width: width, height: height, pixels: px)
    }
}
