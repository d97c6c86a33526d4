/// How a convolution or pooling window is padded.
public enum Padding: Sendable, Equatable {
    /// TensorFlow "SAME": output = ceil(input / stride); the odd extra pixel goes right/bottom.
    case same
    /// No padding.
    case valid
    /// Explicit (top, bottom, left, right) zero padding, like PyTorch's `padding=`.
    case explicit(top: Int, bottom: Int, left: Int, right: Int)

    public static func symmetric(_ p: Int) -> Padding { .explicit(top: p, bottom: p, left: p, right: p) }
}

/// Spatial bookkeeping shared by convolution and pooling: sizes, stride and the top/left padding
/// (bottom/right padding is implied by the output size).
public struct WindowGeometry: Sendable, Equatable {
    public let inH, inW, kH, kW, stride, outH, outW, padTop, padLeft: Int

    public init(inH: Int, inW: Int, kH: Int, kW: Int, stride: Int, padding: Padding) {
        precondition(stride >= 1 && kH >= 1 && kW >= 1, "bad window: kernel \(kH)x\(kW), stride \(stride)")
        self.inH = inH; self.inW = inW; self.kH = kH; self.kW = kW; self.stride = stride
        switch padding {
        case .same:
            let oh = (inH + stride - 1) / stride, ow = (inW + stride - 1) / stride
            let padH = max((oh - 1) * stride + kH - inH, 0), padW = max((ow - 1) * stride + kW - inW, 0)
            outH = oh; outW = ow; padTop = padH / 2; padLeft = padW / 2
        case .valid:
            outH = (inH - kH) / stride + 1; outW = (inW - kW) / stride + 1; padTop = 0; padLeft = 0
        case let .explicit(top, bottom, left, right):
            outH = (inH + top + bottom - kH) / stride + 1
            outW = (inW + left + right - kW) / stride + 1
            padTop = top; padLeft = left
        }
        precondition(outH >= 1 && outW >= 1, "window \(kH)x\(kW)/\(stride) does not fit input \(inH)x\(inW)")
    }

    /// Range of output columns `ox` for which input column `ox*stride + kx - padLeft` lies inside the image.
    @inline(__always)
    func validOutputRange(k: Int, pad: Int, inSize: Int, outSize: Int) -> Range<Int> {
        // ox*stride + k - pad >= 0  and  ox*stride + k - pad <= inSize - 1
        let lo = max(0, (pad - k + stride - 1) / stride)
        let hiIncl = (inSize - 1 + pad - k)
        let hi = hiIncl < 0 ? 0 : min(outSize, hiIncl / stride + 1)
        return lo..<max(lo, hi)
    }

    func validColumns(kx: Int) -> Range<Int> { validOutputRange(k: kx, pad: padLeft, inSize: inW, outSize: outW) }
    func validRows(ky: Int) -> Range<Int> { validOutputRange(k: ky, pad: padTop, inSize: inH, outSize: outH) }
}
