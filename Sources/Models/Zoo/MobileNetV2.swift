import Engine

/// MobileNetV2 in torchvision's form (symmetric padding, ReLU6, BN eps 1e-5) and names: `features.0.{0,1,2}`,
/// `features.N.conv.{…}` inside the inverted residuals, `features.N` (the block's output), `features.18`,
/// `adaptive_avg_pool2d`, `classifier.{0,1}`.
public enum MobileNetV2 {
    /// torchvision's inverted_residual_setting: expansion t, channels c, repeats n, first stride s.
    static let settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    static func make() -> Architecture {
        var g = GraphBuilder()
        let eps: Float = 1e-5
        g.conv("features.0.0", filters: 32, kernel: 3, stride: 2, padding: .symmetric(1))
        g.batchNorm("features.0.1", eps: eps)
        g.aliases["features.0"] = g.activation("features.0.2", .relu6)
        var channels = 32, index = 1
        for (t, c, n, s) in settings {
            for j in 0..<n {
                let p = "features.\(index).conv.", input = g.last, stride = j == 0 ? s : 1, mid = channels * t
                var k = 0
                if t != 1 {
                    g.conv(p + "0.0", filters: mid, kernel: 1, padding: .valid)
                    g.batchNorm(p + "0.1", eps: eps)
                    g.activation(p + "0.2", .relu6)
                    k = 1
                }
                g.conv(p + "\(k).0", filters: mid, kernel: 3, stride: stride, groups: mid, padding: .symmetric(1))
                g.batchNorm(p + "\(k).1", eps: eps)
                g.activation(p + "\(k).2", .relu6)
                g.conv(p + "\(k + 1)", filters: c, kernel: 1, padding: .valid)
                let projected = g.batchNorm(p + "\(k + 2)", eps: eps)
                if stride == 1 && channels == c {
                    g.add("features.\(index)", .add, inputs: [projected, input])
                } else {
                    g.aliases["features.\(index)"] = projected
                }
                channels = c; index += 1
            }
        }
        g.conv("features.18.0", filters: 1280, kernel: 1, padding: .valid)
        g.batchNorm("features.18.1", eps: eps)
        g.aliases["features.18"] = g.activation("features.18.2", .relu6)
        g.add("adaptive_avg_pool2d", .globalAveragePool)
        g.add("classifier.0", .dropout(rate: 0.2))
        g.dense("classifier.1", units: 1000)
        return Architecture(
            name: "mobilenet_v2", summary: "MobileNetV2 (torchvision form and names)", inputSize: 224,
            preprocessing: .torchvision, graph: g.build(), logits: "classifier.1", embedding: "adaptive_avg_pool2d",
            defaultLayer: "features.13", galleryLayers: ["features.3", "features.6", "features.10", "features.13", "features.16"],
            blocks: (0...18).map { "features.\($0)" },
            files: ["mobilenet_v2-b0353104.pth", "mobilenet_v2-7ebf99e0.pth"].map {
                KnownFile(fileName: $0, cache: .torchHub, sha256: String($0.split(separator: "-")[1].prefix(8)), source: "torchvision", url: "https://download.pytorch.org/models/" + $0)
            })
    }

    public static let torchvision = make()
}
