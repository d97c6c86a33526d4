import CKernels
import Foundation

/// Pointwise nonlinearities. Convolutions can apply one as a fused epilogue (one pass over the output);
/// the same definitions back the standalone `relu` / `relu6` ops.
public enum Activation: String, Sendable, Codable {
    case identity, relu, relu6

    /// `row[i] = act(row[i] + bias)` for `count` values. Written as a plain select loop, which LLVM turns
    /// into vaddps/vmaxps/vminps; the stdlib's SIMD pointwiseMin/Max are out-of-line calls per vector.
    @inline(__always)
    func apply(_ row: UnsafeMutablePointer<Float>, count: Int, bias b: Float) {
        switch self {
        case .identity: for i in 0..<count { row[i] += b }
        case .relu: for i in 0..<count { let t = row[i] + b; row[i] = t < 0 ? 0 : t }
        case .relu6: for i in 0..<count { var t = row[i] + b; t = t < 0 ? 0 : t; row[i] = t > 6 ? 6 : t }
        }
    }

    /// The C kernels' code for this activation (VZ_ACT_…), which they apply in registers with `apply`'s bits.
    var kernelCode: Int32 {
        switch self {
        case .identity: Int32(VZ_ACT_IDENTITY)
        case .relu: Int32(VZ_ACT_RELU)
        case .relu6: Int32(VZ_ACT_RELU6)
        }
    }

    /// `maskGradient` over many planes, split across threads.
    func maskGradientParallel(_ grad: UnsafeMutablePointer<Float>, output y: UnsafePointer<Float>, planes: Int, planeSize: Int) {
        if self == .identity { return }
        Parallel.forEachChunk(planes, grain: max(1, 16384 / max(planeSize, 1))) { range in
            let start = range.lowerBound * planeSize
            maskGradient(grad + start, output: y + start, count: range.count * planeSize)
        }
    }

    /// Multiplies `grad` in place by act'(x), read from the activation's *output* y:
    /// relu passes where y > 0, relu6 where 0 < y < 6 (as torch's hardtanh backward).
    /// With `ClampGradient.redirect` on, a clamped unit also passes a gradient that would move it back into its
    /// range (up from 0, down from 6) — Lucid's redirected ReLU, so a dead unit can still be woken up.
    func maskGradient(_ grad: UnsafeMutablePointer<Float>, output y: UnsafePointer<Float>, count: Int) {
        if ClampGradient.redirect { return redirectGradient(grad, output: y, count: count) }
        switch self {
        case .identity: return
        case .relu: for i in 0..<count { grad[i] = y[i] > 0 ? grad[i] : 0 }
        case .relu6: for i in 0..<count where !(y[i] > 0 && y[i] < 6) { grad[i] = 0 }
        }
    }

    /// `grad` is d(objective)/dy for gradient *ascent* (the visualization loop): at y = 0 a positive gradient
    /// raises the input toward the active range, at y = 6 a negative one lowers it into the range.
    private func redirectGradient(_ grad: UnsafeMutablePointer<Float>, output y: UnsafePointer<Float>, count: Int) {
        switch self {
        case .identity: return
        case .relu: for i in 0..<count where y[i] <= 0 && grad[i] < 0 { grad[i] = 0 }
        case .relu6: for i in 0..<count where (y[i] <= 0 && grad[i] < 0) || (y[i] >= 6 && grad[i] > 0) { grad[i] = 0 }
        }
    }
}

/// Switch for Lucid's "redirected" ReLU gradient (see `Activation.maskGradient`). Off by default; the
/// visualization loop turns it on for its first steps only. Not for attacks or parity checks: it is not the
/// true gradient.
public enum ClampGradient {
    nonisolated(unsafe) public static var redirect = false

    public static func redirecting<T>(_ on: Bool, _ body: () throws -> T) rethrows -> T {
        let saved = redirect
        redirect = on
        defer { redirect = saved }
        return try body()
    }
}

/// max(x, 0).
public func relu(_ x: Tensor) -> Tensor { activate(x, .relu) }

/// min(max(x, 0), 6), the clamp used throughout EfficientNet-Lite.
public func relu6(_ x: Tensor) -> Tensor { activate(x, .relu6) }

func activate(_ x: Tensor, _ act: Activation) -> Tensor {
    var y = x.data
    y.withUnsafeMutableBufferPointer { if $0.count > 0 { act.apply($0.baseAddress!, count: $0.count, bias: 0) } }
    let out = Tensor(shape: x.shape, data: y)
    out.record(op: act.rawValue, parents: [x]) { [unowned out] g in
        g.withUnsafeMutableBufferPointer { d in
            out.data.withUnsafeBufferPointer { act.maskGradient(d.baseAddress!, output: $0.baseAddress!, count: d.count) }
        }
        x.accumulate(g)
    }
    return out
}

/// 1 / (1 + e^-x): maps an unconstrained parameterization into [0, 1] pixel values.
public func sigmoid(_ x: Tensor) -> Tensor {
    let out = Tensor(shape: x.shape, data: x.data.map { 1 / (1 + expf(-$0)) })
    out.record(op: "sigmoid", parents: [x]) { [unowned out] g in
        // dσ/dx = σ(1 − σ), from the output.
        out.data.withUnsafeBufferPointer { y in g.withUnsafeMutableBufferPointer { d in
            for i in 0..<d.count { d[i] *= y[i] * (1 - y[i]) }
        } }
        x.accumulate(g)
    }
    return out
}

/// x · σ(x) (SiLU), EfficientNet's and MobileNetV3's smooth ReLU.
public func swish(_ x: Tensor) -> Tensor {
    let s = x.data.map { 1 / (1 + expf(-$0)) }
    let out = Tensor(shape: x.shape, data: zip(x.data, s).map { $0 * $1 })
    out.record(op: "swish", parents: [x]) { g in
        // d/dx x·σ(x) = σ(x) · (1 + x · (1 − σ(x))).
        g.withUnsafeMutableBufferPointer { d in
            for i in 0..<d.count { d[i] *= s[i] * (1 + x.data[i] * (1 - s[i])) }
        }
        x.accumulate(g)
    }
    return out
}

/// min(max(alpha·x + beta, 0), 1): ONNX HardSigmoid (Keras and PyTorch use alpha = 1/6, beta = 0.5).
public func hardSigmoid(_ x: Tensor, alpha: Float = 1 / 6, beta: Float = 0.5) -> Tensor {
    let out = Tensor(shape: x.shape, data: x.data.map { min(max(alpha * $0 + beta, 0), 1) })
    out.record(op: "hardSigmoid", parents: [x]) { g in
        g.withUnsafeMutableBufferPointer { d in
            for i in 0..<d.count { let t = alpha * x.data[i] + beta; d[i] = t > 0 && t < 1 ? d[i] * alpha : 0 }
        }
        x.accumulate(g)
    }
    return out
}

/// x · relu6(x + 3) / 6 (MobileNetV3's hard swish).
public func hardSwish(_ x: Tensor) -> Tensor {
    let out = Tensor(shape: x.shape, data: x.data.map { $0 * min(max($0 + 3, 0), 6) / 6 })
    out.record(op: "hardSwish", parents: [x]) { g in
        // 0 below −3, 1 above 3, (2x + 3) / 6 between (PyTorch's convention at the kinks).
        g.withUnsafeMutableBufferPointer { d in
            for i in 0..<d.count {
                let v = x.data[i]
                d[i] *= v < -3 ? 0 : v > 3 ? 1 : (2 * v + 3) / 6
            }
        }
        x.accumulate(g)
    }
    return out
}
