import Foundation

/// The model's input pipeline, bit-exact with what the reference used (PIL + torchvision):
/// composite alpha on white → shorter side to 256 (PIL antialiased bicubic) → centre crop 224 → (x − 127) / 128.
public enum Preprocess {
    public static func modelInput(_ image: RGBAImage, resize: Int = 256, crop: Int = 224) -> Tensor {
        modelInput(rgb: compositeOnWhite(image), resize: resize, crop: crop)
    }

    /// The shorter side becomes `shorter`, the longer `round(shorter * long / short)` (half to even, as Python's
    /// round). The reference rounds here rather than truncating: chelsea.png (451×300) went to 385×256, and only
    /// that size reproduces its tensor bit for bit.
    /// `round: false` truncates instead, as torchvision's `Resize(int)` does.
    public static func resizedSize(width: Int, height: Int, shorter: Int, round: Bool = true) -> (width: Int, height: Int) {
        func scaled(_ long: Int, _ short: Int) -> Int {
            let exact = Double(shorter) * Double(long) / Double(short)
            return Int(round ? exact.rounded(.toNearestOrEven) : exact.rounded(.towardZero))
        }
        return width <= height ? (shorter, scaled(height, width)) : (scaled(width, height), shorter)
    }

    /// Over an opaque white background: c' = (c·a + 255·(255 − a)) / 255, rounded.
    public static func compositeOnWhite(_ image: RGBAImage) -> RGBImage {
        let n = image.width * image.height
        var out = [UInt8](repeating: 0, count: n * 3)
        image.pixels.withUnsafeBufferPointer { src in
            for i in 0..<n {
                let a = Int(src[i * 4 + 3])
                for c in 0..<3 {
                    let v = Int(src[i * 4 + c])
                    out[i * 3 + c] = a == 255 ? UInt8(v) : UInt8((v * a + 255 * (255 - a) + 127) / 255)
                }
            }
        }
        return RGBImage(width: image.width, height: image.height, pixels: out)
    }

    /// torchvision `CenterCrop`: top = round((h − size) / 2) with Python's round-half-to-even.
    public static func centerCrop(_ image: RGBImage, size: Int) -> RGBImage {
        precondition(image.width >= size && image.height >= size, "image \(image.width)x\(image.height) is smaller than the crop \(size)")
        let top = Int((Double(image.height - size) / 2).rounded(.toNearestOrEven))
        let left = Int((Double(image.width - size) / 2).rounded(.toNearestOrEven))
        var out = [UInt8](repeating: 0, count: size * size * 3)
        for y in 0..<size {
            let src = ((top + y) * image.width + left) * 3
            out.replaceSubrange((y * size * 3)..<((y + 1) * size * 3), with: image.pixels[src..<(src + size * 3)])
        }
        return RGBImage(width: size, height: size, pixels: out)
    }

    /// [1, 3, H, W] float32 with (x − 127) / 128.
    public static func normalize(_ image: RGBImage) -> Tensor {
        let plane = image.width * image.height
        var data = [Float](repeating: 0, count: 3 * plane)
        for i in 0..<plane { for c in 0..<3 { data[c * plane + i] = (Float(image.pixels[i * 3 + c]) - 127) / 128 } }
        return Tensor(shape: [1, 3, image.height, image.width], data: data)
    }

    /// PIL's `Image.resize(size, Image.BICUBIC)` for 8-bit RGB, reproduced exactly (Resample.c): separable
    /// bicubic (a = −0.5) whose support widens with the scale factor (antialiasing), weights normalized per
    /// output pixel and rounded to 22-bit fixed point, horizontal pass first into 8 bits, then vertical.
    public static func resizeBicubic(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        resize(image, width: width, height: height, filter: .bicubic)
    }

    /// PIL's `Image.resize` with its antialiased bicubic or bilinear filter (what torchvision's `Resize` calls on a
    /// PIL image), reproduced exactly.
    public static func resize(_ image: RGBImage, width: Int, height: Int, filter: ResizeFilter) -> RGBImage {
        let horizontal = Coefficients(inSize: image.width, outSize: width, filter: filter)
        let vertical = Coefficients(inSize: image.height, outSize: height, filter: filter)
        var current = image
        var rowOffset = 0
        if width != image.width {
            // Only the source rows the vertical pass will read.
            let first = vertical.bounds[0], last = vertical.bounds[2 * (height - 1)] + vertical.bounds[2 * (height - 1) + 1]
            current = pass(image, rows: first..<last, outWidth: width, coefficients: horizontal, horizontal: true)
            rowOffset = first
        }
        if height != image.height {
            current = pass(current, rows: 0..<height, outWidth: current.width, coefficients: vertical, horizontal: false,
                           rowOffset: width != image.width ? rowOffset : 0)
        }
        return current
    }

