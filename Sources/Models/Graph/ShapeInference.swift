import Engine

/// Shapes, receptive fields and multiply-adds of every node for one input size, and the shape every parameter
/// must have — so a weight file that does not fit is refused naming the tensor and both shapes.
public enum ShapeInference {
    /// Per-image value shape: [C, H, W] or [F].
    struct Value { var shape: [Int]; var rf: Int; var jump: Int; var start: Double }

    /// Expected shape of each parameter of `node` given its input shapes.
    static func expectedShapes(_ node: Node, inputs: [[Int]]) throws -> [[Int]] {
        let x = inputs.first ?? []
        switch node.op {
        case let .conv(filters, k, _, _, _, _) where !(1...(1 << 20)).contains(filters) || !(1...(1 << 10)).contains(k):
            throw GraphError(node: node.name, reason: "conv of \(filters) filters of \(k)×\(k) is out of range")
        case let .dense(units) where !(1...(1 << 24)).contains(units):
            throw GraphError(node: node.name, reason: "dense layer of \(units) units is out of range")
        case let .conv(filters, k, _, _, groups, _):
            guard x.count == 3 else { throw GraphError(node: node.name, reason: "conv needs a [C, H, W] input, got \(x)") }
            guard groups >= 1, x[0] % groups == 0, filters % groups == 0 else {
                throw GraphError(node: node.name, reason: "\(x[0]) input and \(filters) output channels do not split into \(groups) groups")
            }
            return [[filters, x[0] / groups, k, k], [filters]]
        case .batchNorm:
            return Array(repeating: [x.first ?? 0], count: 4)
        case let .dense(units):
            guard x.count == 1 else { throw GraphError(node: node.name, reason: "dense needs a flat input, got \(x) (flatten or pool first)") }
            return [[units, x[0]], [units]]
        default:
            return []
        }
    }

    /// Every node's layer row at `height`×`width`, checking parameter shapes against `parameterShapes`.
    public static func layers(of graph: Graph, height: Int, width: Int, parameterShapes: [String: [Int]]) throws -> [LayerInfo] {
        try infer(graph, height: height, width: width) { name, node, shape in
            guard let got = parameterShapes[name] else { throw ModelError.missingTensor(name, node: node) }
            guard got == shape else { throw ModelError.wrongShape(name, expected: shape, got: got) }
        }
    }

