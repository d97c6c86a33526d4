import Engine
import Foundation

/// Lucid's default image parameterization: an image described by its 2-D Fourier spectrum, scaled by 1/frequency
/// so every frequency band starts out equally important (gradient steps no longer favour high-frequency noise).
///
/// The inverse real FFT is written as products with precomputed cosine/sine matrices (sgemm through the
/// `linear` op), which handles any size (224 = 2⁵·7 has no power-of-two FFT) and makes the backward pass the
/// transposed products for free. Matches numpy's `irfft2`: the imaginary parts of the DC and Nyquist columns are
/// ignored.
public struct SpectralBasis: Sendable {
    public let height, width: Int
    /// Columns of the half spectrum: width / 2 + 1.
    public var spectrumWidth: Int { width / 2 + 1 }
    /// [H, H]: cos / sin(2π · fy · y / H) / H — the inverse transform along the height.
    let cosH, sinH: Tensor
    /// [W, FW]: a_k · cos / sin(2π k n / W) / W, a_k = 1 for DC and Nyquist, 2 otherwise (Hermitian symmetry).
    let cosW, sinW: Tensor

    public init(height: Int, width: Int) {
        self.height = height; self.width = width
        let fw = width / 2 + 1
        var ch = [Float](), sh = [Float]()
        for y in 0..<height { for f in 0..<height {
            let a = 2 * Double.pi * Double(f * y % height) / Double(height)
            ch.append(Float(cos(a) / Double(height))); sh.append(Float(sin(a) / Double(height)))
        } }
        var cw = [Float](), sw = [Float]()
        for n in 0..<width { for k in 0..<fw {
            let weight = (k == 0 || (width % 2 == 0 && k == width / 2)) ? 1.0 : 2.0
            let a = 2 * Double.pi * Double(k * n % width) / Double(width)
            cw.append(Float(weight * cos(a) / Double(width))); sw.append(Float(weight * sin(a) / Double(width)))
        } }
        cosH = Tensor(shape: [height, height], data: ch); sinH = Tensor(shape: [height, height], data: sh)
        cosW = Tensor(shape: [width, fw], data: cw); sinW = Tensor(shape: [width, fw], data: sw)
    }

    /// Lucid's spectrum scale: 1 / max(|f|, 1 / max(H, W))^decay · √(H·W), per half-spectrum entry [H, FW].
    public func frequencyScale(decayPower: Double = 1) -> [Float] {
        let fw = spectrumWidth
        var out = [Float]()
        for fy in 0..<height {
            let ny = Double(fy <= (height - 1) / 2 ? fy : fy - height) / Double(height)   // numpy fftfreq
            for fx in 0..<fw {
                let nx = Double(fx) / Double(width)
                let f = max((nx * nx + ny * ny).squareRoot(), 1 / Double(max(height, width)))
                out.append(Float(pow(f, -decayPower) * Double(height * width).squareRoot()))
            }
        }
        return out
    }

    /// The frequency response of a Gaussian blur of σ pixels, exp(−2π²σ²|f|²), per half-spectrum entry [H, FW].
    public func gaussianResponse(sigma: Double) -> [Float] {
        var out = [Float]()
        for fy in 0..<height {
            let ny = Double(fy <= (height - 1) / 2 ? fy : fy - height) / Double(height)
            for fx in 0..<spectrumWidth {
                let nx = Double(fx) / Double(width)
                out.append(Float(exp(-2 * Double.pi * Double.pi * sigma * sigma * (nx * nx + ny * ny))))
            }
        }
        return out
    }

    /// Real image [C, H, W] from a spectrum given as real and imaginary parts, each [C, H, FW].
    public func inverse(real: Tensor, imaginary: Tensor) -> Tensor {
        let c = real.shape[0], fw = spectrumWidth
        precondition(real.shape == [c, height, fw] && imaginary.shape == real.shape,
                     "spectrum must be [C, \(height), \(fw)], got \(real.shape) and \(imaginary.shape)")
        var planes: [Tensor] = []
        for ch in 0..<c {
            let xr = plane(real, ch), xi = plane(imaginary, ch)                    // [H, FW]
            // Along the height (complex inverse DFT): Z = (C_h + i S_h) · (Xr + i Xi).
            let zr = add(matmul(cosH, xr), scale(matmul(sinH, xi), by: -1))
            let zi = add(matmul(sinH, xr), matmul(cosH, xi))
            // Along the width (inverse real DFT): x = Zr · C_wᵀ − Zi · S_wᵀ.
            planes.append(add(linear(zr, cosW), scale(linear(zi, sinW), by: -1)))  // [H, W]
        }
        return stack(planes)
    }
}

