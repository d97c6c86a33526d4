import Engine
import Foundation

/// How the optimized variables become an RGB image in [0, 1]: `image()` is differentiable with respect to
/// `variables`, which the optimizer updates.
public protocol ImageParameterization: AnyObject {
    var variables: [Tensor] { get }
    /// [N, 3, H, W] in [0, 1].
    func image() -> Tensor
    /// Blurs the image (before the sigmoid) in place with a Gaussian of σ pixels — the "blur every N steps"
    /// regularizer, applied to the variables so the optimizer continues from the blurred image.
    func blur(sigma: Float)
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
    /// Lucid's 1/frequency scale times its 1/4, per half-spectrum entry [H, FW].
    let scale: [Float]
    /// [N, 2 (re, im), H, 3, W/2+1] (see `SpectralBasis.inverse` for why channels sit inside the rows).
    public let spectrum: Tensor
    public let decorrelate: Bool
    public var variables: [Tensor] { [spectrum] }

    public init(batch: Int = 1, height: Int, width: Int, decorrelate: Bool = true, sd: Float = 0.01,
                decayPower: Double = 1, generator: inout SeededGenerator) {
        self.batch = batch; self.height = height; self.width = width; self.decorrelate = decorrelate
        basis = SpectralBasis(height: height, width: width)
        scale = basis.frequencyScale(decayPower: decayPower).map { $0 * 0.25 }
        let count = batch * 2 * height * 3 * basis.spectrumWidth
        spectrum = Tensor(shape: [batch, 2, height, 3, basis.spectrumWidth], data: generator.normal(count, sd: sd),
                          requiresGrad: true)
    }

    public func image() -> Tensor {
        let t = basis.inverse(spectrum, scale: scale)
        return sigmoid(decorrelate ? ColorDecorrelation.apply(t) : t)
    }

    /// Blurring is a product in the frequency domain: every spectrum entry times the Gaussian's response.
    public func blur(sigma: Float) {
        let response = basis.gaussianResponse(sigma: Double(sigma)), fw = basis.spectrumWidth
        for i in 0..<spectrum.count { spectrum.data[i] *= response[(i / (3 * fw)) % height * fw + i % fw] }
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

    public func blur(sigma: Float) { pixels.data = gaussianBlur(pixels, sigma: sigma).data }

    /// Starts from a photo ([1, 3, H, W] in [0, 1]) instead of noise: the inverse of sigmoid (and of the colour
    /// basis), so `image()` returns the photo — for DeepDream on a picture.
    public init(photo: Tensor, decorrelate: Bool = true) {
        self.decorrelate = decorrelate
        var logits = photo.data.map { v -> Float in let p = min(max(v, 1e-3), 1 - 1e-3); return log(p / (1 - p)) }
        if decorrelate {
            let inverse = ColorDecorrelation.inverseMatrix, plane = photo.shape[2] * photo.shape[3]
            for b in 0..<photo.shape[0] { for i in 0..<plane {
                let base = b * 3 * plane + i
                let v = (0..<3).map { logits[base + $0 * plane] }
                for r in 0..<3 { logits[base + r * plane] = (0..<3).map { inverse[r][$0] * v[$0] }.reduce(0, +) }
            } }
        }
        pixels = Tensor(shape: photo.shape, data: logits, requiresGrad: true)
    }
}

extension ColorDecorrelation {
    /// Inverse of the normalized 3×3 colour matrix (for starting from a photo).
    static let inverseMatrix: [[Float]] = {
        let m = (0..<3).map { r in (0..<3).map { c in Double(weight.data[r * 3 + c]) } }
        let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
        var inv = [[Float]](repeating: [0, 0, 0], count: 3)
        for r in 0..<3 { for c in 0..<3 {
            let rows = [0, 1, 2].filter { $0 != c }, cols = [0, 1, 2].filter { $0 != r }
            let minor = m[rows[0]][cols[0]] * m[rows[1]][cols[1]] - m[rows[0]][cols[1]] * m[rows[1]][cols[0]]
            inv[r][c] = Float(((r + c) % 2 == 0 ? 1 : -1) * minor / det)
        } }
        return inv
    }()
}

/// Separable Gaussian blur of each [H, W] plane (edges clamped), no gradient: an in-place regularizer step.
func gaussianBlur(_ x: Tensor, sigma: Float) -> Tensor {
    let radius = max(1, Int((3 * sigma).rounded(.up)))
    var kernel = (-radius...radius).map { expf(-Float($0 * $0) / (2 * sigma * sigma)) }
    let total = kernel.reduce(0, +); kernel = kernel.map { $0 / total }
    let h = x.shape[x.rank - 2], w = x.shape[x.rank - 1], planes = x.count / (h * w)
    var tmp = x.data, out = x.data
    for p in 0..<planes { let base = p * h * w
        for r in 0..<h { for q in 0..<w {
            var acc: Float = 0
            for k in -radius...radius { acc += kernel[k + radius] * x.data[base + r * w + min(max(q + k, 0), w - 1)] }
            tmp[base + r * w + q] = acc
        } }
        for r in 0..<h { for q in 0..<w {
            var acc: Float = 0
            for k in -radius...radius { acc += kernel[k + radius] * tmp[base + min(max(r + k, 0), h - 1) * w + q] }
            out[base + r * w + q] = acc
        } }
    }
    return Tensor(shape: x.shape, data: out)
}
