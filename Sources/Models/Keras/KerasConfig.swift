import Engine
import Foundation

/// A Keras 3 `config.json` (the `.keras` archive's layer graph) → a graph, for the layer types the engine has; any
/// other layer is refused naming it and its class (a `Lambda` holds Python code, which vizlab never runs).
public enum KerasConfig {
    struct Refused: Error, CustomStringConvertible { var description: String }

    public struct Imported {
        public var name: String
        public var graph: Graph
        /// Layers in `model.layers` order (the weights file numbers them so).
        public var layers: [KerasLayer]
        public var inputSize: Int
        public var output: String
        /// The output layer's pre-softmax value when it ends in a softmax (the logits), else the output.
        public var logits: String
        /// The last dense layer's input (the embedding), else the output.
        public var embedding: String
    }

    /// Largest config read (bytes) and layer count.
    static let maxBytes = 64 << 20, maxLayers = 100_000

    public static func build(json data: Data) throws -> Imported {
        guard data.count <= maxBytes else { throw Refused(description: "config.json is \(data.count) bytes (more than \(maxBytes))") }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw Refused(description: "config.json is not a JSON object")
        }
        let cls = root["class_name"] as? String ?? "?"
        guard ["Functional", "Model", "Sequential"].contains(cls), let config = root["config"] as? [String: Any] else {
            throw Refused(description: "the model is a \(cls), not a Functional or Sequential model")
        }
        guard let layers = config["layers"] as? [[String: Any]], layers.count <= maxLayers else { throw Refused(description: "config.json has no layer list") }
        let modelName = config["name"] as? String ?? "keras_model"
        var b: KerasGraphBuilder?
        var inputSize = 0, previous: String?
        var outputs: [String] = (config["output_layers"] as? [Any]).map(historyNames) ?? []
        for layer in layers {
            let lc = layer["config"] as? [String: Any] ?? [:]
            let className = layer["class_name"] as? String ?? "?"
            guard let name = (layer["name"] as? String) ?? (lc["name"] as? String), !name.isEmpty, name.count < 1024 else {
                throw Refused(description: "a \(className) layer has no name")
            }
            func fail(_ why: String) -> Refused { Refused(description: "layer '\(name)' (\(className)): \(why)") }
            var inputs = historyNames(layer["inbound_nodes"] ?? [])
            if className == "InputLayer" {
                guard b == nil else { throw fail("a second input (vizlab runs one image input)") }
                let shape = (lc["batch_shape"] ?? lc["batch_input_shape"]) as? [Any] ?? []
                let dims = shape.map { ($0 as? Int) ?? 0 }
                guard dims.count == 4 else { throw fail("input shape \(dims) is not [batch, height, width, channels]") }
                guard dims[3] == 3 else { throw fail("input has \(dims[3]) channels; vizlab feeds RGB images") }
                guard dims[1] == dims[2] || dims[1] == 0 || dims[2] == 0 else { throw fail("input is \(dims[1])×\(dims[2]); vizlab takes square inputs") }
                inputSize = max(dims[1], dims[2]) > 0 ? max(dims[1], dims[2]) : 224
                guard (8...4096).contains(inputSize) else { throw fail("input size \(inputSize) is out of range") }
                b = KerasGraphBuilder(inputName: name)
                previous = name
                continue
            }
            if b == nil, cls == "Sequential" {
                // A Sequential config may state its input on the first layer.
                b = KerasGraphBuilder(inputName: "input_layer")
                inputSize = 224
                previous = "input_layer"
            }
            guard var k = b else { throw fail("comes before the model's InputLayer") }
            if inputs.isEmpty, cls == "Sequential", let p = previous { inputs = [p] }
            guard !inputs.isEmpty else { throw fail("has no inbound layer") }
            if lc["data_format"] as? String == "channels_first" { throw fail("data_format channels_first (vizlab imports channels_last Keras models)") }
            let one = inputs[0]
            func int(_ key: String, _ def: Int? = nil) throws -> Int {
                if let v = lc[key] as? Int { return v }
                if let d = def { return d }
                throw fail("missing \(key)")
            }
            func square(_ key: String, _ def: Int) throws -> Int {
                guard let v = lc[key] else { return def }
                if let i = v as? Int { return i }
                if let a = v as? [Int], let f = a.first, a.allSatisfy({ $0 == f }) { return f }
                if let a = v as? [Int] { throw fail("\(key) \(a) is not square (vizlab's convs and pools are square)") }
                throw fail("\(key) is not a number")
            }
            func activation(_ key: String = "activation") throws -> KerasActivation {
                guard let v = lc[key] else { return .linear }
                guard let s = v as? String else { throw fail("a custom activation object") }
                guard let a = KerasActivation(s) else { throw fail("activation '\(s)' (vizlab has relu, relu6, sigmoid, swish, hard_swish, hard_sigmoid, softmax, linear)") }
                return a
            }
            func padding() throws -> WindowPadding {
                do { return try KerasGraphBuilder.padding(lc["padding"] as? String ?? "valid", layer: name) } catch { throw fail("padding \(lc["padding"] ?? "")") }
            }
            func checkRange(_ v: Int, _ what: String, _ r: ClosedRange<Int>) throws { guard r.contains(v) else { throw fail("\(what) \(v) is out of range") } }
            switch className {
            case "Conv2D":
                guard try int("groups", 1) == 1 else { throw fail("grouped Conv2D") }
                let filters = try int("filters"), kernel = try square("kernel_size", 1), stride = try square("strides", 1), dilation = try square("dilation_rate", 1)
                try checkRange(filters, "filters", 1...(1 << 20)); try checkRange(kernel, "kernel", 1...1024)
                try checkRange(stride, "stride", 1...1024); try checkRange(dilation, "dilation", 1...1024)
                k.conv2D(name, filters: filters, kernel: kernel, stride: stride, dilation: dilation, padding: try padding(),
                         useBias: lc["use_bias"] as? Bool ?? true, activation: try activation(), input: one)
            case "DepthwiseConv2D":
                let kernel = try square("kernel_size", 1), stride = try square("strides", 1), dilation = try square("dilation_rate", 1)
                let mult = try int("depth_multiplier", 1)
                try checkRange(kernel, "kernel", 1...1024); try checkRange(stride, "stride", 1...1024)
                try checkRange(dilation, "dilation", 1...1024); try checkRange(mult, "depth multiplier", 1...4096)
                try k.depthwiseConv2D(name, kernel: kernel, stride: stride, dilation: dilation, multiplier: mult, padding: try padding(),
                                      useBias: lc["use_bias"] as? Bool ?? true, activation: try activation(), input: one)
            case "BatchNormalization":
                let axis = (lc["axis"] as? Int) ?? ((lc["axis"] as? [Int])?.first ?? -1)
                guard axis == -1 || axis == 3 else { throw fail("normalizes axis \(axis), not the channels") }
                guard lc["center"] as? Bool ?? true, lc["scale"] as? Bool ?? true else { throw fail("center=False or scale=False") }
                k.batchNorm(name, eps: Float(lc["epsilon"] as? Double ?? 1e-3), input: one)
            case "Activation":
                k.activation(name, try activation(), input: one)
            case "ReLU":
                let maxValue = lc["max_value"] as? Double, slope = lc["negative_slope"] as? Double ?? 0, threshold = lc["threshold"] as? Double ?? 0
                guard slope == 0, threshold == 0 else { throw fail("negative_slope or threshold (vizlab has ReLU and ReLU6)") }
                switch maxValue {
                case nil: k.activation(name, .kind(.relu), className: "ReLU", input: one)
                case 6?: k.activation(name, .kind(.relu6), className: "ReLU", input: one)
                default: throw fail("max_value \(maxValue!) (vizlab has ReLU and ReLU6)")
                }
            case "Softmax":
                k.activation(name, .softmax, className: "Softmax", input: one)
            case "ZeroPadding2D":
                let p = lc["padding"]
                var t = 0, bo = 0, l = 0, r = 0
                if let i = p as? Int { (t, bo, l, r) = (i, i, i, i) }
                else if let a = p as? [Int], a.count == 2 { (t, bo, l, r) = (a[0], a[0], a[1], a[1]) }
                else if let a = p as? [[Int]], a.count == 2, a[0].count == 2, a[1].count == 2 { (t, bo, l, r) = (a[0][0], a[0][1], a[1][0], a[1][1]) }
                else { throw fail("padding \(p ?? "none")") }
                for v in [t, bo, l, r] { try checkRange(v, "padding", 0...4096) }
                k.zeroPadding(name, top: t, bottom: bo, left: l, right: r, input: one)
            case "MaxPooling2D", "AveragePooling2D":
                let pool = try square("pool_size", 2)
                let stride = lc["strides"] is NSNull ? pool : try square("strides", pool)
                try checkRange(pool, "pool size", 1...1024); try checkRange(stride, "stride", 1...1024)
                if className == "MaxPooling2D" { k.maxPool(name, pool: pool, stride: stride, padding: try padding(), input: one) }
                else { k.averagePool(name, pool: pool, stride: stride, padding: try padding(), input: one) }
            case "GlobalAveragePooling2D":
                guard !(lc["keepdims"] as? Bool ?? false) else { throw fail("keepdims=True") }
                k.globalAveragePool(name, input: one)
            case "Flatten":
                k.flatten(name, input: one)
            case "Dense":
                let units = try int("units")
                try checkRange(units, "units", 1...(1 << 24))
                k.dense(name, units: units, useBias: lc["use_bias"] as? Bool ?? true, activation: try activation(), input: one)
            case "Dropout", "SpatialDropout2D", "GaussianDropout", "GaussianNoise":
                k.dropout(name, rate: Float(lc["rate"] as? Double ?? 0), input: one)
            case "Add":
                guard inputs.count >= 2 else { throw fail("adds \(inputs.count) input") }
                k.add(name, inputs: inputs)
            case "Concatenate":
                let total = inputs.compactMap { k.channels(of: $0) }.reduce(0) { $0 &+ $1 }
                guard total <= 1 << 20 else { throw fail("concatenates \(total) channels") }
                let axis = lc["axis"] as? Int ?? -1
                guard axis == -1 || axis == 3 else { throw fail("concatenates axis \(axis), not the channels") }
                k.concatenate(name, inputs: inputs)
            case "Lambda":
                throw fail("a Lambda layer holds Python code, which vizlab does not run")
            default:
                throw fail("vizlab has no \(className) layer (it imports Conv2D, DepthwiseConv2D, BatchNormalization, Activation, ReLU, Softmax, ZeroPadding2D, Max/AveragePooling2D, GlobalAveragePooling2D, Flatten, Dense, Dropout, Add, Concatenate)")
            }
            if inputs.count > 1, !["Add", "Concatenate"].contains(className) { throw fail("has \(inputs.count) inputs") }
            b = k
            previous = name
        }
        guard let k = b else { throw Refused(description: "config.json has no layers") }
        if outputs.isEmpty, let p = previous { outputs = [p] }
        guard outputs.count == 1, let output = outputs.first else { throw Refused(description: "the model has \(outputs.count) outputs; vizlab takes one") }
        let graph = k.build()
        do { try graph.validate() } catch { throw Refused(description: "config.json: \(error)") }
        guard let outLayer = k.layers.first(where: { $0.name == output }) else { throw Refused(description: "output layer '\(output)' is not in the layer list") }
        var logits = output
        if let node = graph.node(named: output), node.op == .softmax { logits = node.inputs[0] }
        _ = outLayer
        let denses = graph.nodes.filter { if case .dense = $0.op { return true }; return false }
        let embedding = denses.last.map { d in graph.resolve(d.inputs[0]) } ?? output
        // Weights file numbering follows the config's layer order (which is `model.layers`).
        let byName = Dictionary(uniqueKeysWithValues: k.layers.map { ($0.name, $0) })
        let ordered = layers.compactMap { l in ((l["name"] as? String) ?? ((l["config"] as? [String: Any])?["name"] as? String)).flatMap { byName[$0] } }
        return Imported(name: modelName, graph: graph, layers: ordered, inputSize: inputSize, output: output, logits: logits, embedding: embedding)
    }

    /// Layer names of `keras_history` entries anywhere in an inbound-nodes structure (Keras 3's
    /// `{"args": [{"config": {"keras_history": [name, 0, 0]}}]}` and the legacy `[[name, 0, 0, {}]]`).
    static func historyNames(_ value: Any) -> [String] {
        var out: [String] = []
        func walk(_ v: Any, depth: Int) {
            guard depth < 64 else { return }
            if let d = v as? [String: Any] {
                if let h = d["keras_history"] as? [Any], let n = h.first as? String { out.append(n); return }
                for key in ["args", "config"] { if let x = d[key] { walk(x, depth: depth + 1) } }
            } else if let a = v as? [Any] {
                if a.count >= 3, let n = a[0] as? String, a[1] is Int, a[2] is Int { out.append(n); return }
                for x in a { walk(x, depth: depth + 1) }
            }
        }
        walk(value, depth: 0)
        return out
    }
}
