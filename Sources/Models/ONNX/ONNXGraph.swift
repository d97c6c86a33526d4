import Engine
import Foundation
import ONNXProto
import SwiftProtobuf

/// An ONNX graph run as written: values by name, one entry of the op table per node, only the ancestors of what
/// is asked for, an early return once those exist (tinygrad's `onnx.py` shape). Initializers and `Constant` nodes
/// are values like any other; float values are engine tensors, so gradients flow through every op.
public final class ONNXGraph: @unchecked Sendable {
    struct Node {
        var name: String
        var opType: String
        var inputs: [String]
        var outputs: [String]
        var attributes: [String: Onnx_AttributeProto]
    }

    let nodes: [Node]
    let constants: [String: ONNXValue]
    public let input: String
    public let inputShape: [Int?]
    public let output: String
    public let opset: Int
    public let name: String
    /// Value name → index of the node producing it.
    let producer: [String: Int]
    private var plans: [Set<String>: [Int]] = [:]
    private let lock = NSLock()

    public static let opsets = 11...21
    public static let supported: Set<String> = [
        "Conv", "BatchNormalization", "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Mul", "Add", "Sub",
        "Div", "Concat", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Transpose", "Gemm", "MatMul",
        "Softmax", "Pad", "ReduceMean", "Squeeze", "Unsqueeze", "Constant", "Identity", "Dropout",
        // Static shape arithmetic (torch's TF-SAME padding exports): folded into constants at load.
        "Cast", "ConstantOfShape", "Slice", "Shape", "Gather",
    ]

    /// Largest file read (protobuf's own limit).
    static let maxBytes = 2 << 30

