import Foundation

extension Preprocess {
    /// `modelInput` as a differentiable op on a float image: x [1, 3, H, W] with values in 0…255 (the photo as the
    /// user has it) → the model's [1, 3, crop, crop] input. The same PIL bicubic weights (the 22-bit fixed-point
    /// values, as floats) and the same centre crop, but without PIL's rounding to 8 bits after each pass, so it
    /// is linear: the forward pass differs from the exact pipeline by about one 8-bit level, and attacks that
    /// optimize through it check their result with the exact pipeline.
    public static func differentiableModelInput(_ x: Tensor, resize: Int = 256, crop: Int = 224) -> Tensor {
        precondition(x.rank == 4 && x.shape[0] == 1 && x.shape[1] == 3, "differentiableModelInput wants [1, 3, H, W], got \(x.shape)")
        let plan = ResizeCropPlan(width: x.shape[3], height: x.shape[2], resize: resize, crop: crop)
        let out = Tensor(shape: [1, 3, crop, crop], data: plan.apply(x.data))
        out.record(op: "differentiableModelInput", parents: [x]) { g in x.accumulate(plan.transpose(g)) }
        return out
    }

    /// RGB (already opaque) → model input, exactly as `modelInput`.
    public static func modelInput(rgb: RGBImage, resize: Int = 256, crop: Int = 224) -> Tensor {
        normalize(modelView(rgb, resize: resize, crop: crop))
    }

    /// What the model sees, as 8-bit RGB: shorter side to `resize` (PIL bicubic), centre crop `crop`.
    public static func modelView(_ rgb: RGBImage, resize: Int = 256, crop: Int = 224) -> RGBImage {
        let (w, h) = resizedSize(width: rgb.width, height: rgb.height, shorter: resize)
        return centerCrop(resizeBicubic(rgb, width: w, height: h), size: crop)
    }
}

/// The linear map from a planar [3, H, W] image in 0…255 to the normalized [3, crop, crop] model input (PIL
/// bicubic resize of the shorter side to `resize`, centre crop, (x − 127) / 128), and its transpose (how a
/// gradient on the model input reaches the photo's pixels). Only the pixels the crop depends on are touched.
public struct ResizeCropPlan: Sendable {
    public let width: Int, height: Int, crop: Int
    let horizontal: SeparableTaps, vertical: SeparableTaps
    /// Source rows the crop depends on.
    let rows: Range<Int>
    /// Output channel c reads input channel source[c], as x · scale[c] + shift[c].
    let source: [Int], scale: [Float], shift: [Float]

    /// `affine`: the model's normalization on 0…255 values (default: Lite's (x − 127) / 128).
    public init(width: Int, height: Int, resize: Int = 256, crop: Int = 224, filter: ResizeFilter = .bicubic, roundLongSide: Bool = true,
                squash: Bool = false,
                affine: (source: [Int], scale: [Float], shift: [Float]) = ([0, 1, 2], [1 / 128, 1 / 128, 1 / 128], [-127 / 128, -127 / 128, -127 / 128])) {
        let (rw, rh) = squash ? (crop, crop) : Preprocess.resizedSize(width: width, height: height, shorter: resize, round: roundLongSide)
        precondition(rw >= crop && rh >= crop, "resized image \(rw)x\(rh) is smaller than the crop \(crop)")
        let top = Int((Double(rh - crop) / 2).rounded(.toNearestOrEven)), left = Int((Double(rw - crop) / 2).rounded(.toNearestOrEven))
        self.width = width; self.height = height; self.crop = crop
        horizontal = SeparableTaps(inSize: width, outSize: rw, outputs: left..<(left + crop), filter: filter)
        vertical = SeparableTaps(inSize: height, outSize: rh, outputs: top..<(top + crop), filter: filter)
        rows = vertical.inputRange
        (source, scale, shift) = affine
    }

    /// The source rows and columns the crop reads; pixels outside them cannot change the model's input.
    public var readRows: Range<Int> { rows }
    public var readColumns: Range<Int> { horizontal.inputRange }

