import Engine

/// `keras.applications` VGG16/VGG19, ResNet50 and MobileNetV2 in Keras' form (channels-last semantics: NHWC
/// flatten, TF "same" padding, Keras' BN epsilons) and Keras' layer names, as in keras/src/applications/*.py.
/// Parameters are `LAYER.kernel`, `LAYER.bias`, `LAYER.gamma`…; the Keras readers turn Keras' kernel layouts into
/// the engine's. A layer with an activation inside (VGG's convs, every `predictions`) is its activated output; its
/// pre-activation is `LAYER/BiasAdd`.
public enum KerasApplications {
    static let base = "https://storage.googleapis.com/tensorflow/keras-applications"

    static func files(_ folder: String, _ names: [(String, String?)]) -> [KnownFile] {
        names.map { KnownFile(fileName: $0.0, cache: .keras, sha256: "", source: "Keras", md5: $0.1, url: "\(base)/\(folder)/\($0.0)") }
    }

    static func vgg(_ depth: Int, convs: [Int], files: [KnownFile]) -> Architecture {
        var k = KerasGraphBuilder()
        var pools: [String] = []
        for (b, n) in convs.enumerated() {
            let filters = [64, 128, 256, 512, 512][b]
            for i in 1...n {
                k.conv2D("block\(b + 1)_conv\(i)", filters: filters, kernel: 3, padding: .same, activation: .kind(.relu))
            }
            pools.append("block\(b + 1)_conv\(n)")
            k.maxPool("block\(b + 1)_pool", pool: 2, stride: 2)
        }
        k.flatten("flatten")
        k.dense("fc1", units: 4096, activation: .kind(.relu))
        k.dense("fc2", units: 4096, activation: .kind(.relu))
        k.dense("predictions", units: 1000, activation: .softmax)
        let g = k.build()
        return Architecture(
            name: "vgg\(depth)-keras", summary: "VGG\(depth) (keras.applications form and names)", inputSize: 224,
            preprocessing: .keras(.caffe), graph: g, logits: "predictions/BiasAdd", embedding: "fc2",
            defaultLayer: "block4_conv3", galleryLayers: pools,
            blocks: k.layers.filter { $0.className == "Conv2D" }.map(\.name), files: files,
            keras: k.kerasOrder(output: "predictions"))
    }

    public static let vgg16 = vgg(16, convs: [2, 2, 3, 3, 3], files: files("vgg16", [
        ("vgg16_weights_tf_dim_ordering_tf_kernels.h5", "64373286793e3c8b2b4e3219cbf3544b")]))
    public static let vgg19 = vgg(19, convs: [2, 2, 4, 4, 4], files: files("vgg19", [
        ("vgg19_weights_tf_dim_ordering_tf_kernels.h5", "cbe5617147190e668d6c5d5026f83318")]))

    /// keras/src/applications/resnet.py: ResNet50 (stack1 with block1; the stride on the first 1×1 conv).
    public static let resnet50: Architecture = {
        var k = KerasGraphBuilder()
        let eps: Float = 1.001e-5
        k.zeroPadding("conv1_pad", top: 3, bottom: 3, left: 3, right: 3)
        k.conv2D("conv1_conv", filters: 64, kernel: 7, stride: 2)
        k.batchNorm("conv1_bn", eps: eps)
        k.activation("conv1_relu", .kind(.relu))
        k.zeroPadding("pool1_pad", top: 1, bottom: 1, left: 1, right: 1)
        k.maxPool("pool1_pool", pool: 3, stride: 2)
        var outs: [String] = [], stageEnds: [String] = []
        for (s, (filters, blocks)) in [(64, 3), (128, 4), (256, 6), (512, 3)].enumerated() {
            for b in 1...blocks {
                let name = "conv\(s + 2)_block\(b)", x = k.last
                let stride = b == 1 && s > 0 ? 2 : 1
                var shortcut = x
                if b == 1 {
                    k.conv2D(name + "_0_conv", filters: 4 * filters, kernel: 1, stride: stride, input: x)
                    shortcut = k.last
                    k.batchNorm(name + "_0_bn", eps: eps)
                    shortcut = k.last
                }
                k.conv2D(name + "_1_conv", filters: filters, kernel: 1, stride: stride, input: x)
                k.batchNorm(name + "_1_bn", eps: eps)
                k.activation(name + "_1_relu", .kind(.relu))
                k.conv2D(name + "_2_conv", filters: filters, kernel: 3, padding: .same)
                k.batchNorm(name + "_2_bn", eps: eps)
                k.activation(name + "_2_relu", .kind(.relu))
                k.conv2D(name + "_3_conv", filters: 4 * filters, kernel: 1)
                k.batchNorm(name + "_3_bn", eps: eps)
                k.add(name + "_add", inputs: [shortcut, k.last])
                k.activation(name + "_out", .kind(.relu))
                outs.append(name + "_out")
            }
            stageEnds.append(k.last)
        }
        k.globalAveragePool("avg_pool")
        k.dense("predictions", units: 1000, activation: .softmax)
        return Architecture(
            name: "resnet50-keras", summary: "ResNet50 (keras.applications form and names)", inputSize: 224,
            preprocessing: .keras(.caffe), graph: k.build(), logits: "predictions/BiasAdd", embedding: "avg_pool",
            defaultLayer: stageEnds[2], galleryLayers: stageEnds, blocks: outs,
            files: files("resnet", [("resnet50_weights_tf_dim_ordering_tf_kernels.h5", "2cb95161c43110f7111970584f804107")]),
            keras: k.kerasOrder(output: "predictions"))
    }()

