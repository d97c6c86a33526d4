/// Builds EfficientNet-Lite0 from a PyTorch state_dict (the `efficientnet-lite-pytorch` naming),
/// folding every batch norm into the conv before it.
public enum ModelError: Error, CustomStringConvertible {
    case missingTensor(String)
    case wrongShape(String, expected: [Int], got: [Int])

    public var description: String {
        switch self {
        case .missingTensor(let k): return "weights: tensor '\(k)' is missing (not an EfficientNet-Lite0 state_dict?)"
        case let .wrongShape(k, e, g): return "weights: tensor '\(k)' has shape \(g), expected \(e)"
        }
    }
}

extension EfficientNetLite {
    /// Lite0's block list: (kernel, stride, expand ratio, in, out) per block, from the reference implementation's
    /// block strings r1_k3_s11_e1_i32_o16, r2_k3_s22_e6_i16_o24, r2_k5_s22_e6_i24_o40, r3_k3_s22_e6_i40_o80,
    /// r3_k5_s11_e6_i80_o112, r4_k5_s22_e6_i112_o192, r1_k3_s11_e6_i192_o320 (stride only on a stage's first block).
    static let lite0Blocks: [(kernel: Int, stride: Int, expand: Int, cin: Int, cout: Int)] = {
        let stages = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
                      (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]
        var blocks: [(Int, Int, Int, Int, Int)] = []
        for (repeats, k, s, e, cin, cout) in stages {
            for r in 0..<repeats { blocks.append((k, r == 0 ? s : 1, e, r == 0 ? cin : cout, cout)) }
        }
        return blocks
    }()

    /// `tensor(name, expectedShape)` returns a state_dict entry or throws. BatchNorm eps is 1e-3 (TensorFlow's).
    public static func lite0(tensor: (String, [Int]) throws -> Tensor) throws -> EfficientNetLite {
        func get(_ key: String, _ shape: [Int]) throws -> Tensor {
            let t = try tensor(key, shape)
            guard t.shape == shape else { throw ModelError.wrongShape(key, expected: shape, got: t.shape) }
            return t
        }
        func bn(_ prefix: String, _ c: Int) throws -> BatchNormParameters {
            BatchNormParameters(gamma: try get(prefix + ".weight", [c]).data, beta: try get(prefix + ".bias", [c]).data,
                                mean: try get(prefix + ".running_mean", [c]).data,
                                variance: try get(prefix + ".running_var", [c]).data, eps: 1e-3)
        }
        func layer(_ conv: String, _ norm: String, shape: [Int], stride: Int, groups: Int, activation: Activation) throws -> ConvLayer {
            let folded = try bn(norm, shape[0]).fold(weight: try get(conv + ".weight", shape), bias: nil)
            return ConvLayer(weight: folded.weight, bias: folded.bias, stride: stride, groups: groups, activation: activation)
        }
        let stem = try layer("_conv_stem", "_bn0", shape: [32, 3, 3, 3], stride: 2, groups: 1, activation: .relu6)
        var blocks: [MBConvBlock] = []
        for (i, spec) in lite0Blocks.enumerated() {
            let p = "_blocks.\(i)."
            let mid = spec.cin * spec.expand
            let expand = spec.expand == 1 ? nil
                : try layer(p + "_expand_conv", p + "_bn0", shape: [mid, spec.cin, 1, 1], stride: 1, groups: 1, activation: .relu6)
            let depthwise = try layer(p + "_depthwise_conv", p + "_bn1", shape: [mid, 1, spec.kernel, spec.kernel],
                                      stride: spec.stride, groups: mid, activation: .relu6)
            let project = try layer(p + "_project_conv", p + "_bn2", shape: [spec.cout, mid, 1, 1], stride: 1, groups: 1,
                                    activation: .identity)
            blocks.append(MBConvBlock(expand: expand, depthwise: depthwise, project: project,
                                      residual: spec.stride == 1 && spec.cin == spec.cout))
        }
        let head = try layer("_conv_head", "_bn1", shape: [1280, 320, 1, 1], stride: 1, groups: 1, activation: .relu6)
        return EfficientNetLite(stem: stem, blocks: blocks, head: head,
                                fcWeight: try get("_fc.weight", [1000, 1280]), fcBias: try get("_fc.bias", [1000]))
    }
}
