import Engine

/// VGG16/19 in torchvision's form and names: `features.N` (convs with ReLU at the next index, max pools),
/// `avgpool` (adaptive 7×7), `flatten`, `classifier.{0…6}` (NCHW flatten; `classifier.6` is the logits).
public enum VGG {
    static func make(_ depth: Int, config: [Int?], file: String) -> Architecture {
        var b = GraphBuilder()
        var i = 0, blockEnds: [String] = []
        for c in config {
            if let c {
                b.conv("features.\(i)", filters: c, kernel: 3, padding: .symmetric(1), bias: true)
                b.activation("features.\(i + 1)", .relu)
                i += 2
            } else {
                blockEnds.append(b.last)  // the block's last ReLU
                b.add("features.\(i)", .maxPool(kernel: 2, stride: 2, padding: .valid))
                i += 1
            }
        }
        b.add("avgpool", .adaptiveAvgPool(height: 7, width: 7))
        b.add("flatten", .flatten(channelsLast: false))
        b.dense("classifier.0", units: 4096)
        b.activation("classifier.1", .relu)
        b.add("classifier.2", .dropout(rate: 0.5))
        b.dense("classifier.3", units: 4096)
        b.activation("classifier.4", .relu)
        b.add("classifier.5", .dropout(rate: 0.5))
        b.dense("classifier.6", units: 1000)
        let g = b.build()
        return Architecture(
            name: "vgg\(depth)", summary: "VGG\(depth) (torchvision form and names)", inputSize: 224,
            preprocessing: .torchvision, graph: g, logits: "classifier.6", embedding: "classifier.4",
            defaultLayer: blockEnds[3], galleryLayers: blockEnds,
            blocks: g.nodes.filter { $0.op == .activation(.relu) }.map(\.name),
            files: [KnownFile(fileName: file, cache: .torchHub, sha256: String(file.split(separator: "-")[1].prefix(8)),
                              source: "torchvision", url: "https://download.pytorch.org/models/" + file)])
    }

    static let m: Int? = nil
    public static let vgg16 = make(16, config: [64, 64, m, 128, 128, m, 256, 256, 256, m, 512, 512, 512, m, 512, 512, 512, m],
                                   file: "vgg16-397923af.pth")
    public static let vgg19 = make(19, config: [64, 64, m, 128, 128, m, 256, 256, 256, 256, m, 512, 512, 512, 512, m, 512, 512, 512, 512, m],
                                   file: "vgg19-dcbb9e9d.pth")
}
