import Engine

/// Spatial padding of a convolution or pooling window, as the frameworks state it.
public enum WindowPadding: Codable, Sendable, Equatable {
    /// TensorFlow / Keras "same": output = ⌈input / stride⌉, the odd extra pixel at the bottom/right.
    case same
    /// Explicit zeros (PyTorch's symmetric `padding=`, or asymmetric as ONNX `pads` / Keras `ZeroPadding2D`).
    case explicit(top: Int, left: Int, bottom: Int, right: Int)

    public static let valid = WindowPadding.explicit(top: 0, left: 0, bottom: 0, right: 0)
    public static func symmetric(_ p: Int) -> WindowPadding { .explicit(top: p, left: p, bottom: p, right: p) }

    var engine: Padding {
        switch self {
        case .same: return .same
        case let .explicit(t, l, b, r): return t == 0 && l == 0 && b == 0 && r == 0 ? .valid : .explicit(top: t, bottom: b, left: l, right: r)
        }
    }
}

/// Pointwise nonlinearities a node can apply.
public enum ActivationKind: String, Codable, Sendable, CaseIterable {
    case relu, relu6, sigmoid, swish, hardSwish = "hard_swish", hardSigmoid = "hard_sigmoid"
}

/// What a node computes. Parameters are named in `Node.parameters` (the checkpoint's own tensor names) in the order
/// each case documents; shapes are checked when a model is built.
public enum Op: Codable, Sendable, Equatable {
    /// Parameters: weight [filters, in/groups, kH, kW] (PyTorch layout), then an optional bias [filters].
    case conv(filters: Int, kernel: Int, stride: Int, dilation: Int, groups: Int, padding: WindowPadding)
    /// Inference-mode batch norm. Parameters: gamma, beta, running mean, running variance (each [C]).
    case batchNorm(eps: Float)
    case activation(ActivationKind)
    /// Elementwise sum of all inputs (residual connection).
    case add
    /// Inputs joined along the channel axis.
    case concat
    case maxPool(kernel: Int, stride: Int, padding: WindowPadding)
    /// `countPadding`: padded positions count in the divisor (PyTorch's default); Keras' "same" pooling does not.
    case avgPool(kernel: Int, stride: Int, padding: WindowPadding, countPadding: Bool)
    /// [N, C, H, W] → [N, C].
    case globalAveragePool
    /// PyTorch `AdaptiveAvgPool2d((h, w))`.
    case adaptiveAvgPool(height: Int, width: Int)
    /// [N, C, H, W] → [N, C·H·W] in PyTorch's (C, H, W) order or Keras' (H, W, C) order.
    case flatten(channelsLast: Bool)
    /// Parameters: weight [units, in] (PyTorch layout), then an optional bias [units].
    case dense(units: Int)
    /// Identity at inference (kept so layer names match the framework's).
    case dropout(rate: Float)
    case softmax
    /// Zero padding of the spatial axes (Keras `ZeroPadding2D`).
    case pad(top: Int, left: Int, bottom: Int, right: Int)

    /// Short name for tables and errors.
    public var name: String {
        switch self {
        case let .conv(_, k, _, _, groups, _): return groups > 1 ? "conv \(k)×\(k) (groups \(groups))" : "conv \(k)×\(k)"
        case .batchNorm: return "batch_norm"
        case .activation(let a): return a.rawValue
        case .add: return "add"
        case .concat: return "concat"
        case .maxPool: return "max_pool"
        case .avgPool: return "avg_pool"
        case .globalAveragePool: return "global_avg_pool"
        case .adaptiveAvgPool: return "adaptive_avg_pool"
        case .flatten(let last): return last ? "flatten (NHWC)" : "flatten"
        case .dense: return "dense"
        case .dropout: return "dropout"
        case .softmax: return "softmax"
        case .pad: return "zero_pad"
        }
    }
}

/// One named value of the network: what computes it, from which named values, with which named tensors.
public struct Node: Codable, Sendable, Equatable {
    public var name: String
    public var op: Op
    /// Names of the nodes (or the graph input) this one reads.
    public var inputs: [String]
    /// Names of the weight tensors this node uses, in the order its op documents.
    public var parameters: [String]

    public init(_ name: String, _ op: Op, inputs: [String], parameters: [String] = []) {
        self.name = name; self.op = op; self.inputs = inputs; self.parameters = parameters
    }
}
