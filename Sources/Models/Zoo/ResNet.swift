import Engine

/// ResNet-50 in torchvision's form (V1.5: the stride on the 3×3 conv) and names: `conv1 bn1 relu maxpool`,
/// `layerL.i.{conv1,bn1,relu,conv2,bn2,relu_1,conv3,bn3,downsample.0,downsample.1,add}`, the block output
/// `layerL.i` (after its last ReLU, what a forward hook on the module sees), `avgpool`, `fc`. BN eps 1e-5.
public enum ResNet {
    /// Bottleneck repeats per stage (ResNet-50: 3, 4, 6, 3), widths 64…512, expansion 4.
    static func make(_ depth: Int, repeats: [Int], files: [String]) -> Architecture {
        var g = GraphBuilder()
        let eps: Float = 1e-5
        g.conv("conv1", filters: 64, kernel: 7, stride: 2, padding: .symmetric(3))
        g.batchNorm("bn1", eps: eps)
        g.activation("relu", .relu)
        g.add("maxpool", .maxPool(kernel: 3, stride: 2, padding: .symmetric(1)))
        for (stage, n) in repeats.enumerated() {
            let width = 64 << stage
            for i in 0..<n {
                let p = "layer\(stage + 1).\(i)", input = g.last
                let stride = i == 0 && stage > 0 ? 2 : 1
                g.conv(p + ".conv1", filters: width, kernel: 1, padding: .valid)
                g.batchNorm(p + ".bn1", eps: eps)
                g.activation(p + ".relu", .relu)
                g.conv(p + ".conv2", filters: width, kernel: 3, stride: stride, padding: .symmetric(1))
                g.batchNorm(p + ".bn2", eps: eps)
                g.activation(p + ".relu_1", .relu)
                g.conv(p + ".conv3", filters: width * 4, kernel: 1, padding: .valid)
                let main = g.batchNorm(p + ".bn3", eps: eps)
                var shortcut = input
                if i == 0 {
                    g.conv(p + ".downsample.0", filters: width * 4, kernel: 1, stride: stride, padding: .valid, input: input)
                    shortcut = g.batchNorm(p + ".downsample.1", eps: eps)
                }
                g.add(p + ".add", .add, inputs: [main, shortcut])
                g.activation(p, .relu)
            }
        }
        g.add("avgpool", .globalAveragePool)
        g.dense("fc", units: 1000)
        let stageEnds = repeats.indices.map { "layer\($0 + 1).\(repeats[$0] - 1)" }
        return Architecture(
            name: "resnet\(depth)", summary: "ResNet-\(depth) (torchvision V1.5 form and names)", inputSize: 224,
            preprocessing: .torchvision, graph: g.build(), logits: "fc", embedding: "avgpool",
            defaultLayer: stageEnds[2], galleryLayers: stageEnds,
            blocks: repeats.indices.flatMap { s in (0..<repeats[s]).map { "layer\(s + 1).\($0)" } },
            files: files.map { KnownFile(fileName: $0, cache: .torchHub, sha256: String($0.split(separator: "-")[1].prefix(8)), source: "torchvision", url: "https://download.pytorch.org/models/" + $0) })
    }

    public static let resnet50 = make(50, repeats: [3, 4, 6, 3], files: ["resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth"])
}
