import Engine

/// How a photo becomes the model's input, as the model's framework does it: resize + centre crop (or a squash to
/// the input size), then one of the frameworks' normalizations. Each step also exists as a differentiable op
/// (`differentiableInput`), so attacks and renders never hard-code a normalization.
public struct Preprocessing: Codable, Sendable, Equatable {
    /// The frameworks' normalizations (`--preprocess`).
    public enum Mode: String, Codable, Sendable, CaseIterable {
        /// EfficientNet-Lite: (x − 127) / 128.
        case lite
        /// torchvision: x / 255, then ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).
        case torch
        /// Keras `caffe` (VGG, ResNet50): RGB → BGR, minus (103.939, 116.779, 123.68).
        case caffe
        /// Keras `tf` (MobileNetV2): x / 127.5 − 1.
        case tf
    }

    public var mode: Mode

    /// torchvision's ImageNet statistics (RGB, on 0…1) and Keras caffe's per-channel means (BGR, on 0…255).
    static let torchMean: [Float] = [0.485, 0.456, 0.406], torchStd: [Float] = [0.229, 0.224, 0.225]
    static let caffeMean: [Float] = [103.939, 116.779, 123.68]

    /// Shorter side after resizing, then a centre crop to `crop` (`resize == crop` with `squash`: straight to crop²).
    public var resize: Int
    public var crop: Int
    public var filter: ResizeFilter
    /// How the longer side is rounded: torchvision truncates, the Lite reference rounds half to even.
    public var roundLongSide: Bool
    /// Resize straight to crop × crop, ignoring the aspect ratio (Keras' `load_img(target_size=)`).
    public var squash: Bool

    public init(mode: Mode, resize: Int, crop: Int, filter: ResizeFilter, roundLongSide: Bool, squash: Bool = false) {
        self.mode = mode; self.resize = resize; self.crop = crop; self.filter = filter
        self.roundLongSide = roundLongSide; self.squash = squash
    }

    /// The Lite reference: PIL bicubic to round(crop / 0.875), centre crop, (x − 127) / 128.
    public static func lite(crop: Int) -> Preprocessing {
        Preprocessing(mode: .lite, resize: Int((Double(crop) / 0.875).rounded()), crop: crop, filter: .bicubic, roundLongSide: true)
    }

    /// torchvision's ImageNet transforms: Resize(256) bilinear, CenterCrop(224), Normalize.
    public static let torchvision = Preprocessing(mode: .torch, resize: 256, crop: 224, filter: .bilinear, roundLongSide: false)

    /// Keras' `load_img(target_size=(224, 224))` (a squash; bilinear here, where Keras' default is nearest) and
    /// `preprocess_input` of the given mode.
    public static func keras(_ mode: Mode, size: Int = 224) -> Preprocessing {
        Preprocessing(mode: mode, resize: size, crop: size, filter: .bilinear, roundLongSide: false, squash: true)
    }

    /// The same resize and crop with another normalization (`--preprocess`).
    public func with(mode: Mode) -> Preprocessing { var p = self; p.mode = mode; return p }

    /// Input channel each output channel reads (BGR for caffe), and y = x · scale + shift on 0…255 values.
    public var affine: (source: [Int], scale: [Float], shift: [Float]) {
        switch mode {
        case .lite: return ([0, 1, 2], [1 / 128, 1 / 128, 1 / 128], [-127 / 128, -127 / 128, -127 / 128])
        case .tf: return ([0, 1, 2], [1 / 127.5, 1 / 127.5, 1 / 127.5], [-1, -1, -1])
        case .caffe: return ([2, 1, 0], [1, 1, 1], Self.caffeMean.map { -$0 })
        case .torch: return ([0, 1, 2], Self.torchStd.map { 1 / (255 * $0) }, zip(Self.torchMean, Self.torchStd).map { -$0 / $1 })
        }
    }

