import Engine
import Foundation

/// Constant padding of the two spatial axes: [N, C, H, W] -> [N, C, H+2p, W+2p]. Backward crops the gradient.
public func pad(_ x: Tensor, _ p: Int, value: Float) -> Tensor {
    let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3], ho = h + 2 * p, wo = w + 2 * p
    var y = [Float](repeating: value, count: n * c * ho * wo)
    for plane in 0..<(n * c) { for r in 0..<h { for q in 0..<w {
        y[(plane * ho + r + p) * wo + q + p] = x.data[(plane * h + r) * w + q]
    } } }
    let out = Tensor(shape: [n, c, ho, wo], data: y)
    out.record(op: "pad", parents: [x]) { g in
        var dx = [Float](repeating: 0, count: x.count)
        for plane in 0..<(n * c) { for r in 0..<h { for q in 0..<w {
            dx[(plane * h + r) * w + q] = g[(plane * ho + r + p) * wo + q + p]
        } } }
        x.accumulate(dx)
    }
    return out
}

/// The window [top, top+height) × [left, left+width) of the spatial axes. Backward scatters into zeros.
public func crop(_ x: Tensor, top: Int, left: Int, height: Int, width: Int) -> Tensor {
    let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    precondition(top >= 0 && left >= 0 && top + height <= h && left + width <= w, "crop window outside \(x.shape)")
    var y = [Float](repeating: 0, count: n * c * height * width)
    for plane in 0..<(n * c) { for r in 0..<height { for q in 0..<width {
        y[(plane * height + r) * width + q] = x.data[(plane * h + r + top) * w + q + left]
    } } }
    let out = Tensor(shape: [n, c, height, width], data: y)
    out.record(op: "crop", parents: [x]) { g in
        var dx = [Float](repeating: 0, count: x.count)
        for plane in 0..<(n * c) { for r in 0..<height { for q in 0..<width {
            dx[(plane * h + r + top) * w + q + left] = g[(plane * height + r) * width + q]
        } } }
        x.accumulate(dx)
    }
    return out
}

/// Bilinear resampling through an affine map about the image centre: output pixel (y, x) of an
/// outHeight × outWidth image reads the input at the point that a rotation by `angle` (radians) and a zoom by
/// `scale` send it to. Samples outside the input read 0 (as TensorFlow's rotate fills). The backward pass
/// spreads each output gradient over the same four input pixels with the same weights.
public func affineResample(_ x: Tensor, scale s: Double, angle: Double, outHeight: Int, outWidth: Int) -> Tensor {
    let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    let cy = Double(h - 1) / 2, cx = Double(w - 1) / 2, oy = Double(outHeight - 1) / 2, ox = Double(outWidth - 1) / 2
    let cosA = angle == 0 ? 1 : cos(angle), sinA = angle == 0 ? 0 : sin(angle)  // exact identity at 0
    // Per output pixel: the four input indices (or -1) and their weights.
    var index = [Int32](repeating: -1, count: outHeight * outWidth * 4)
    var weight = [Float](repeating: 0, count: outHeight * outWidth * 4)
    for r in 0..<outHeight { for q in 0..<outWidth {
        // Inverse map: undo the zoom, then rotate back.
        let dy = (Double(r) - oy) / s, dx = (Double(q) - ox) / s
        let sy = cy + cosA * dy + sinA * dx, sx = cx - sinA * dy + cosA * dx
        let y0 = Int(sy.rounded(.down)), x0 = Int(sx.rounded(.down))
        let fy = sy - Double(y0), fx = sx - Double(x0)
        let o = (r * outWidth + q) * 4
        for (k, (yy, xx, wgt)) in [(y0, x0, (1 - fy) * (1 - fx)), (y0, x0 + 1, (1 - fy) * fx),
                                   (y0 + 1, x0, fy * (1 - fx)), (y0 + 1, x0 + 1, fy * fx)].enumerated()
        where yy >= 0 && yy < h && xx >= 0 && xx < w {
            index[o + k] = Int32(yy * w + xx)
            weight[o + k] = Float(wgt)
        }
    } }
    let outPlane = outHeight * outWidth, inPlane = h * w
    var y = [Float](repeating: 0, count: n * c * outPlane)
    for plane in 0..<(n * c) {
        let src = plane * inPlane, dst = plane * outPlane
        for p in 0..<outPlane {
            var acc: Float = 0
            for k in 0..<4 where index[p * 4 + k] >= 0 { acc += weight[p * 4 + k] * x.data[src + Int(index[p * 4 + k])] }
            y[dst + p] = acc
        }
    }
    let out = Tensor(shape: [n, c, outHeight, outWidth], data: y)
    out.record(op: "affineResample", parents: [x]) { g in
        var dx = [Float](repeating: 0, count: x.count)
        for plane in 0..<(n * c) {
            let src = plane * inPlane, dst = plane * outPlane
            for p in 0..<outPlane {
                for k in 0..<4 where index[p * 4 + k] >= 0 { dx[src + Int(index[p * 4 + k])] += weight[p * 4 + k] * g[dst + p] }
            }
        }
        x.accumulate(dx)
    }
    return out
}