    static let precisionBits = 32 - 8 - 2

    struct Coefficients {
        let kernelSize: Int
        /// Per output pixel: first input index and tap count.
        var bounds: [Int] = []
        /// Fixed-point weights, kernelSize per output pixel.
        var weights: [Int32] = []

        init(inSize: Int, outSize: Int, filter: ResizeFilter = .bicubic) {
            let scale = Double(inSize) / Double(outSize)
            let filterScale = max(scale, 1)
            let support = filter.support * filterScale
            kernelSize = Int(support.rounded(.up)) * 2 + 1
            var k = [Double](repeating: 0, count: kernelSize)
            for xx in 0..<outSize {
                let center = (Double(xx) + 0.5) * scale
                let xmin = max(0, Int(center - support + 0.5))
                let xmax = min(inSize, Int(center + support + 0.5)) - xmin
                var total = 0.0
                for x in 0..<kernelSize { k[x] = 0 }
                for x in 0..<max(xmax, 0) {
                    k[x] = filter.weight((Double(x + xmin) - center + 0.5) / filterScale)
                    total += k[x]
                }
                if total != 0 { for x in 0..<max(xmax, 0) { k[x] /= total } }
                bounds += [xmin, max(xmax, 0)]
                let one = Double(1 << Preprocess.precisionBits)
                weights += k.map { Int32($0 < 0 ? -0.5 + $0 * one : 0.5 + $0 * one) }
            }
        }
    }

    /// One separable pass. Horizontal: out[y][x] from input row `y` (rows given in input coordinates).
    /// Vertical: out[y][x] from input rows bounds[y] - rowOffset ..< +count.
    private static func pass(_ src: RGBImage, rows: Range<Int>, outWidth: Int, coefficients co: Coefficients,
                             horizontal: Bool, rowOffset: Int = 0) -> RGBImage {
        let outHeight = rows.count
        var out = [UInt8](repeating: 0, count: outWidth * outHeight * 3)
        let half = 1 << (precisionBits - 1)
        src.pixels.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { o in
            co.weights.withUnsafeBufferPointer { kk in
                Parallel.forEachChunk(outHeight, grain: 16) { chunk in
                    for oy in chunk {
                        for ox in 0..<outWidth {
                            let i = horizontal ? ox : rows.lowerBound + oy
                            let start = co.bounds[2 * i], taps = co.bounds[2 * i + 1]
                            let k = kk.baseAddress! + i * co.kernelSize
                            var s0 = half, s1 = half, s2 = half
                            if horizontal {
                                let row = s.baseAddress! + ((rows.lowerBound + oy) * src.width + start) * 3
                                for t in 0..<taps {
                                    let w = Int(k[t])
                                    s0 += Int(row[t * 3]) * w; s1 += Int(row[t * 3 + 1]) * w; s2 += Int(row[t * 3 + 2]) * w
                                }
                            } else {
                                let col = s.baseAddress! + ((start - rowOffset) * src.width + ox) * 3
                                let stride = src.width * 3
                                for t in 0..<taps {
                                    let w = Int(k[t])
                                    let p = col + t * stride
                                    s0 += Int(p[0]) * w; s1 += Int(p[1]) * w; s2 += Int(p[2]) * w
                                }
                            }
                            let d = (oy * outWidth + ox) * 3
                            o[d] = clip8(s0); o[d + 1] = clip8(s1); o[d + 2] = clip8(s2)
                        }
                    }
                }
            }
        } }
        return RGBImage(width: outWidth, height: outHeight, pixels: out)
    }

    @inline(__always)
    private static func clip8(_ v: Int) -> UInt8 {
        let x = v >> precisionBits
        return x < 0 ? 0 : x > 255 ? 255 : UInt8(x)
    }
}

/// PIL's resampling filters (Resample.c): the kernel and its support at scale 1.
public enum ResizeFilter: String, Codable, Sendable, CaseIterable {
    case bicubic, bilinear

    var support: Double { self == .bicubic ? 2 : 1 }

    func weight(_ x: Double) -> Double {
        let x = abs(x)
        switch self {
        case .bilinear: return x < 1 ? 1 - x : 0
        case .bicubic:
            let a = -0.5
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        }
    }
}
