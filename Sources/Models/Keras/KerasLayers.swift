import Engine

/// One Keras layer as Keras knows it: its name, class, the layers it reads, and its variables in Keras' order
/// (as our parameter names, each with how its Keras layout becomes ours).
public struct KerasLayer: Sendable, Equatable {
    public enum Role: String, Sendable { case convKernel, depthwiseKernel, denseKernel, vector }
    public var name: String
    public var className: String
    public var inputs: [String]
    public var variables: [(parameter: String, role: Role)]

    public static func == (a: KerasLayer, b: KerasLayer) -> Bool {
        a.name == b.name && a.className == b.className && a.inputs == b.inputs
            && a.variables.map(\.parameter) == b.variables.map(\.parameter) && a.variables.map(\.role) == b.variables.map(\.role)
    }

    /// Keras' `naming.to_snake_case` of the class (what a Keras 3 `.weights.h5` calls the layer).
    public var snakeClass: String { KerasLayer.snakeCase(className) }

    static func snakeCase(_ s: String) -> String {
        // re.sub("(.)([A-Z][a-z]+)", r"\1_\2", s); re.sub("([a-z])([A-Z])", r"\1_\2", s).lower()
        let c = Array(s)
        var a: [Character] = []
        for (i, ch) in c.enumerated() {
            if i > 0, ch.isUppercase, i + 1 < c.count, c[i + 1].isLowercase, !(a.last == "_") { a.append("_") }
            a.append(ch)
        }
        var b: [Character] = []
        for (i, ch) in a.enumerated() {
            if i > 0, ch.isUppercase, a[i - 1].isLowercase, a[i - 1].isLetter { b.append("_") }
            b.append(ch)
        }
        return String(b).lowercased()
    }
}

/// Keras' activations the engine has (`activation=` of a layer, or an `Activation`/`ReLU` layer).
public enum KerasActivation: Equatable, Sendable {
    case linear, softmax, kind(ActivationKind)

    public init?(_ name: String) {
        switch name {
        case "linear": self = .linear
        case "softmax": self = .softmax
        case "relu": self = .kind(.relu)
        case "relu6": self = .kind(.relu6)
        case "sigmoid": self = .kind(.sigmoid)
        case "swish", "silu": self = .kind(.swish)
        case "hard_swish", "hard_silu": self = .kind(.hardSwish)
        case "hard_sigmoid": self = .kind(.hardSigmoid)
        default: return nil
        }
    }
}

/// Builds a graph layer by layer in Keras' own terms and names — used by the zoo's Keras forms and by the `.keras`
/// importer, so both give the same nodes. A layer's output is the node of its name; a layer with an activation
/// inside gets its pre-activation node as `NAME/BiasAdd` (TensorFlow's name for it; `NAME/Conv2D`, `NAME/MatMul`
/// or `NAME/depthwise` without a bias).
public struct KerasGraphBuilder {
    public private(set) var graph = GraphBuilder()
    public private(set) var layers: [KerasLayer] = []
    /// Channels of each value (for depthwise convs' filter count).
    private var channels: [String: Int]
    public var last: String { graph.last }

    public init(inputName: String = "input_layer", channels: Int = 3) {
        graph = GraphBuilder(input: inputName)
        self.channels = [inputName: channels]
    }

    public func channels(of value: String) -> Int? { channels[value] }

    private mutating func record(_ name: String, _ className: String, inputs: [String], _ vars: [(String, KerasLayer.Role)] = []) {
        layers.append(KerasLayer(name: name, className: className, inputs: inputs, variables: vars.map { (parameter: $0.0, role: $0.1) }))
    }

    private mutating func finish(_ name: String, pre: String, activation: KerasActivation, channels c: Int?) {
        switch activation {
        case .linear: break
        case .softmax: graph.add(name, .softmax, inputs: [pre])
        case .kind(let k): graph.activation(name, k, input: pre)
        }
        channels[pre] = c; channels[name] = c
    }

    static func padding(_ p: String, layer: String) throws -> WindowPadding {
        switch p.lowercased() {
        case "same": return .same
        case "valid": return .valid
        default: throw GraphError(node: layer, reason: "padding '\(p)' (Keras has same or valid)")
        }
    }

    public mutating func conv2D(_ name: String, filters: Int, kernel: Int, stride: Int = 1, dilation: Int = 1, padding: WindowPadding = .valid,
                                useBias: Bool = true, activation: KerasActivation = .linear, input: String? = nil) {
        let src = input ?? last
        let pre = activation == .linear ? name : name + (useBias ? "/BiasAdd" : "/Conv2D")
        let params = [name + ".kernel"] + (useBias ? [name + ".bias"] : [])
        graph.add(pre, .conv(filters: filters, kernel: kernel, stride: stride, dilation: dilation, groups: 1, padding: padding), inputs: [src], parameters: params)
        record(name, "Conv2D", inputs: [src], [(name + ".kernel", .convKernel)] + (useBias ? [(name + ".bias", .vector)] : []))
        finish(name, pre: pre, activation: activation, channels: filters)
    }

    public mutating func depthwiseConv2D(_ name: String, kernel: Int, stride: Int = 1, dilation: Int = 1, multiplier: Int = 1,
                                         padding: WindowPadding = .valid, useBias: Bool = true, activation: KerasActivation = .linear,
                                         input: String? = nil) throws {
        let src = input ?? last
        guard let cin = channels[src] else { throw GraphError(node: name, reason: "depthwise conv on a value of unknown channels") }
        let pre = activation == .linear ? name : name + (useBias ? "/BiasAdd" : "/depthwise")
        let params = [name + ".depthwise_kernel"] + (useBias ? [name + ".bias"] : [])
        graph.add(pre, .conv(filters: cin * multiplier, kernel: kernel, stride: stride, dilation: dilation, groups: cin, padding: padding),
                  inputs: [src], parameters: params)
        record(name, "DepthwiseConv2D", inputs: [src], [(name + ".depthwise_kernel", .depthwiseKernel)] + (useBias ? [(name + ".bias", .vector)] : []))
        finish(name, pre: pre, activation: activation, channels: cin * multiplier)
    }

