import Engine
import Foundation

/// An imported ONNX graph as a vizlab model: its layers are the graph's nodes by the names exporters give them
/// (what Netron shows, e.g. `/layer1/layer1.0/conv1/Conv`; each node's output name works too), its parameters the
/// initializers. ONNX files say nothing of preprocessing: `--preprocess` gives it (default torchvision's).
public final class ONNXModel: VisionModel, @unchecked Sendable {
    public let spec: ModelSpec
    public let graph: ONNXGraph
    public let layers: [LayerInfo]
    public let labels: ImageNetLabels
    public let namedParameters: [(name: String, tensor: Tensor)]
    /// Layer name (node or output name) → the value it denotes.
    let valueOf: [String: String]
    /// The graph takes [N, H, W, 3].
    let channelsLast: Bool

    public init(graph: ONNXGraph, file: URL, sha256: String, preprocess: Preprocessing.Mode?) throws {
        self.graph = graph
        var dims = graph.inputShape
        // Keras' own ONNX export takes NHWC images: fed by permuting vizlab's NCHW input.
        channelsLast = dims.count == 4 && dims[3] == 3 && dims[1] != 3
        if channelsLast { dims = [dims[0], dims[3], dims[1], dims[2]] }
        guard dims.count == 4, dims[1] == nil || dims[1] == 3 else {
            throw ONNXError("the input '\(graph.input)' has shape \(dims.map { $0.map(String.init) ?? "?" }); vizlab feeds [N, 3, H, W] images", unsupported: true)
        }
        if let h = dims[2], let w = dims[3], h != w { throw ONNXError("the input is \(h)×\(w); vizlab takes square inputs", unsupported: true) }
        let size = dims[2] ?? dims[3] ?? 224
        guard (16...4096).contains(size) else { throw ONNXError("input size \(size) is out of range (16…4096)") }
        let rows = try ONNXModel.trace(graph, size: size, channelsLast: channelsLast)
        // A batch of 2 must run too (renders and attacks batch their images): a graph that bakes in another batch
        // beyond what vizlab adapts is refused now, not in the middle of a render.
        let pair: [Int] = channelsLast ? [2, size, size, 3] : [2, 3, size, size]
        _ = try GradMode.withoutGrad { try graph.run(Tensor(zeros: pair), capture: [graph.output]) }
        // Layers are the nodes with float values (Shape, Gather… of sizes are not activations).
        let named = Set(rows.map(\.name))
        var valueOf: [String: String] = [:]
        for l in graph.layerNames where named.contains(l.node) { valueOf[l.node] = l.value; if valueOf[l.value] == nil { valueOf[l.value] = l.value } }
        self.valueOf = valueOf
        layers = rows
        namedParameters = graph.constants.sorted { $0.key < $1.key }.compactMap { k, v in
            if case .float(let t) = v, t.count > 1 { return (k, t) }
            return nil
        }
        // Logits: the graph output, or the input of a final Softmax.
        var logits = graph.layerNames.last { $0.value == graph.output }?.node ?? graph.output
        if let last = graph.nodes.last(where: { $0.outputs.first == graph.output }), last.opType == "Softmax",
           let pre = graph.layerNames.first(where: { $0.value == last.inputs[0] }) {
            logits = pre.node
        }
        guard let out = rows.first(where: { $0.name == logits }), out.shape.count == 1 else {
            throw ONNXError("the output gives \(rows.first { $0.name == logits }?.shape ?? []) per image, not a vector of class scores", unsupported: true)
        }
        let classes = out.shape[0]
        let labelLines = classes == 1000 ? ImageNetLabels.shared.lines : (0..<classes).map { "class \($0)" }
        labels = classes == 1000 ? .shared : ImageNetLabels(lines: labelLines)
        // Embedding: what the last Gemm/MatMul reads.
        let heads = graph.nodes.filter { ["Gemm", "MatMul"].contains($0.opType) }
        let embedding = heads.last.flatMap { h in graph.layerNames.first { $0.value == h.inputs[0] }?.node } ?? logits
        let spatial = rows.filter { $0.isSpatial && [.activation, .add, .concat].contains($0.kind) }.map(\.name)
        let gallery = spatial.isEmpty ? [] : (1...5).map { spatial[min(spatial.count - 1, $0 * spatial.count / 5 - ($0 == 5 ? 1 : 0))] }
        var seen = Set<String>()
        let pre = Preprocessing.torchvision.with(mode: preprocess ?? .torch)
        var p = size == 224 ? pre : Preprocessing(mode: pre.mode, resize: Int((Double(size) / 0.875).rounded()), crop: size, filter: .bilinear, roundLongSide: false)
        if preprocess == .lite { p = .lite(crop: size) }
        let stem = file.deletingPathExtension().lastPathComponent
        spec = ModelSpec(architecture: "onnx:" + (graph.name.isEmpty || graph.name == "main_graph" || graph.name == "torch_jit" ? stem : graph.name),
                         weightsSHA256: sha256, weightsFile: file.path, inputSize: size, preprocessing: p, labels: labelLines,
                         logits: logits, embedding: embedding,
                         defaultLayer: spatial.isEmpty ? logits : spatial[spatial.count * 3 / 4],
                         galleryLayers: gallery.filter { seen.insert($0).inserted }, blocks: spatial)
    }

