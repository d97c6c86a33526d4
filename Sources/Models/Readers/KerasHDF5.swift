import Engine
import Foundation

/// Keras weight files through libhdf5: the legacy layouts `keras.applications` downloads (Keras 1's
/// `block3_conv2_W_1:0`, tf.keras 2's `block3_conv2/kernel:0`, Keras 3's legacy writer's `block3_conv2/kernel`, each
/// also under `model_weights/` in a full-model file) and Keras 3's `.weights.h5` (`layers/<layer>/vars/<i>`, no
/// variable names). Weight names come from each layer's `weight_names` attribute, never guessed; kernels are turned
/// from Keras' layouts into the engine's.
public enum KerasHDF5 {
    public enum Layout: String, Sendable { case keras1 = "Keras 1", tfKeras2 = "tf.keras 2", keras3Legacy = "Keras 3 legacy", keras3 = "Keras 3 .weights.h5" }

    /// One layer's tensors in file order, as Keras stores them.
    public struct Layer { public var name: String; public var weights: [(name: String, shape: [Int], data: [Float])] }

    public struct File {
        public var layout: Layout
        public var layers: [Layer]
        /// A full-model file's `model_config` attribute (JSON), when present.
        public var modelConfig: String?
        public var fullModel: Bool
    }

    struct Refused: Error, CustomStringConvertible { var description: String }

    public static func read(path: String) throws -> File {
        let h5 = try open { try HDF5File(path: path) }
        return try read(h5)
    }

    public static func read(image: [UInt8], name: String) throws -> File {
        let h5 = try open { try HDF5File(image: image, name: name) }
        return try read(h5)
    }

    static func open(_ body: () throws -> HDF5File) throws -> HDF5File {
        do { return try body() } catch let e as HDF5File.Failure { throw Refused(description: e.message) }
    }

    static func read(_ h5: HDF5File) throws -> File {
        do {
            if h5.kind("/layers") == .group, !h5.hasAttribute("/", "layer_names"), h5.kind("/model_weights") != .group {
                return try readKeras3(h5)
            }
            let root = h5.kind("/model_weights") == .group ? "/model_weights" : "/"
            let config = try h5.strings("/", "model_config")?.first
            guard let names = try layerNames(h5, root) else {
                throw Refused(description: "not a Keras weight file (no layer_names attribute and no layers/ group)")
            }
            var layers: [Layer] = [], layout: Layout?
            for name in names {
                let group = root == "/" ? "/" + name : root + "/" + name
                guard h5.kind(group) == .group else { throw Refused(description: "layer '\(name)' is listed but has no group") }
                var weights: [(String, [Int], [Float])] = []
                for w in try h5.strings(group, "weight_names") ?? [] {
                    let path = group + "/" + w
                    guard h5.kind(path) == .dataset else { throw Refused(description: "weight '\(w)' of layer '\(name)' is listed but missing") }
                    let (shape, data) = try h5.floats(path)
                    weights.append((w, shape, data))
                    layout = layout ?? guessLayout(w, layer: name)
                }
                layers.append(Layer(name: name, weights: weights))
            }
            return File(layout: layout ?? .keras3Legacy, layers: layers, modelConfig: config, fullModel: root != "/")
        } catch let e as HDF5File.Failure {
            throw Refused(description: e.message)
        }
    }

    /// `layer_names`, or its pieces `layer_names0`, `layer_names1`… (Keras splits attributes over 64 KiB).
    static func layerNames(_ h5: HDF5File, _ root: String) throws -> [String]? {
        if let n = try h5.strings(root, "layer_names") { return n }
        var out: [String] = [], i = 0
        while let part = try h5.strings(root, "layer_names\(i)") { out += part; i += 1 }
        return i > 0 ? out : nil
    }

    static func guessLayout(_ weight: String, layer: String) -> Layout {
        if !weight.contains(":") { return .keras3Legacy }
        let last = weight.split(separator: "/").last.map(String.init) ?? weight
        return last.hasPrefix(layer + "_") && !weight.contains("/") ? .keras1 : .tfKeras2
    }

    /// Keras 3: `layers/<key>/vars/<i>` (a layer without variables may have no `vars`).
    static func readKeras3(_ h5: HDF5File) throws -> File {
        var layers: [Layer] = []
        for key in try h5.members("/layers") ?? [] {
            let vars = "/layers/\(key)/vars"
            var weights: [(String, [Int], [Float])] = []
            if h5.kind(vars) == .group {
                let members = try h5.members(vars) ?? []
                // Variables are numbered 0…n-1.
                for i in 0..<members.count {
                    let path = "\(vars)/\(i)"
                    guard h5.kind(path) == .dataset else { throw Refused(description: "layer '\(key)': variable \(i) of \(members.count) is missing") }
                    let (shape, data) = try h5.floats(path)
                    weights.append(("\(i)", shape, data))
                }
            }
            layers.append(Layer(name: key, weights: weights))
        }
        return File(layout: .keras3, layers: layers, modelConfig: nil, fullModel: false)
    }

    // MARK: Keras tensors → the engine's parameters