    public convenience init(contentsOf url: URL) throws {
        let size = ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? NSNumber)?.intValue ?? 0
        guard size <= ONNXGraph.maxBytes else { throw ONNXError("\(size) bytes is more than an ONNX file can hold (2 GiB)") }
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch { throw ONNXError("cannot be read (\(error.localizedDescription))") }
        try self.init(data: data, folder: url.deletingLastPathComponent())
    }

    public init(data: Data, folder: URL?) throws {
        var options = BinaryDecodingOptions()
        options.messageDepthLimit = 64
        let model: Onnx_ModelProto
        do { model = try Onnx_ModelProto(serializedBytes: data, options: options) } catch {
            throw ONNXError("not an ONNX model (protobuf: \(error))")
        }
        guard model.hasGraph, !model.graph.node.isEmpty else { throw ONNXError("not an ONNX model (no graph)") }
        let version = model.opsetImport.first { $0.domain.isEmpty || $0.domain == "ai.onnx" }.map { Int($0.version) } ?? 0
        guard ONNXGraph.opsets.contains(version) else {
            throw ONNXError("opset \(version) is outside the opsets vizlab reads (\(ONNXGraph.opsets.lowerBound)–\(ONNXGraph.opsets.upperBound))", unsupported: true)
        }
        opset = version
        let g = model.graph
        name = g.name
        var constants: [String: ONNXValue] = [:]
        for t in g.initializer { constants[t.name] = try ONNXTensorReader.decode(t, folder: folder, what: "an initializer") }
        let inputs = g.input.filter { constants[$0.name] == nil }
        guard inputs.count == 1, let first = inputs.first else {
            throw ONNXError("the graph has \(inputs.count) inputs (\(inputs.map(\.name).joined(separator: ", "))); vizlab feeds one image", unsupported: true)
        }
        input = first.name
        inputShape = first.type.tensorType.shape.dim.map { d -> Int? in if case .dimValue(let v)? = d.value, v > 0, v <= 1 << 20 { return Int(v) }; return nil }
        guard g.output.count == 1 else { throw ONNXError("the graph has \(g.output.count) outputs; vizlab takes one", unsupported: true) }
        output = g.output[0].name
        var defined = Set(constants.keys).union([input]), producer: [String: Int] = [:], nodes: [Node] = []
        var names = Set<String>()
        for (i, n) in g.node.enumerated() {
            var name = n.name.isEmpty ? (n.output.first ?? "node\(i)") : n.name
            if names.contains(name) { name += "#\(i)" }
            names.insert(name)
            guard n.domain.isEmpty || n.domain == "ai.onnx" else {
                throw ONNXError("node '\(name)': op \(n.domain).\(n.opType) is not a standard ONNX op", unsupported: true)
            }
            guard ONNXGraph.supported.contains(n.opType) else {
                throw ONNXError("node '\(name)': op \(n.opType) is not one vizlab runs (it runs \(ONNXGraph.supported.sorted().joined(separator: ", ")))", unsupported: true)
            }
            for x in n.input where !x.isEmpty && !defined.contains(x) {
                throw ONNXError("node '\(name)' reads '\(x)', which nothing before it defines")
            }
            var attributes: [String: Onnx_AttributeProto] = [:]
            for a in n.attribute { attributes[a.name] = a }
            let node = Node(name: name, opType: n.opType, inputs: n.input, outputs: n.output, attributes: attributes)
            if n.opType == "Constant" {
                guard let out = n.output.first else { throw ONNXError("node '\(name)': Constant without an output") }
                constants[out] = try ONNXOps.constant(node)
                defined.insert(out)
                continue
            }
            // A node of constants only (a padding computed from static shapes) is evaluated now.
            if n.input.allSatisfy({ $0.isEmpty || constants[$0] != nil }) {
                let outs = try Self.step(node, n.input.map { $0.isEmpty ? nil : constants[$0] }, opset: version, batch: nil)
                for (o, v) in zip(n.output, outs) where !o.isEmpty { constants[o] = v; defined.insert(o) }
                continue
            }
            for o in n.output where !o.isEmpty { producer[o] = nodes.count; defined.insert(o) }
            nodes.append(node)
        }
        guard defined.contains(output) else { throw ONNXError("the graph output '\(output)' is never computed") }
        self.nodes = nodes; self.constants = constants; self.producer = producer
    }

    /// Each node's name and its (first) output, in graph order — the layers a user can name.
    public var layerNames: [(node: String, value: String, op: String)] { nodes.map { ($0.name, $0.outputs.first ?? $0.name, $0.opType) } }

    /// The named values in `capture` (value names) from `x`.
    public func run(_ x: Tensor, capture: Set<String>) throws -> [String: Tensor] {
        let plan = self.plan(capture)
        var values: [String: ONNXValue] = [input: .float(x)]
        var remaining = capture.filter { values[$0] == nil && constants[$0] == nil }
        var lastUse: [String: Int] = [:]
        for (step, i) in plan.enumerated() { for v in nodes[i].inputs { lastUse[v] = step } }
        for (step, i) in plan.enumerated() {
            let node = nodes[i]
            let outs = try Self.step(node, node.inputs.map { $0.isEmpty ? nil : (values[$0] ?? constants[$0]) }, opset: opset, batch: batch(x))
            for (name, v) in zip(node.outputs, outs) where !name.isEmpty { values[name] = v; remaining.remove(name) }
            if remaining.isEmpty { break }  // everything asked for exists: the rest of the graph is not run
            for v in node.inputs where lastUse[v] == step && !capture.contains(v) && v != input { values[v] = nil }
        }
        var out: [String: Tensor] = [:]
        for name in capture {
            guard case let .float(t)? = values[name] ?? constants[name] else { throw ONNXError("value '\(name)' is not a float tensor") }
            out[name] = t
        }
        return out
    }

    /// One node through the op table, its errors naming the node.
    static func step(_ node: Node, _ args: [ONNXValue?], opset: Int, batch: (declared: Int, actual: Int)?) throws -> [ONNXValue] {
        do { return try ONNXOps.run(node, args, opset: opset, batch: batch) } catch let e as ONNXError {
            throw ONNXError("node '\(node.name)' (\(node.opType)): \(e.message)", unsupported: e.unsupported)
        }
    }

    func batch(_ x: Tensor) -> (declared: Int, actual: Int)? {
        guard let d = inputShape.first ?? nil, x.rank > 0 else { return nil }
        return (d, x.shape[0])
    }

    /// Indices of the nodes the captured values depend on, in graph order.
    private func plan(_ capture: Set<String>) -> [Int] {
        lock.lock(); defer { lock.unlock() }
        if let p = plans[capture] { return p }
        var needed = Set<Int>(), stack = Array(capture)
        while let v = stack.popLast() {
            guard let i = producer[v], needed.insert(i).inserted else { continue }
            stack += nodes[i].inputs.filter { !$0.isEmpty }
        }
        let p = needed.sorted()
        plans[capture] = p
        return p
    }

    /// Per-node facts for `layers`: output shape of each node at one input, by running it once.
    func trace(_ x: Tensor) throws -> [String: ONNXValue] {
        var values: [String: ONNXValue] = [input: .float(x)]
        for node in nodes {
            let outs = try Self.step(node, node.inputs.map { $0.isEmpty ? nil : (values[$0] ?? constants[$0]) }, opset: opset, batch: batch(x))
            for (name, v) in zip(node.outputs, outs) where !name.isEmpty { values[name] = v }
        }
        return values
    }

    /// Runs with arbitrary named inputs (the conformance tests' graphs may take several), returning every output.
    public static func runTest(data: Data, inputs: [Onnx_TensorProto], outputs: Int) throws -> (names: [String], values: [Tensor]) {
        var options = BinaryDecodingOptions()
        options.messageDepthLimit = 64
        let model = try Onnx_ModelProto(serializedBytes: data, options: options)
        let version = model.opsetImport.first { $0.domain.isEmpty || $0.domain == "ai.onnx" }.map { Int($0.version) } ?? 0
        guard opsets.contains(version) else { throw ONNXError("opset \(version)", unsupported: true) }
        var values: [String: ONNXValue] = [:]
        for t in model.graph.initializer { values[t.name] = try ONNXTensorReader.decode(t, folder: nil, what: "initializer") }
        let graphInputs = model.graph.input.filter { values[$0.name] == nil }
        guard graphInputs.count == inputs.count else { throw ONNXError("\(graphInputs.count) graph inputs, \(inputs.count) given") }
        for vi in graphInputs {
            guard case .tensorType? = vi.type.value else { throw ONNXError("input '\(vi.name)' is a sequence or optional, not a tensor", unsupported: true) }
        }
        for (vi, t) in zip(graphInputs, inputs) {
            let v = try ONNXTensorReader.decode(t, folder: nil, what: "input")
            // Integer inputs are shapes, axes or pads; integer data (uint8 images…) is not what vizlab runs.
            if case .ints = v, t.dataType != Int32(Onnx_TensorProto.DataType.int64.rawValue) {
                throw ONNXError("input '\(vi.name)' is not float", unsupported: true)
            }
            values[vi.name] = v
        }
        for (i, n) in model.graph.node.enumerated() {
            guard supported.contains(n.opType), n.domain.isEmpty || n.domain == "ai.onnx" else { throw ONNXError("op \(n.opType)", unsupported: true) }
            var attributes: [String: Onnx_AttributeProto] = [:]
            for a in n.attribute { attributes[a.name] = a }
            let node = Node(name: n.name.isEmpty ? "node\(i)" : n.name, opType: n.opType, inputs: n.input, outputs: n.output, attributes: attributes)
            if n.opType == "Constant" { values[n.output[0]] = try ONNXOps.constant(node); continue }
            let outs = try ONNXOps.run(node, n.input.map { $0.isEmpty ? nil : values[$0] }, opset: version)
            for (name, v) in zip(n.output, outs) where !name.isEmpty { values[name] = v }
        }
        let names = model.graph.output.prefix(outputs).map(\.name)
        return (names, try names.map { n in
            switch values[n] {
            case .float(let t)?: return t
            case .ints(let v, let s)?: return Tensor(shape: s, data: v.map(Float.init))
            case nil: throw ONNXError("output '\(n)' not computed")
            }
        })
    }
}
