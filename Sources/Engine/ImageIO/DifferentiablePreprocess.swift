import Foundation

extension Preprocess {
    /// `modelInput` as a differentiable op on a float image: x [1, 3, H, W] with values in 0…255 (the photo as the
    /// user has it) → the model's [1, 3, crop, crop] input. The same PIL bicubic weights (the 22-bit fixed-point
    /// values, as floats) and the same centre crop, but without PIL's rounding to 8 bits after each pass, so it
    /// is linear: the forward pass differs from the exact pipeline by under one 8-bit level, and attacks that
    /// optimize through it check their result with the exact pipeline. Only the pixels the crop depends on are
    /// computed.
    public static func differentiableModelInput(_ x: Tensor, resize: Int = 256, crop: Int = 224) -> Tensor {
        precondition(x.rank == 4 && x.shape[0] == 1 && x.shape[1] == 3, "differentiableModelInput wants [1, 3, H, W], got \(x.shape)")
        let h = x.shape[2], w = x.shape[3]
        let (rw, rh) = resizedSize(width: w, height: h, shorter: resize)
        precondition(rw >= crop && rh >= crop)
        let top = Int((Double(rh - crop) / 2).rounded(.toNearestOrEven)), left = Int((Double(rw - crop) / 2).rounded(.toNearestOrEven))
        let horizontal = SeparableTaps(inSize: w, outSize: rw, outputs: left..<(left + crop))
        let vertical = SeparableTaps(inSize: h, outSize: rh, outputs: top..<(top + crop))
        let rows = vertical.inputRange  // source rows the crop depends on
        var y = [Float](repeating: 0, count: 3 * crop * crop)
        var tmp = [Float](repeating: 0, count: rows.count * crop)
        for c in 0..<3 {
            x.data.withUnsafeBufferPointer { xs in
                for (k, r) in rows.enumerated() {
                    let row = xs.baseAddress! + (c * h + r) * w
                    for j in 0..<crop { tmp[k * crop + j] = horizontal.apply(j) { row[$0] } }
                }
            }
            for i in 0..<crop { for j in 0..<crop {
                y[(c * crop + i) * crop + j] = (vertical.apply(i) { tmp[($0 - rows.lowerBound) * crop + j] } - 127) / 128
            } }
        }
        let out = Tensor(shape: [1, 3, crop, crop], data: y)
        out.record(op: "differentiableModelInput", parents: [x]) { g in
            var dx = [Float](repeating: 0, count: x.count)
            var dtmp = [Float](repeating: 0, count: rows.count * crop)
            for c in 0..<3 {
                for k in 0..<dtmp.count { dtmp[k] = 0 }
                for i in 0..<crop { for j in 0..<crop {
                    let gi = g[(c * crop + i) * crop + j] / 128
                    vertical.scatter(i) { dtmp[($0 - rows.lowerBound) * crop + j] += gi * $1 }
                } }
                for (k, r) in rows.enumerated() { for j in 0..<crop {
                    let gt = dtmp[k * crop + j]
                    horizontal.scatter(j) { dx[(c * h + r) * w + $0] += gt * $1 }
                } }
            }
            x.accumulate(dx)
        }
        return out
    }

    /// PIL's bicubic taps for some outputs of one axis (identity when the size does not change, as PIL skips
    /// the pass), as float weights.
    struct SeparableTaps {
        let starts: [Int], weights: [[Float]]

        init(inSize: Int, outSize: Int, outputs: Range<Int>) {
            if inSize == outSize {
                starts = Array(outputs); weights = outputs.map { _ in [1] }
                return
            }
            let co = Coefficients(inSize: inSize, outSize: outSize)
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