    public mutating func batchNorm(_ name: String, eps: Float, input: String? = nil) {
        let src = input ?? last
        let vars = ["gamma", "beta", "moving_mean", "moving_variance"].map { name + "." + $0 }
        graph.add(name, .batchNorm(eps: eps), inputs: [src], parameters: vars)
        record(name, "BatchNormalization", inputs: [src], vars.map { ($0, .vector) })
        channels[name] = channels[src]
    }

    /// An `Activation` layer (or `ReLU`, `Softmax`: the class is what the file says).
    public mutating func activation(_ name: String, _ a: KerasActivation, className: String = "Activation", input: String? = nil) {
        let src = input ?? last
        switch a {
        case .linear: graph.add(name, .dropout(rate: 0), inputs: [src])  // identity, kept for its name
        case .softmax: graph.add(name, .softmax, inputs: [src])
        case .kind(let k): graph.activation(name, k, input: src)
        }
        record(name, className, inputs: [src])
        channels[name] = channels[src]
    }

    public mutating func zeroPadding(_ name: String, top: Int, bottom: Int, left: Int, right: Int, input: String? = nil) {
        let src = input ?? last
        graph.add(name, .pad(top: top, left: left, bottom: bottom, right: right), inputs: [src])
        record(name, "ZeroPadding2D", inputs: [src])
        channels[name] = channels[src]
    }

    public mutating func maxPool(_ name: String, pool: Int, stride: Int, padding: WindowPadding = .valid, input: String? = nil) {
        let src = input ?? last
        graph.add(name, .maxPool(kernel: pool, stride: stride, padding: padding), inputs: [src])
        record(name, "MaxPooling2D", inputs: [src])
        channels[name] = channels[src]
    }

    public mutating func averagePool(_ name: String, pool: Int, stride: Int, padding: WindowPadding = .valid, input: String? = nil) {
        let src = input ?? last
        graph.add(name, .avgPool(kernel: pool, stride: stride, padding: padding, countPadding: false), inputs: [src])
        record(name, "AveragePooling2D", inputs: [src])
        channels[name] = channels[src]
    }

    public mutating func globalAveragePool(_ name: String, input: String? = nil) {
        let src = input ?? last
        graph.add(name, .globalAveragePool, inputs: [src])
        record(name, "GlobalAveragePooling2D", inputs: [src])
        channels[name] = channels[src]
    }

    public mutating func flatten(_ name: String, input: String? = nil) {
        let src = input ?? last
        graph.add(name, .flatten(channelsLast: true), inputs: [src])
        record(name, "Flatten", inputs: [src])
    }

    public mutating func dense(_ name: String, units: Int, useBias: Bool = true, activation: KerasActivation = .linear, input: String? = nil) {
        let src = input ?? last
        let pre = activation == .linear ? name : name + (useBias ? "/BiasAdd" : "/MatMul")
        let params = [name + ".kernel"] + (useBias ? [name + ".bias"] : [])
        graph.add(pre, .dense(units: units), inputs: [src], parameters: params)
        record(name, "Dense", inputs: [src], [(name + ".kernel", .denseKernel)] + (useBias ? [(name + ".bias", .vector)] : []))
        finish(name, pre: pre, activation: activation, channels: units)
    }

    public mutating func dropout(_ name: String, rate: Float, input: String? = nil) {
        let src = input ?? last
        graph.add(name, .dropout(rate: rate), inputs: [src])
        record(name, "Dropout", inputs: [src])
        channels[name] = channels[src]
    }

    public mutating func add(_ name: String, inputs: [String]) {
        graph.add(name, .add, inputs: inputs)
        record(name, "Add", inputs: inputs)
        channels[name] = channels[inputs[0]]
    }

    public mutating func concatenate(_ name: String, inputs: [String]) {
        graph.add(name, .concat, inputs: inputs)
        record(name, "Concatenate", inputs: inputs)
        let cs = inputs.compactMap { channels[$0] }
        channels[name] = cs.count == inputs.count ? cs.reduce(0, +) : nil
    }

    public func build() -> Graph { graph.build() }

    /// The layers in the order Keras' `Functional` lists them (`model.layers`, hence a `.weights.h5`'s numbering):
    /// keras/src/ops/function.py `map_graph` — depth from the output, ties by first visit of a depth-first walk
    /// from the output through each layer's inputs in order.
    public func kerasOrder(output: String) -> [KerasLayer] {
        let byName = Dictionary(uniqueKeysWithValues: layers.map { ($0.name, $0) })
        var index: [String: Int] = [:], finished: [String] = [], done = Set<String>()
        func visit(_ n: String) {
            guard let l = byName[n], !done.contains(n) else { return }
            if index[n] == nil { index[n] = index.count }
            for i in l.inputs { visit(i) }
            done.insert(n); finished.append(n)
        }
        visit(output)
        var depth: [String: Int] = [:]
        for n in finished.reversed() {
            let d = depth[n, default: 0]
            for p in byName[n]!.inputs where byName[p] != nil { depth[p] = max(depth[p, default: 0], d + 1) }
        }
        return layers.filter { index[$0.name] != nil }.sorted {
            let (a, b) = (depth[$0.name, default: 0], depth[$1.name, default: 0])
            return a != b ? a > b : index[$0.name]! < index[$1.name]!
        }
    }
}