    public func forward(_ x: Tensor, capture: Set<String>) -> [String: Tensor] {
        precondition(x.rank == 4 && x.shape[1] == 3, "model input must be [N, 3, H, W], got \(x.shape)")
        var values: [String: String] = [:]
        for name in capture {
            guard let v = valueOf[name] else { preconditionFailure("unknown layer \(name)") }
            values[name] = v
        }
        let out: [String: Tensor]
        do { out = try graph.run(channelsLast ? permute(x, [0, 2, 3, 1]) : x, capture: Set(values.values)) } catch {
            preconditionFailure("\(spec.weightsFile): \(error)")
        }
        return values.mapValues { out[$0]! }
    }

    public func layers(height: Int, width: Int) throws -> [LayerInfo] {
        if height == spec.inputSize && width == spec.inputSize { return layers }
        guard height == width else { throw ONNXError("an ONNX model takes square inputs") }
        if let h = graph.inputShape[channelsLast ? 1 : 2], h != height { throw ONNXError("the graph's input is fixed at \(h)×\(h)") }
        return try ONNXModel.trace(graph, size: height, channelsLast: channelsLast)
    }

    /// Layer rows by running the graph once on one image: shapes, multiply-adds, and receptive fields through the
    /// windowed ops (convs, pools, pads), a whole-image field after any op that mixes positions otherwise.
    static func trace(_ graph: ONNXGraph, size: Int, channelsLast: Bool = false) throws -> [LayerInfo] {
        let values = try GradMode.withoutGrad { try graph.trace(Tensor(zeros: channelsLast ? [1, size, size, 3] : [1, 3, size, size])) }
        struct Field { var rf: Int; var jump: Int; var start: Double }
        var fields: [String: Field] = [graph.input: Field(rf: 1, jump: 1, start: 0)]
        let whole = Field(rf: size, jump: size, start: Double(size - 1) / 2)
        var rows: [LayerInfo] = []
        for node in graph.nodes {
            guard let outName = node.outputs.first, case .float? = values[outName], let out = values[outName] else { continue }
            let shape = Array(out.shape.dropFirst())
            let inField = node.inputs.first.flatMap { fields[$0] } ?? whole
            var field = inField, macs = 0
            let kind: LayerInfo.Kind
            let inShape = node.inputs.first.flatMap { values[$0]?.shape } ?? []
            switch node.opType {
            case "Conv", "MaxPool", "AveragePool":
                kind = node.opType == "Conv" ? .conv : .pool
                let kernel: [Int]
                if node.opType == "Conv", let w = values[node.inputs[1]] ?? graph.constants[node.inputs[1]] {
                    kernel = Array(w.shape.dropFirst(2))
                    macs = shape.reduce(1, *) * w.shape.dropFirst().reduce(1, *)
                } else { kernel = ONNXOps.ints(node, "kernel_shape") ?? [1] }
                if let g = try? ONNXOps.window(node, input: inShape, kernel: kernel), shape.count == 3 {
                    // Saturated at the input size: a field never exceeds the image it is drawn on.
                    let extent = (max(g.kernel.0, g.kernel.1) - 1) * g.dilation + 1
                    let rf = min(inField.rf + (extent - 1) * min(inField.jump, size), 1 << 20)
                    field = Field(rf: rf, jump: min(inField.jump * g.stride, 1 << 20),
                                  start: inField.start + (Double(extent - 1) / 2 - Double(g.pads.0)) * Double(inField.jump))
                } else { field = whole }
            case "Gemm", "MatMul":
                kind = .linear
                macs = shape.reduce(1, *) * (inShape.last ?? 0)
                field = whole
            case "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish": kind = .activation
            case "BatchNormalization": kind = .batchNorm
            case "Add", "Sub", "Mul", "Div":
                kind = .add
                let wider = node.inputs.compactMap { fields[$0] }.max { $0.rf < $1.rf }
                field = wider ?? inField
            case "Concat":
                kind = .concat
                field = node.inputs.compactMap { fields[$0] }.max { $0.rf < $1.rf } ?? inField
            case "Pad":
                kind = .pad
                if let pads = try? ONNXOps.intList(node.inputs.count > 1 ? (values[node.inputs[1]] ?? graph.constants[node.inputs[1]]) : nil, "pads"), pads.count == 8 {
                    field.start = inField.start - Double(pads[2]) * Double(inField.jump)
                }
            case "GlobalAveragePool", "ReduceMean": kind = .pool; field = whole
            case "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze": kind = .flatten; if shape.count != 3 { field = whole }
            case "Softmax": kind = .softmax
            case "Dropout", "Identity": kind = .dropout
            default: kind = .activation
            }
            if shape.count != 3 && shape.count != 1 { field = whole }
            fields[outName] = field
            rows.append(LayerInfo(name: node.name, kind: kind, op: node.opType, shape: shape.isEmpty ? [1] : shape,
                                  receptiveField: field.rf, jump: field.jump, start: field.start, multiplyAdds: macs))
        }
        return rows
    }
}

/// `--model file.onnx`.
public enum ONNXImport {
    public static func load(_ url: URL, preprocess: Preprocessing.Mode?) throws -> ONNXModel {
        do {
            let graph = try ONNXGraph(contentsOf: url)
            return try ONNXModel(graph: graph, file: url, sha256: try FileHash.sha256(url), preprocess: preprocess)
        } catch let e as ONNXError {
            throw ModelLoadError("\(url.lastPathComponent): \(e.message)")
        }
    }
}