    /// keras/src/applications/mobilenet_v2.py at alpha 1.0, 224² (the stride-2 pads from `correct_pad` at that size).
    public static let mobilenetV2: Architecture = {
        var k = KerasGraphBuilder()
        let eps: Float = 1e-3
        k.conv2D("Conv1", filters: 32, kernel: 3, stride: 2, padding: .same, useBias: false)
        k.batchNorm("bn_Conv1", eps: eps)
        k.activation("Conv1_relu", .kind(.relu6), className: "ReLU")
        var size = 112, channels = 32, outs: [String] = []
        let blocks = [(16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6), (64, 2, 6), (64, 1, 6), (64, 1, 6), (64, 1, 6),
                      (96, 1, 6), (96, 1, 6), (96, 1, 6), (160, 2, 6), (160, 1, 6), (160, 1, 6), (320, 1, 6)]
        for (id, (filters, stride, expansion)) in blocks.enumerated() {
            let input = k.last
            var prefix = "block_\(id)_"
            if id > 0 {
                k.conv2D(prefix + "expand", filters: expansion * channels, kernel: 1, padding: .same, useBias: false)
                k.batchNorm(prefix + "expand_BN", eps: eps)
                k.activation(prefix + "expand_relu", .kind(.relu6), className: "ReLU")
            } else {
                prefix = "expanded_conv_"
            }
            if stride == 2 {
                let adjust = 1 - size % 2  // imagenet_utils.correct_pad(x, 3)
                k.zeroPadding(prefix + "pad", top: 1 - adjust, bottom: 1, left: 1 - adjust, right: 1)
                size = (size + 1) / 2
            }
            try! k.depthwiseConv2D(prefix + "depthwise", kernel: 3, stride: stride, padding: stride == 1 ? .same : .valid, useBias: false)
            k.batchNorm(prefix + "depthwise_BN", eps: eps)
            k.activation(prefix + "depthwise_relu", .kind(.relu6), className: "ReLU")
            k.conv2D(prefix + "project", filters: filters, kernel: 1, padding: .same, useBias: false)
            k.batchNorm(prefix + "project_BN", eps: eps)
            if channels == filters && stride == 1 { k.add(prefix + "add", inputs: [input, k.last]) }
            outs.append(k.last)
            channels = filters
        }
        k.conv2D("Conv_1", filters: 1280, kernel: 1, useBias: false)
        k.batchNorm("Conv_1_bn", eps: eps)
        k.activation("out_relu", .kind(.relu6), className: "ReLU")
        k.globalAveragePool("global_average_pooling2d")
        k.dense("predictions", units: 1000, activation: .softmax)
        return Architecture(
            name: "mobilenet_v2-keras", summary: "MobileNetV2 1.0/224 (keras.applications form and names)", inputSize: 224,
            preprocessing: .keras(.tf), graph: k.build(), logits: "predictions/BiasAdd", embedding: "global_average_pooling2d",
            defaultLayer: "block_13_expand_relu", galleryLayers: ["block_2_add", "block_5_add", "block_9_add", "block_12_add", "block_15_add"],
            blocks: outs + ["out_relu"],
            files: files("mobilenet_v2", [("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5", nil)]),
            keras: k.kerasOrder(output: "predictions"))
    }()
}
