import Engine
import Foundation

/// What a model is, apart from its graph: identity, input, labels and the layers features default to.
public struct ModelSpec: Codable, Sendable, Equatable {
    /// Built-in architecture name (`lite0`, `vgg16`, …) or `graph` for an imported or bundled one.
    public var architecture: String
    /// SHA-256 of the weights as they were read (of the file, or of a bundle's safetensors).
    public var weightsSHA256: String
    /// Where the weights came from (path), for people.
    public var weightsFile: String
    public var inputSize: Int
    public var preprocessing: Preprocessing
    public var labels: [String]
    /// The node that holds the class scores before softmax, and the pooled feature vector.
    public var logits: String
    public var embedding: String
    /// Default layer of `vizlab layer` / dream, and the layers a gallery shows by default.
    public var defaultLayer: String
    public var galleryLayers: [String]
    /// The outputs of the network's blocks, in order (what `vizlab index` records by default).
    public var blocks: [String]

    /// Architecture + the start of the weights' hash: what sidecars, the gallery and the index record.
    public var id: String { "\(architecture)@\(weightsSHA256.prefix(16))" }

    public init(architecture: String, weightsSHA256: String, weightsFile: String, inputSize: Int, preprocessing: Preprocessing,
                labels: [String], logits: String, embedding: String, defaultLayer: String, galleryLayers: [String], blocks: [String]) {
        self.architecture = architecture; self.weightsSHA256 = weightsSHA256; self.weightsFile = weightsFile
        self.inputSize = inputSize; self.preprocessing = preprocessing; self.labels = labels; self.logits = logits
        self.embedding = embedding; self.defaultLayer = defaultLayer; self.galleryLayers = galleryLayers; self.blocks = blocks
    }
}

/// The one way every feature (render, attack, index, gallery, bench) sees a network: a spec, its layers by name,
/// and a forward pass that returns the named activations asked for, running no deeper than they need.
public protocol VisionModel: AnyObject, Sendable {
    var spec: ModelSpec { get }
    /// Every layer a user can name, at the model's input size, in graph order.
    var layers: [LayerInfo] { get }
    /// Labels as a lookup table (names, synonyms).
    var labels: ImageNetLabels { get }
    /// The named activations in `capture` (a name not in `layers` is a programming error: validate first).
    func forward(_ x: Tensor, capture: Set<String>) -> [String: Tensor]
    /// The checkpoint's tensors by their own names (for training: freeze or update by name).
    var namedParameters: [(name: String, tensor: Tensor)] { get }
    /// Layer rows at another input size (for renders and views at other sizes).
    func layers(height: Int, width: Int) throws -> [LayerInfo]
}

public enum LayerLookupError: Error, CustomStringConvertible {
    case unknown(String, model: String, nearest: [String])
    public var description: String {
        switch self {
        case let .unknown(name, model, nearest):
            return "unknown layer '\(name)' in \(model); nearest valid names: \(nearest.joined(separator: ", ")) (see `vizlab layers --model \(model)`)"
        }
    }
}

extension VisionModel {
    public var inputSize: Int { spec.inputSize }
    public var preprocessing: Preprocessing { spec.preprocessing }

    /// Logits [N, classes].
    public func callAsFunction(_ x: Tensor) -> Tensor { forward(x, capture: [spec.logits])[spec.logits]! }

    public func layerInfo(named name: String) -> LayerInfo? { layers.first { $0.name == name } }

    /// Validates a user-typed layer name, suggesting the nearest valid ones.
    public func resolveLayer(_ name: String) throws -> LayerInfo {
        if let info = layerInfo(named: name) { return info }
        let nearest = layers.map(\.name).sorted { editDistance($0, name) < editDistance($1, name) }.prefix(4)
        throw LayerLookupError.unknown(name, model: spec.architecture == "graph" ? spec.weightsFile : spec.architecture, nearest: Array(nearest))
    }

    /// Refuses an input size the graph cannot take (too small for its pools, or a flatten → dense that needs its own size).
    public func checkInputSize(height: Int, width: Int) throws {
        do { _ = try layers(height: height, width: width) } catch {
            throw GraphError(node: spec.architecture, reason: "cannot take a \(width)×\(height) input (\(error))")
        }
    }

    /// Multiply-adds of one forward pass at `size`×`size` (convs and dense layers).
    public func multiplyAdds(size: Int? = nil) -> Int {
        let rows = size.flatMap { try? layers(height: $0, width: $0) } ?? layers
        return rows.filter { $0.kind == .conv || $0.kind == .linear }.map(\.multiplyAdds).reduce(0, +)
    }

    /// The top `k` classes of each row of `logits` [N, classes], by softmax probability.
    public func topK(_ logits: Tensor, k: Int) -> [[ClassScore]] {
        let probs = GradMode.withoutGrad { softmax(logits.detached()) }
        let width = logits.shape[1]
        return (0..<logits.shape[0]).map { row in
            let base = row * width
            let order = (0..<width).sorted { probs.data[base + $0] > probs.data[base + $1] }
            return order.prefix(max(0, min(k, width))).map { i in
                ClassScore(index: i, name: i < labels.count ? labels.names[i] : "class \(i)",
                           probability: probs.data[base + i], logit: logits.data[base + i])
            }
        }
    }

