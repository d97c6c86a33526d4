import Engine

/// How the optimized variables become an RGB image in [0, 1]: `image()` is differentiable with respect to
/// `variables`, which the optimizer updates.
public protocol ImageParameterization: AnyObject {
    var variables: [Tensor] { get }
    /// [N, 3, H, W] in [0, 1].
    func image() -> Tensor
}

/// Lucid's colour decorrelation: the optimization runs in a decorrelated colour basis (the square root of
/// ImageNet's colour covariance, from lucid.optvis.param.color), so steps do not all push along the dominant
/// luminance direction. Columns normalized by the largest column norm, as Lucid does.
public enum ColorDecorrelation {
    static let sqrtCovariance: [[Float]] = [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]]

    /// Weight [3, 3, 1, 1] of the 1×1 conv rgb = C · t per pixel.
    public static let weight: Tensor = {
        let maxNorm = (0..<3).map { j in (0..<3).map { sqrtCovariance[$0][j] * sqrtCovariance[$0][j] }.reduce(0, +).squareRoot() }.max()!
        return Tensor(shape: [3, 3, 1, 1], data: sqrtCovariance.flatMap { $0.map { $0 / maxNorm } })
    }()

    public static func apply(_ t: Tensor) -> Tensor { conv2d(t, weight) }
}

/// Lucid's default: `fft_image` (spectrum scaled by 1/frequency, sd 0.01, divided by 4) then
/// `to_valid_rgb(decorrelate: true, sigmoid: true)`.
public final class FFTImage: ImageParameterization {
    public let batch, height, width: Int
    let basis: SpectralBasis
    let scale: Tensor
    /// [N, 2 (re, im), 3, H, W/2+1].
    public let spectrum: Tensor
    public let decorrelate: Bool
    public var variables: [Tensor] { [spectrum] }

    public init(batch: Int = 1, height: Int, width: Int, decorrelate: Bool = true, sd: Float = 0.01,
                decayPower: Double = 1, generator: inout SeededGenerator) {
        self.batch = batch; self.height = height; self.width = width; self.decorrelate = decorrelate
        basis = SpectralBasis(height: height, width: width)
        let plane = basis.frequencyScale(decayPower: decayPower)
        scale = Tensor(shape: [3, height, basis.spectrumWidth], data: Array([[Float]](repeating: plane, count: 3).joined()))
        let count = batch * 2 * 3 * height * basis.spectrumWidth
        spectrum = Tensor(shape: [batch, 2, 3, height, basis.spectrumWidth], data: generator.normal(count, sd: sd),
                          requiresGrad: true)
    }

    public func image() -> Tensor {
        let images = (0..<batch).map { b -> Tensor in
            let s = plane(spectrum, b)
            let raw = basis.inverse(real: multiply(plane(s, 0), scale), imaginary: multiply(plane(s, 1), scale))
            return Engine.scale(raw, by: 0.25).reshaped([1, 3, height, width])
        }
        let t = batch == 1 ? images[0] : stack(images.map { $0.reshaped([3, height, width]) })
        return sigmoid(decorrelate ? ColorDecorrelation.apply(t) : t)
    }
}

/// Plain pixels through a sigmoid (Lucid's `image(..., fft=False)`), optionally colour-decorrelated.
public final class PixelImage: ImageParameterization {
    public let pixels: Tensor
    public let decorrelate: Bool
    public var variables: [Tensor] { [pixels] }

    public init(batch: Int = 1, height: Int, width: Int, decorrelate: Bool = true, sd: Float = 0.01,
                generator: inout SeededGenerator) {
        self.decorrelate = decorrelate
        pixels = Tensor(shape: [batch, 3, height, width], data: generator.normal(batch * 3 * height * width, sd: sd),
                        requiresGrad: true)
    }

    public func image() -> Tensor { sigmoid(decorrelate ? ColorDecorrelation.apply(pixels) : pixels) }
}
