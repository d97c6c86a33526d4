/// Pointwise nonlinearities. Convolutions can apply one as a fused epilogue (one pass over the output);
/// the same definitions back the standalone `relu` / `relu6` ops.
public enum Activation: String, Sendable, Codable {
    case identity, relu, relu6

    /// Applies `y = act(y + bias[c])` in place over `planes` consecutive planes of `planeSize` values;
    /// plane p belongs to channel `p % channels`.
    func applyWithBias(_ y: UnsafeMutablePointer<Float>, planes: Int, planeSize: Int, channels: Int,
                       bias: UnsafePointer<Float>?) {
        if self == .identity && bias == nil { return }
        let hi: Float = self == .relu6 ? 6 : .infinity
        let lo: Float = self == .identity ? -.infinity : 0
        Parallel.forEachChunk(planes, grain: max(1, 16384 / max(planeSize, 1))) { range in
            for p in range {
                let b = bias?[p % channels] ?? 0
                let row = y + p * planeSize
                var i = 0
                let bv = SIMD8<Float>(repeating: b), lov = SIMD8<Float>(repeating: lo), hiv = SIMD8<Float>(repeating: hi)
                while i + 8 <= planeSize {
                    let raw = UnsafeMutableRawPointer(row + i)
                    let v = raw.loadUnaligned(as: SIMD8<Float>.self) + bv
                    raw.storeBytes(of: v.clamped(lowerBound: lov, upperBound: hiv), as: SIMD8<Float>.self)
                    i += 8
                }
                while i < planeSize { row[i] = Swift.min(Swift.max(row[i] + b, lo), hi); i += 1 }
            }
        }
    }

    /// Multiplies `grad` in place by act'(x), read from the activation's *output* y:
    /// relu passes where y > 0, relu6 where 0 < y < 6 (as torch's hardtanh backward).
    func maskGradient(_ grad: UnsafeMutablePointer<Float>, output y: UnsafePointer<Float>, count: Int) {
        switch self {
        case .identity: return
        case .relu:
            for i in 0..<count where !(y[i] > 0) { grad[i] = 0 }
        case .relu6:
            var i = 0
            let zero = SIMD8<Float>(repeating: 0), six = SIMD8<Float>(repeating: 6)
            while i + 8 <= count {
                let v = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
                let g = UnsafeMutableRawPointer(grad + i).loadUnaligned(as: SIMD8<Float>.self)
                let keep = (v .> zero) .& (v .< six)
                UnsafeMutableRawPointer(grad + i).storeBytes(of: zero.replacing(with: g, where: keep), as: SIMD8<Float>.self)
                i += 8
            }
            while i < count { if !(y[i] > 0 && y[i] < 6) { grad[i] = 0 }; i += 1 }
        }
    }
}

/// max(x, 0).
public func relu(_ x: Tensor) -> Tensor { activate(x, .relu) }

/// min(max(x, 0), 6), the clamp used throughout EfficientNet-Lite.
public func relu6(_ x: Tensor) -> Tensor { activate(x, .relu6) }

func activate(_ x: Tensor, _ act: Activation) -> Tensor {
    var y = x.data
    y.withUnsafeMutableBufferPointer {
        act.applyWithBias($0.baseAddress!, planes: 1, planeSize: $0.count, channels: 1, bias: nil)
    }
    let out = Tensor(shape: x.shape, data: y)
    out.record(op: act.rawValue, parents: [x]) { [unowned out] g in
        var dx = g
        dx.withUnsafeMutableBufferPointer { d in
            out.data.withUnsafeBufferPointer { act.maskGradient(d.baseAddress!, output: $0.baseAddress!, count: d.count) }
        }
        x.accumulate(dx)
    }
    return out
}