    /// A named file's tensors as `LAYER.VARIABLE` in the engine's layouts: Keras 1's `W`/`b`/`running_std` become
    /// kernel/bias/moving_variance (Keras 1 kept the variance under that name).
    /// Each layer's weights are matched by position to the architecture's variables of the layer of that name
    /// (Keras' own loader goes by order too); a recognised weight name must agree with the variable.
    public static func stateDict(named file: File, layers: [KerasLayer]) throws -> StateDict {
        let byName = Dictionary(layers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var out = StateDict(), seen = Set<String>()
        for layer in file.layers where !layer.weights.isEmpty {
            guard let target = byName[layer.name] else { throw Refused(description: "layer '\(layer.name)' is not part of the architecture") }
            guard target.variables.count == layer.weights.count else {
                throw Refused(description: "layer '\(layer.name)' has \(layer.weights.count) weights, \(target.className) has \(target.variables.count)")
            }
            seen.insert(layer.name)
            for (w, v) in zip(layer.weights, target.variables) {
                let name = variableName(w.name, layer: layer.name), expected = String(v.parameter.dropFirst(layer.name.count + 1))
                if name != expected, known.contains(name), !(name == "kernel" && expected == "depthwise_kernel") {
                    throw Refused(description: "weight '\(w.name)' of layer '\(layer.name)' is a \(name), the architecture expects \(expected) there")
                }
                out.set(v.parameter, try convert(w.shape, w.data, v.role, name: v.parameter))
            }
        }
        if let missing = layers.first(where: { !$0.variables.isEmpty && !seen.contains($0.name) }) {
            throw Refused(description: "the file has no weights for \(missing.className) '\(missing.name)'")
        }
        return out
    }

    static let known: Set<String> = ["kernel", "bias", "depthwise_kernel", "gamma", "beta", "moving_mean", "moving_variance"]

    static func variableName(_ weight: String, layer: String) -> String {
        var v = weight.split(separator: "/").last.map(String.init) ?? weight
        if let colon = v.lastIndex(of: ":") { v = String(v[..<colon]) }
        if v.hasPrefix(layer + "_") {  // Keras 1: block3_conv2_W_1
            v = String(v.dropFirst(layer.count + 1))
            if let u = v.lastIndex(of: "_"), !v[v.index(after: u)...].isEmpty, v[v.index(after: u)...].allSatisfy(\.isNumber) { v = String(v[..<u]) }
        }
        switch v {
        case "W": return "kernel"
        case "b": return "bias"
        case "running_mean": return "moving_mean"
        case "running_std": return "moving_variance"
        default: return v
        }
    }

    /// A Keras 3 `.weights.h5` given the architecture's layers in Keras' order: each layer's variables by position,
    /// the file's layer keys by name or (as Keras numbers them) by class and occurrence.
    public static func stateDict(keras3 file: File, layers: [KerasLayer]) throws -> StateDict {
        let byKey = Dictionary(file.layers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let weighted = layers.filter { !$0.variables.isEmpty }
        var keys: [String] = [], seen: [String: Int] = [:]
        for l in layers {
            let s = l.snakeClass
            let n = seen[s, default: -1] + 1
            seen[s] = n
            if !l.variables.isEmpty { keys.append(n == 0 ? s : "\(s)_\(n)") }
        }
        let byName = weighted.allSatisfy { byKey[$0.name] != nil }
        var out = StateDict(), used = Set<String>()
        for (l, classKey) in zip(weighted, keys) {
            let key = byName ? l.name : classKey
            guard let stored = byKey[key] else {
                throw Refused(description: "no layers/\(key) for \(l.className) '\(l.name)' (the file holds \(file.layers.count) layers: not this architecture?)")
            }
            used.insert(key)
            guard stored.weights.count == l.variables.count else {
                throw Refused(description: "layers/\(key) ('\(l.name)') has \(stored.weights.count) variables, \(l.className) has \(l.variables.count)")
            }
            for (w, v) in zip(stored.weights, l.variables) { out.set(v.parameter, try convert(w.shape, w.data, v.role, name: v.parameter)) }
        }
        if let extra = file.layers.first(where: { !used.contains($0.name) && !$0.weights.isEmpty }) {
            throw Refused(description: "layers/\(extra.name) holds \(extra.weights.count) variables no layer of the architecture takes")
        }
        return out
    }

    /// Keras layouts → the engine's: conv (kh, kw, in, out) → (out, in, kh, kw); depthwise (kh, kw, in, m) →
    /// (in·m, 1, kh, kw) with output channel i·m + j; dense (in, out) → (out, in).
    static func convert(_ shape: [Int], _ data: [Float], _ role: KerasLayer.Role, name: String) throws -> Tensor {
        func need(_ rank: Int) throws { guard shape.count == rank else { throw Refused(description: "'\(name)' has shape \(shape), expected rank \(rank)") } }
        switch role {
        case .vector:
            return Tensor(shape: shape, data: data)
        case .denseKernel:
            try need(2)
            let (i, o) = (shape[0], shape[1])
            var out = [Float](repeating: 0, count: data.count)
            for a in 0..<i { for b in 0..<o { out[b * i + a] = data[a * o + b] } }
            return Tensor(shape: [o, i], data: out)
        case .convKernel, .depthwiseKernel:
            try need(4)
            let (kh, kw, ci, co) = (shape[0], shape[1], shape[2], shape[3])
            var out = [Float](repeating: 0, count: data.count)
            let plane = kh * kw
            for y in 0..<kh { for x in 0..<kw { for c in 0..<ci { for m in 0..<co {
                let src = ((y * kw + x) * ci + c) * co + m
                let dst = role == .convKernel ? ((m * ci + c) * plane + y * kw + x) : ((c * co + m) * plane + y * kw + x)
                out[dst] = data[src]
            } } } }
            return role == .convKernel ? Tensor(shape: [co, ci, kh, kw], data: out) : Tensor(shape: [ci * co, 1, kh, kw], data: out)
        }
    }
}
