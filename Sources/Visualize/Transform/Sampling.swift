import Engine
import Foundation

/// Constant padding of the two spatial axes: [N, C, H, W] -> [N, C, H+2p, W+2p]. Backward crops the gradient.
public func pad(_ x: Tensor, _ p: Int, value: Float) -> Tensor {
    let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3], ho = h + 2 * p, wo = w + 2 * p
    var y = [Float](repeating: value, count: n * c * ho * wo)
    copyWindow(from: x.data, planes: n * c, srcHeight: h, srcWidth: w, srcTop: 0, srcLeft: 0,
               to: &y, dstHeight: ho, dstWidth: wo, dstTop: p, dstLeft: p, rows: h, cols: w)
    let out = Tensor(shape: [n, c, ho, wo], data: y)
    out.record(op: "pad", parents: [x]) { g in
        var dx = [Float](repeating: 0, count: x.count)
        copyWindow(from: g, planes: n * c, srcHeight: ho, srcWidth: wo, srcTop: p, srcLeft: p,
                   to: &dx, dstHeight: h, dstWidth: w, dstTop: 0, dstLeft: 0, rows: h, cols: w)
        x.accumulate(dx)
    }
    return out
}

/// The window [top, top+height) × [left, left+width) of the spatial axes. Backward scatters into zeros.
public func crop(_ x: Tensor, top: Int, left: Int, height: Int, width: Int) -> Tensor {
    let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    precondition(top >= 0 && left >= 0 && top + height <= h && left + width <= w, "crop window outside \(x.shape)")
    var y = [Float](repeating: 0, count: n * c * height * width)
    copyWindow(from: x.data, planes: n * c, srcHeight: h, srcWidth: w, srcTop: top, srcLeft: left,
               to: &y, dstHeight: height, dstWidth: width, dstTop: 0, dstLeft: 0, rows: height, cols: width)
    let out = Tensor(shape: [n, c, height, width], data: y)
    out.record(op: "crop", parents: [x]) { g in
        var dx = [Float](repeating: 0, count: x.count)
        copyWindow(from: g, planes: n * c, srcHeight: height, srcWidth: width, srcTop: 0, srcLeft: 0,
                   to: &dx, dstHeight: h, dstWidth: w, dstTop: top, dstLeft: left, rows: height, cols: width)
        x.accumulate(dx)
    }
    return out
}

/// Copies a rows × cols window of every plane from one layout to another (row by row, memcpy-sized).
private func copyWindow(from src: [Float], planes: Int, srcHeight: Int, srcWidth: Int, srcTop: Int, srcLeft: Int,
                        to dst: inout [Float], dstHeight: Int, dstWidth: Int, dstTop: Int, dstLeft: Int, rows: Int, cols: Int) {
    src.withUnsafeBufferPointer { s in dst.withUnsafeMutableBufferPointer { d in
        for plane in 0..<planes { for r in 0..<rows {
            let from = (plane * srcHeight + srcTop + r) * srcWidth + srcLeft, to = (plane * dstHeight + dstTop + r) * dstWidth + dstLeft
            (d.baseAddress! + to).update(from: s.baseAddress! + from, count: cols)
        } }
    } }
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
        // The four neighbours (y0, x0), (y0, x0+1), (y0+1, x0), (y0+1, x0+1); outside the input they stay -1.
        for k in 0..<4 {
            let yy = y0 + k / 2, xx = x0 + k % 2
            guard yy >= 0 && yy < h && xx >= 0 && xx < w else { continue }
            index[o + k] = Int32(yy * w + xx)
            weight[o + k] = Float((k / 2 == 0 ? 1 - fy : fy) * (k % 2 == 0 ? 1 - fx : fx))
        }
    } }
    let outPlane = outHeight * outWidth, inPlane = h * w
    var y = [Float](repeating: 0, count: n * c * outPlane)
    x.data.withUnsafeBufferPointer { xs in y.withUnsafeMutableBufferPointer { ys in
        for plane in 0..<(n * c) {
            let src = plane * inPlane, dst = plane * outPlane
            for p in 0..<outPlane {
                var acc: Float = 0
                for k in 0..<4 where index[p * 4 + k] >= 0 { acc += weight[p * 4 + k] * xs[src + Int(index[p * 4 + k])] }
                ys[dst + p] = acc
            }
        }
    } }
    let out = Tensor(shape: [n, c, outHeight, outWidth], data: y)
    out.record(op: "affineResample", parents: [x]) { g in
        var dx = [Float](repeating: 0, count: x.count)
        g.withUnsafeBufferPointer { gs in dx.withUnsafeMutableBufferPointer { ds in
            for plane in 0..<(n * c) {
                let src = plane * inPlane, dst = plane * outPlane
                for p in 0..<outPlane {
                    for k in 0..<4 where index[p * 4 + k] >= 0 { ds[src + Int(index[p * 4 + k])] += weight[p * 4 + k] * gs[dst + p] }
                }
            }
        } }
        x.accumulate(dx)
    }
    return out
}