    /// The shape every parameter of the graph must have at this input size (what a weight file must hold).
    public static func expectedParameterShapes(of graph: Graph, height: Int, width: Int) throws -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        _ = try infer(graph, height: height, width: width) { name, _, shape in out[name] = shape }
        return out
    }

    static func infer(_ graph: Graph, height: Int, width: Int, parameter: (String, String, [Int]) throws -> Void) throws -> [LayerInfo] {
        var values: [String: Value] = [graph.input: Value(shape: [3, height, width], rf: 1, jump: 1, start: 0)]
        var rows: [LayerInfo] = []
        for node in graph.nodes {
            let ins = node.inputs.map { values[$0]! }
            let x = ins[0]
            let expected = try expectedShapes(node, inputs: ins.map(\.shape))
            guard node.parameters.count <= expected.count, node.parameters.count >= min(expected.count, node.op.requiredParameters) else {
                throw GraphError(node: node.name, reason: "has \(node.parameters.count) parameters, \(node.op.name) takes \(node.op.requiredParameters)…\(expected.count)")
            }
            for (name, shape) in zip(node.parameters, expected) { try parameter(name, node.name, shape) }
            var out = x, macs = 0
            func window(_ k: Int, _ s: Int, _ d: Int, _ p: WindowPadding) throws {
                guard x.shape.count == 3 else { throw GraphError(node: node.name, reason: "\(node.op.name) needs a [C, H, W] input, got \(x.shape)") }
                guard let size = WindowGeometry.outputSize(inH: x.shape[1], inW: x.shape[2], kH: k, kW: k, stride: s, dilation: d, padding: p.engine) else {
                    throw GraphError(node: node.name, reason: "a \(k)×\(k)/\(s) window does not fit a \(x.shape[1])×\(x.shape[2]) input")
                }
                let g = WindowGeometry(inH: x.shape[1], inW: x.shape[2], kH: k, kW: k, stride: s, dilation: d, padding: p.engine)
                let extent = (k - 1) * d + 1
                out.start = x.start + (Double(extent - 1) / 2 - Double(g.padTop)) * Double(x.jump)
                let (grown, o1) = ((extent - 1) * x.jump).addingReportingOverflow(x.rf)
                let (jump, o2) = x.jump.multipliedReportingOverflow(by: s)
                guard !o1, !o2, grown <= 1 << 40, jump <= 1 << 30 else {
                    throw GraphError(node: node.name, reason: "receptive field or stride grows beyond any input size")
                }
                out.rf = grown
                out.jump = jump
                out.shape = [x.shape[0], size.h, size.w]
            }
            func whole() { let side = max(height, width); out.rf = side; out.jump = side; out.start = Double(side - 1) / 2 }
            switch node.op {
            case let .conv(filters, k, s, d, groups, p):
                try window(k, s, d, p)
                out.shape[0] = filters
                macs = out.shape[1] * out.shape[2] * filters * (x.shape[0] / groups) * k * k
            case .batchNorm, .activation, .dropout, .softmax:
                break
            case .add, .concat:
                for other in ins.dropFirst() {
                    let same = node.op == .add ? other.shape == x.shape : Array(other.shape.dropFirst()) == Array(x.shape.dropFirst())
                    guard same else { throw GraphError(node: node.name, reason: "\(node.op.name) of shapes \(ins.map(\.shape)) does not fit") }
                }
                let widest = ins.max { $0.rf < $1.rf }!
                out.rf = widest.rf; out.jump = widest.jump; out.start = widest.start
                if node.op == .concat { out.shape[0] = ins.map { $0.shape[0] }.reduce(0, +) }
            case let .maxPool(k, s, p), let .avgPool(k, s, p, _):
                if case let .explicit(t, l, b, r) = p, [t, l, b, r].contains(where: { $0 >= k }) {
                    throw GraphError(node: node.name, reason: "pooling padding \([t, l, b, r]) is not smaller than the \(k)×\(k) window")
                }
                try window(k, s, 1, p)
            case .globalAveragePool:
                guard x.shape.count == 3 else { throw GraphError(node: node.name, reason: "global pool needs [C, H, W], got \(x.shape)") }
                out.shape = [x.shape[0]]; whole()
            case let .adaptiveAvgPool(h, w):
                guard (1...4096).contains(h), (1...4096).contains(w) else { throw GraphError(node: node.name, reason: "adaptive pool to \(h)×\(w)") }
                guard x.shape.count == 3 else { throw GraphError(node: node.name, reason: "adaptive pool needs [C, H, W], got \(x.shape)") }
                out.shape = [x.shape[0], h, w]
                if x.shape[1] != h || x.shape[2] != w { whole() }
            case .flatten:
                out.shape = [x.shape.reduce(1, *)]; if x.shape.count == 3 { whole() }
            case let .dense(units):
                out.shape = [units]; macs = units * x.shape[0]; whole()
            case let .pad(t, l, b, r):
                guard [t, l, b, r].allSatisfy({ (0...4096).contains($0) }) else { throw GraphError(node: node.name, reason: "padding \([t, l, b, r]) is out of range") }
                guard x.shape.count == 3 else { throw GraphError(node: node.name, reason: "padding needs [C, H, W], got \(x.shape)") }
                out.shape = [x.shape[0], x.shape[1] + t + b, x.shape[2] + l + r]
                out.start = x.start - Double(t * x.jump)
            }
            // Bounded values keep every later product (flatten, dense, multiply-adds) far from overflowing.
            var elements = 1
            for d in out.shape {
                guard (1...(1 << 24)).contains(d) else { throw GraphError(node: node.name, reason: "output shape \(out.shape) is out of range") }
                elements *= d
                guard elements <= 1 << 32 else { throw GraphError(node: node.name, reason: "output shape \(out.shape) is too large") }
            }
            values[node.name] = out
            rows.append(LayerInfo(name: node.name, kind: node.op.layerKind, op: node.op.name, shape: out.shape,
                                  receptiveField: out.rf, jump: out.jump, start: out.start, multiplyAdds: macs))
        }
        for (alias, target) in graph.aliases.sorted(by: { $0.key < $1.key }) {
            guard var row = rows.first(where: { $0.name == target }) else { continue }
            row.name = alias
            row.multiplyAdds = 0
            rows.insert(row, at: rows.firstIndex { $0.name == target }! + 1)
        }
        return rows
    }
}

extension Op {
    /// Parameters an op cannot do without (a conv's and a dense layer's bias are optional).
    var requiredParameters: Int {
        switch self {
        case .conv, .dense: return 1
        case .batchNorm: return 4
        default: return 0
        }
    }

    var layerKind: LayerInfo.Kind {
        switch self {
        case .conv: return .conv
        case .batchNorm: return .batchNorm
        case .activation: return .activation
        case .add: return .add
        case .concat: return .concat
        case .maxPool, .avgPool, .globalAveragePool, .adaptiveAvgPool: return .pool
        case .flatten: return .flatten
        case .dense: return .linear
        case .dropout: return .dropout
        case .softmax: return .softmax
        case .pad: return .pad
        }
    }
}

/// A weight file that does not fit the architecture, naming the tensor.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case missingTensor(String, node: String)
    case wrongShape(String, expected: [Int], got: [Int])

    public var description: String {
        switch self {
        case let .missingTensor(k, node): return "tensor '\(k)' (for node '\(node)') is missing"
        case let .wrongShape(k, e, g): return "tensor '\(k)' has shape \(g), expected \(e)"
        }
    }
}