    /// Turns gradient tracking on or off for every parameter (off by default: only the input needs it).
    public func setParametersRequireGrad(_ on: Bool) { for p in namedParameters { p.tensor.requiresGrad = on } }

    public func parameter(named name: String) -> Tensor? { namedParameters.first { $0.name == name }?.tensor }

    /// The layer whose Gram matrices keep a diversity set apart when the objective has no spatial layer of its own:
    /// the block three quarters of the way up (Lite0: blocks.12).
    public var diversityLayer: String {
        let spatial = spec.blocks.filter { layerInfo(named: $0)?.isSpatial == true }
        return spatial.isEmpty ? spec.defaultLayer : spatial[spatial.count * 3 / 4]
    }

    /// Class lookup over this model's labels (WordNet groups only for ImageNet-1k labels).
    public func classLookup() -> ClassLookup { ClassLookup(labels: labels, wordNet: labels.isImageNet1k ? try? WordNet() : nil) }
}

/// One ranked class of a prediction.
public struct ClassScore: Codable, Sendable, Equatable {
    public var index: Int
    public var name: String
    public var probability: Float
    public var logit: Float
}

/// A model whose graph is data, run by the interpreter.
public final class GraphModel: VisionModel, @unchecked Sendable {
    public let spec: ModelSpec
    public let graph: Graph
    public let layers: [LayerInfo]
    public let labels: ImageNetLabels
    public let namedParameters: [(name: String, tensor: Tensor)]
    let interpreter: Interpreter

    /// Checks the graph and every parameter's shape (shape inference at the spec's input size) before anything runs.
    public init(spec: ModelSpec, graph: Graph, weights: [String: Tensor]) throws {
        guard (16...4096).contains(spec.inputSize) else { throw GraphError(node: graph.input, reason: "input size \(spec.inputSize) is out of range (16…4096)") }
        let p = spec.preprocessing
        guard p.crop == spec.inputSize, (p.crop...8192).contains(p.resize) else {
            throw GraphError(node: graph.input, reason: "preprocessing resizes to \(p.resize) and crops \(p.crop) for a \(spec.inputSize)² input")
        }
        try graph.validate()
        for n in [spec.logits, spec.embedding, spec.defaultLayer] + spec.galleryLayers + spec.blocks where graph.node(named: graph.resolve(n)) == nil {
            throw GraphError(node: n, reason: "named in the model's spec but not in its graph")
        }
        self.spec = spec
        self.graph = graph
        layers = try ShapeInference.layers(of: graph, height: spec.inputSize, width: spec.inputSize,
                                           parameterShapes: weights.mapValues(\.shape))
        let classes = layers.first { $0.name == spec.logits }!.shape
        guard classes == [spec.labels.count] else {
            throw GraphError(node: spec.logits, reason: "gives \(classes) scores for \(spec.labels.count) labels")
        }
        labels = spec.labels == ImageNetLabels.shared.lines ? .shared : ImageNetLabels(lines: spec.labels)
        var seen = Set<String>()
        namedParameters = graph.parameterNames.filter { seen.insert($0).inserted }.map { ($0, weights[$0]!) }
        interpreter = Interpreter(graph: graph, weights: Dictionary(uniqueKeysWithValues: namedParameters.map { ($0.name, $0.tensor) }))
    }

    /// Drops the cached inference plans and BN-folded weights: call after changing parameters in place.
    public func parametersChanged() { interpreter.invalidate() }

    /// How this model's convolutions are computed: `.fastest` (Winograd for 3×3 stride-1 convs), or `.direct`
    /// (im2col + gemm throughout; the reference Winograd's accuracy is measured against).
    public var convolution: ConvAlgorithm {
        get { interpreter.convolution.algorithm }
        set { interpreter.convolution.algorithm = newValue }
    }

    public func forward(_ x: Tensor, capture: Set<String>) -> [String: Tensor] {
        precondition(x.rank == 4 && x.shape[1] == 3, "model input must be [N, 3, H, W], got \(x.shape)")
        for name in capture { precondition(layerInfo(named: name) != nil, "unknown layer \(name)") }
        return interpreter.forward(x, capture: capture)
    }

    /// A forward pass in training mode (dropout drops; trainable batch norms may use batch statistics), or from
    /// values other than the image: `given` names a cut through the graph (cached features, a frozen part's output).
    public func forward(_ given: [String: Tensor], capture: Set<String>, mode: RunMode) -> [String: Tensor] {
        for name in capture { precondition(layerInfo(named: name) != nil, "unknown layer \(name)") }
        return interpreter.forward(Dictionary(uniqueKeysWithValues: given.map { (graph.resolve($0.key), $0.value) }), capture: capture, mode: mode)
    }

    public func layers(height: Int, width: Int) throws -> [LayerInfo] {
        if height == spec.inputSize && width == spec.inputSize { return layers }
        return try ShapeInference.layers(of: graph, height: height, width: width, parameterShapes: interpreter.weights.mapValues(\.shape))
    }
}