    public func apply(_ x: [Float]) -> [Float] {
        precondition(x.count == 3 * width * height)
        var y = [Float](repeating: 0, count: 3 * crop * crop)
        var tmp = [Float](repeating: 0, count: rows.count * crop)
        x.withUnsafeBufferPointer { xs in
            for c in 0..<3 {
                let src = source[c]
                for (k, r) in rows.enumerated() {
                    let row = xs.baseAddress! + (src * height + r) * width
                    for j in 0..<crop { tmp[k * crop + j] = horizontal.apply(j) { row[$0] } }
                }
                for i in 0..<crop { for j in 0..<crop {
                    y[(c * crop + i) * crop + j] = vertical.apply(i) { tmp[($0 - rows.lowerBound) * crop + j] } * scale[c] + shift[c]
                } }
            }
        }
        return y
    }

    /// Gradient on the [3, crop, crop] model input → gradient on the [3, H, W] pixels.
    public func transpose(_ g: [Float]) -> [Float] {
        precondition(g.count == 3 * crop * crop)
        var dx = [Float](repeating: 0, count: 3 * width * height)
        var dtmp = [Float](repeating: 0, count: rows.count * crop)
        for c in 0..<3 {
            let src = source[c]
            for k in 0..<dtmp.count { dtmp[k] = 0 }
            for i in 0..<crop { for j in 0..<crop {
                let gi = g[(c * crop + i) * crop + j] * scale[c]
                vertical.scatter(i) { dtmp[($0 - rows.lowerBound) * crop + j] += gi * $1 }
            } }
            for (k, r) in rows.enumerated() { for j in 0..<crop {
                let gt = dtmp[k * crop + j]
                horizontal.scatter(j) { dx[(src * height + r) * width + $0] += gt * $1 }
            } }
        }
        return dx
    }

    /// PIL's bicubic taps for some outputs of one axis (identity when the size does not change, as PIL skips
    /// the pass), as float weights.
    struct SeparableTaps: Sendable {
        let starts: [Int], weights: [[Float]]

        init(inSize: Int, outSize: Int, outputs: Range<Int>, filter: ResizeFilter) {
            if inSize == outSize {
                starts = Array(outputs); weights = outputs.map { _ in [1] }
                return
            }
            let co = Preprocess.Coefficients(inSize: inSize, outSize: outSize, filter: filter)
            let one = Float(1 << Preprocess.precisionBits)
            starts = outputs.map { co.bounds[2 * $0] }
            weights = outputs.map { o in (0..<co.bounds[2 * o + 1]).map { Float(co.weights[o * co.kernelSize + $0]) / one } }
        }

        /// The input indices any of these outputs reads.
        var inputRange: Range<Int> {
            var lo = Int.max, hi = Int.min
            for (s, w) in zip(starts, weights) { lo = min(lo, s); hi = max(hi, s + w.count) }
            return lo..<hi
        }

        @inline(__always) func apply(_ o: Int, _ value: (Int) -> Float) -> Float {
            var s: Float = 0
            for (t, wt) in weights[o].enumerated() { s += wt * value(starts[o] + t) }
            return s
        }

        @inline(__always) func scatter(_ o: Int, _ body: (Int, Float) -> Void) {
            for (t, wt) in weights[o].enumerated() { body(starts[o] + t, wt) }
        }
    }
}

/// y[:, c] = x[:, source[c]] · scale[c] + shift[c] on [N, 3, H, W]: a framework's input normalization (with the
/// channel swap Keras' caffe mode makes) as a differentiable op.
public func channelAffine(_ x: Tensor, source: [Int], scale: [Float], shift: [Float]) -> Tensor {
    precondition(x.rank == 4 && x.shape[1] == 3 && source.count == 3, "channelAffine wants [N, 3, H, W], got \(x.shape)")
    let n = x.shape[0], plane = x.shape[2] * x.shape[3]
    var y = [Float](repeating: 0, count: x.count)
    for b in 0..<n { for c in 0..<3 {
        let dst = (b * 3 + c) * plane, src = (b * 3 + source[c]) * plane
        for i in 0..<plane { y[dst + i] = x.data[src + i] * scale[c] + shift[c] }
    } }
    let out = Tensor(shape: x.shape, data: y)
    out.record(op: "channelAffine", parents: [x]) { g in
        var d = [Float](repeating: 0, count: x.count)
        for b in 0..<n { for c in 0..<3 {
            let dst = (b * 3 + c) * plane, src = (b * 3 + source[c]) * plane
            for i in 0..<plane { d[src + i] += g[dst + i] * scale[c] }
        } }
        x.accumulate(d)
    }
    return out
}
