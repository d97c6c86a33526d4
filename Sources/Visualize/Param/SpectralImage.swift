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

    /// Real images [N, C, H, W] from half spectra [N, 2 (re, im), H, C, FW], each entry first multiplied by
    /// `scale` ([H, FW], shared by re/im and channels; nil = 1).
    ///
    /// The layout puts the channels inside each spectrum row, so the height pass is one product per part for all
    /// channels (C_h · X with X seen as [H, C·FW]) and the width pass one for all rows and channels
    /// (Z seen as [H·C, FW] times the width matrices): six large sgemms per image instead of eighteen small ones.
    public func inverse(_ spectrum: Tensor, scale: [Float]? = nil) -> Tensor {
        precondition(spectrum.rank == 5 && spectrum.shape[1] == 2 && spectrum.shape[2] == height && spectrum.shape[4] == spectrumWidth,
                     "spectrum must be [N, 2, \(height), C, \(spectrumWidth)], got \(spectrum.shape)")
        let n = spectrum.shape[0], c = spectrum.shape[3], h = height, w = width, fw = spectrumWidth
        let part = h * c * fw, perImage = 2 * part, out = c * h * w
        precondition(scale == nil || scale!.count == h * fw)
        // Scaled spectrum (kept for nothing: the backward pass needs only the scale).
        var scaled = spectrum.data
        if let s = scale {
            scaled.withUnsafeMutableBufferPointer { x in
                for i in 0..<x.count { x[i] *= s[(i / (c * fw)) % h * fw + i % fw] }
            }
        }
        var y = [Float](repeating: 0, count: n * out)
        var zr = [Float](repeating: 0, count: part), zi = zr, rows = [Float](repeating: 0, count: h * c * w)
        scaled.withUnsafeBufferPointer { x in
            for b in 0..<n {
                let xr = x.baseAddress! + b * perImage, xi = xr + part
                heightPass(real: xr, imaginary: xi, zr: &zr, zi: &zi, channels: c)
                // x' [H·C, W] = Zr · C_wᵀ − Zi · S_wᵀ
                rows.withUnsafeMutableBufferPointer { r in
                    parallelGemm(transB: true, m: h * c, n: w, k: fw, a: zr, lda: fw, b: cosW.data, ldb: fw, c: r.baseAddress!, ldc: w)
                    parallelGemm(transB: true, m: h * c, n: w, k: fw, alpha: -1, a: zi, lda: fw, b: sinW.data, ldb: fw,
                                 beta: 1, c: r.baseAddress!, ldc: w)
                }
                // [H, C, W] → [C, H, W]
                for row in 0..<h { for ch in 0..<c {
                    y.withUnsafeMutableBufferPointer { yp in
                        (yp.baseAddress! + b * out + (ch * h + row) * w).update(from: rows.withUnsafeBufferPointer { $0.baseAddress! } + (row * c + ch) * w, count: w)
                    }
                } }
            }
        }
        let result = Tensor(shape: [n, c, h, w], data: y)
        result.record(op: "inverseRFFT2", parents: [spectrum]) { [self] g in
            var dx = [Float](repeating: 0, count: spectrum.count)
            var gRows = [Float](repeating: 0, count: h * c * w), dzr = [Float](repeating: 0, count: part), dzi = dzr
            for b in 0..<n {
                for row in 0..<h { for ch in 0..<c { for q in 0..<w { gRows[(row * c + ch) * w + q] = g[b * out + (ch * h + row) * w + q] } } }
                // dZr = g' · C_w, dZi = −g' · S_w
                parallelGemm(m: h * c, n: fw, k: w, a: gRows, lda: w, b: cosW.data, ldb: fw, c: &dzr, ldc: fw)
                parallelGemm(m: h * c, n: fw, k: w, alpha: -1, a: gRows, lda: w, b: sinW.data, ldb: fw, c: &dzi, ldc: fw)
                // dXr = C_hᵀ dZr + S_hᵀ dZi, dXi = −S_hᵀ dZr + C_hᵀ dZi
                dx.withUnsafeMutableBufferPointer { d in
                    let dr = d.baseAddress! + b * perImage, di = dr + part
                    parallelGemm(transA: true, m: h, n: c * fw, k: h, a: cosH.data, lda: h, b: dzr, ldb: c * fw, c: dr, ldc: c * fw)
                    parallelGemm(transA: true, m: h, n: c * fw, k: h, a: sinH.data, lda: h, b: dzi, ldb: c * fw, beta: 1, c: dr, ldc: c * fw)
                    parallelGemm(transA: true, m: h, n: c * fw, k: h, alpha: -1, a: sinH.data, lda: h, b: dzr, ldb: c * fw, c: di, ldc: c * fw)
                    parallelGemm(transA: true, m: h, n: c * fw, k: h, a: cosH.data, lda: h, b: dzi, ldb: c * fw, beta: 1, c: di, ldc: c * fw)
                }
            }
            if let s = scale {
                dx.withUnsafeMutableBufferPointer { d in for i in 0..<d.count { d[i] *= s[(i / (c * fw)) % h * fw + i % fw] } }
            }
            spectrum.accumulate(dx)
        }
        return result
    }

    /// Z = (C_h + i S_h) · (Xr + i Xi) with X seen as [H, C·FW].
    private func heightPass(real xr: UnsafePointer<Float>, imaginary xi: UnsafePointer<Float>, zr: inout [Float], zi: inout [Float], channels c: Int) {
        let h = height, cols = c * spectrumWidth
        parallelGemm(m: h, n: cols, k: h, a: cosH.data, lda: h, b: xr, ldb: cols, c: &zr, ldc: cols)
        parallelGemm(m: h, n: cols, k: h, alpha: -1, a: sinH.data, lda: h, b: xi, ldb: cols, beta: 1, c: &zr, ldc: cols)
        parallelGemm(m: h, n: cols, k: h, a: sinH.data, lda: h, b: xr, ldb: cols, c: &zi, ldc: cols)
        parallelGemm(m: h, n: cols, k: h, a: cosH.data, lda: h, b: xi, ldb: cols, beta: 1, c: &zi, ldc: cols)
    }
}

