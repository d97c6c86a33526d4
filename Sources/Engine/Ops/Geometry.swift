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
    /// Spacing between the taps of the window (1: a dense window).
    public let dilation: Int

    /// Output size of a window over `inH`×`inW`, or nil when it does not fit (for shape checks before running).
    public static func outputSize(inH: Int, inW: Int, kH: Int, kW: Int, stride: Int, dilation: Int = 1, padding: Padding) -> (h: Int, w: Int)? {
        let limit = 1 << 16  // any real window is far smaller; this keeps the arithmetic below from overflowing
        guard (1...limit).contains(stride), (1...limit).contains(kH), (1...limit).contains(kW), (1...limit).contains(dilation),
              (0...limit).contains(inH), (0...limit).contains(inW) else { return nil }
        if case let .explicit(t, b, l, r) = padding, ![t, b, l, r].allSatisfy({ (0...limit).contains($0) }) { return nil }
        let eH = (kH - 1) * dilation + 1, eW = (kW - 1) * dilation + 1
        let h: Int, w: Int
        switch padding {
        case .same: h = (inH + stride - 1) / stride; w = (inW + stride - 1) / stride
        case .valid: h = inH >= eH ? (inH - eH) / stride + 1 : 0; w = inW >= eW ? (inW - eW) / stride + 1 : 0
        case let .explicit(top, bottom, left, right):
            h = inH + top + bottom >= eH ? (inH + top + bottom - eH) / stride + 1 : 0
            w = inW + left + right >= eW ? (inW + left + right - eW) / stride + 1 : 0
        }
        return h >= 1 && w >= 1 ? (h, w) : nil
    }

    public init(inH: Int, inW: Int, kH: Int, kW: Int, stride: Int, dilation: Int = 1, padding: Padding) {
        precondition(stride >= 1 && kH >= 1 && kW >= 1 && dilation >= 1, "bad window: kernel \(kH)x\(kW), stride \(stride), dilation \(dilation)")
        self.inH = inH; self.inW = inW; self.kH = kH; self.kW = kW; self.stride = stride; self.dilation = dilation
        guard let size = WindowGeometry.outputSize(inH: inH, inW: inW, kH: kH, kW: kW, stride: stride, dilation: dilation, padding: padding) else {
            preconditionFailure("window \(kH)x\(kW)/\(stride) (dilation \(dilation)) does not fit input \(inH)x\(inW)")
        }
        outH = size.h; outW = size.w
        switch padding {
        case .same:
            let eH = (kH - 1) * dilation + 1, eW = (kW - 1) * dilation + 1
            padTop = max((outH - 1) * stride + eH - inH, 0) / 2; padLeft = max((outW - 1) * stride + eW - inW, 0) / 2
        case .valid: padTop = 0; padLeft = 0
        case let .explicit(top, _, left, _): padTop = top; padLeft = left
        }
    }

    /// A geometry given outright, for a band of a plane's rows (a fused pass runs the plane kernels on a few rows
    /// at a time, with the band's own top padding; its bottom may be cut off, which `init(padding:)` cannot say).
    init(inH: Int, inW: Int, k: Int, stride: Int, outH: Int, outW: Int, padTop: Int, padLeft: Int) {
        precondition(inH >= 1 && inW >= 1 && outH >= 1 && outW >= 1 && k >= 1 && stride >= 1 && padTop >= 0 && padLeft >= 0, "bad band: \(inH)x\(inW) → \(outH)x\(outW), k \(k), pads \(padTop), \(padLeft)")
        self.inH = inH; self.inW = inW; kH = k; kW = k; self.stride = stride; dilation = 1
        self.outH = outH; self.outW = outW; self.padTop = padTop; self.padLeft = padLeft
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

    /// Output columns (rows) whose tap `kx` (`ky`) reads inside the image; taps are `dilation` apart.
    func validColumns(kx: Int) -> Range<Int> { validOutputRange(k: kx * dilation, pad: padLeft, inSize: inW, outSize: outW) }
    func validRows(ky: Int) -> Range<Int> { validOutputRange(k: ky * dilation, pad: padTop, inSize: inH, outSize: outH) }
}