    /// One 8-bit value of channel `c` (after any channel swap), computed the way the framework computes it.
    @inline(__always)
    func normalize(_ v: Float, channel c: Int) -> Float {
        switch mode {
        case .lite: return (v - 127) / 128
        case .tf: return v / 127.5 - 1
        case .caffe: return v - Self.caffeMean[c]
        case .torch: return (v / 255 - Self.torchMean[c]) / Self.torchStd[c]
        }
    }

    /// [1, 3, H, W] model input of an opaque 8-bit image, exactly as the framework computes it.
    public func normalize(_ image: RGBImage) -> Tensor {
        let plane = image.width * image.height, source = affine.source
        var data = [Float](repeating: 0, count: 3 * plane)
        image.pixels.withUnsafeBufferPointer { px in
            for c in 0..<3 { for i in 0..<plane { data[c * plane + i] = normalize(Float(px[i * 3 + source[c]]), channel: c) } }
        }
        return Tensor(shape: [1, 3, image.height, image.width], data: data)
    }

    /// Planar [3, H, W] model input of interleaved RGB floats on 0…255 (an augmented view): the same formula as
    /// `normalize(_:)` per value.
    public func normalize(interleaved px: [Float], width: Int, height: Int) -> [Float] {
        let plane = width * height, source = affine.source
        precondition(px.count == 3 * plane, "normalize: \(px.count) values for \(width)×\(height) RGB")
        var data = [Float](repeating: 0, count: 3 * plane)
        for c in 0..<3 { for i in 0..<plane { data[c * plane + i] = normalize(px[i * 3 + source[c]], channel: c) } }
        return data
    }

    /// The same framework's preprocessing for a `size`² input (the resize keeps its ratio to the crop).
    public func resized(to size: Int) -> Preprocessing {
        var p = self
        p.resize = squash ? size : Int((Double(size) * Double(resize) / Double(crop)).rounded(.toNearestOrEven))
        p.crop = size
        return p
    }

    /// What the model sees of a photo, as 8-bit RGB (resized and cropped).
    public func view(_ rgb: RGBImage) -> RGBImage {
        if squash { return Preprocess.resize(rgb, width: crop, height: crop, filter: filter) }
        let (w, h) = Preprocess.resizedSize(width: rgb.width, height: rgb.height, shorter: resize, round: roundLongSide)
        return Preprocess.centerCrop(Preprocess.resize(rgb, width: w, height: h, filter: filter), size: crop)
    }

    /// The model input of a decoded photo (alpha composited on white).
    public func input(_ image: RGBAImage) -> Tensor { input(rgb: Preprocess.compositeOnWhite(image)) }
    public func input(rgb: RGBImage) -> Tensor { normalize(view(rgb)) }

    /// The normalization alone as a differentiable op on [N, 3, H, W] values in 0…255.
    public func differentiableNormalize(_ x: Tensor) -> Tensor {
        let (source, scale, shift) = affine
        return channelAffine(x, source: source, scale: scale, shift: shift)
    }

    /// Resize + crop + normalization of a [1, 3, H, W] photo in 0…255 as one linear differentiable op (PIL's taps
    /// as floats, without its rounding between passes: within about one 8-bit level of `input`).
    public func plan(width: Int, height: Int) -> ResizeCropPlan {
        ResizeCropPlan(width: width, height: height, resize: resize, crop: crop, filter: filter, roundLongSide: roundLongSide,
                       squash: squash, affine: affine)
    }

    public var description: String {
        let norm: String
        switch mode {
        case .lite: norm = "(x − 127) / 128"
        case .torch: norm = "x / 255, ImageNet mean/std"
        case .caffe: norm = "BGR, minus 103.939/116.779/123.68"
        case .tf: norm = "x / 127.5 − 1"
        }
        let size = squash ? "squash to \(crop)²" : "shorter side \(resize), centre crop \(crop)"
        return "\(mode.rawValue): \(size) (\(filter.rawValue)), \(norm)"
    }
}
