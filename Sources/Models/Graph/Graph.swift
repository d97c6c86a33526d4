import Engine

/// A network as data: named nodes in topological order reading one image input. Every node's name is a layer a
/// user can type; the builders use the names of the weights the network was trained as.
public struct Graph: Codable, Sendable, Equatable {
    /// Name of the image input ([N, 3, H, W]).
    public var input: String
    public var nodes: [Node]
    /// Extra names for nodes (a framework's module name for a value another node already computes).
    public var aliases: [String: String]

    public init(input: String = "input", nodes: [Node], aliases: [String: String] = [:]) {
        self.input = input; self.nodes = nodes; self.aliases = aliases
    }

    /// The node an alias or node name denotes.
    public func resolve(_ name: String) -> String { aliases[name] ?? name }

    /// Checks names are unique and every input is defined before it is read.
    public func validate() throws {
        var defined: Set<String> = [input]
        for node in nodes {
            guard !defined.contains(node.name) else { throw GraphError(node: node.name, reason: "name defined twice") }
            for i in node.inputs where !defined.contains(i) {
                throw GraphError(node: node.name, reason: "reads '\(i)', which is not defined before it")
            }
            guard !node.inputs.isEmpty else { throw GraphError(node: node.name, reason: "has no input") }
            defined.insert(node.name)
        }
        for (alias, target) in aliases where defined.contains(alias) || !defined.contains(target) {
            throw GraphError(node: alias, reason: defined.contains(alias) ? "alias shadows a node" : "alias of unknown node '\(target)'")
        }
    }

    public func node(named name: String) -> Node? { nodes.first { $0.name == name } }

    /// Every parameter name the graph uses, in node order.
    public var parameterNames: [String] { nodes.flatMap(\.parameters) }

    /// For each value name, the nodes that read it.
    public var consumers: [String: [String]] {
        var out: [String: [String]] = [:]
        for n in nodes { for i in n.inputs { out[i, default: []].append(n.name) } }
        return out
    }
}

/// A graph that cannot be built or run as given, naming the node.
public struct GraphError: Error, CustomStringConvertible {
    public var node: String
    public var reason: String
    public init(node: String, reason: String) { self.node = node; self.reason = reason }
    public var description: String { "node '\(node)': \(reason)" }
}

/// Builds a graph node by node, each new node reading the previous one unless told otherwise — how the zoo's
/// architecture files read like the frameworks' module lists.
public struct GraphBuilder {
    public private(set) var nodes: [Node] = []
    public var aliases: [String: String] = [:]
    /// The most recently added node (the next node's default input).
    public private(set) var last: String
    public let input: String

    public init(input: String = "input") { self.input = input; self.last = input }

    @discardableResult
    public mutating func add(_ name: String, _ op: Op, inputs: [String]? = nil, parameters: [String] = []) -> String {
        nodes.append(Node(name, op, inputs: inputs ?? [last], parameters: parameters))
        last = name
        return name
    }

    /// Conv with `prefix.weight` (and `prefix.bias` when `bias`), PyTorch's naming.
    @discardableResult
    public mutating func conv(_ name: String, weights prefix: String? = nil, filters: Int, kernel: Int, stride: Int = 1, dilation: Int = 1,
                              groups: Int = 1, padding: WindowPadding, bias: Bool = false, input: String? = nil) -> String {
        let p = prefix ?? name
        return add(name, .conv(filters: filters, kernel: kernel, stride: stride, dilation: dilation, groups: groups, padding: padding),
                   inputs: input.map { [$0] }, parameters: [p + ".weight"] + (bias ? [p + ".bias"] : []))
    }

    /// Batch norm with PyTorch's `prefix.weight/bias/running_mean/running_var`.
    @discardableResult
    public mutating func batchNorm(_ name: String, weights prefix: String? = nil, eps: Float, input: String? = nil) -> String {
        let p = prefix ?? name
        return add(name, .batchNorm(eps: eps), inputs: input.map { [$0] },
                   parameters: [p + ".weight", p + ".bias", p + ".running_mean", p + ".running_var"])
    }

    @discardableResult
    public mutating func activation(_ name: String, _ kind: ActivationKind, input: String? = nil) -> String {
        add(name, .activation(kind), inputs: input.map { [$0] })
    }

    @discardableResult
    public mutating func dense(_ name: String, weights prefix: String? = nil, units: Int, bias: Bool = true) -> String {
        let p = prefix ?? name
        return add(name, .dense(units: units), parameters: [p + ".weight"] + (bias ? [p + ".bias"] : []))
    }

    public func build() -> Graph { Graph(input: input, nodes: nodes, aliases: aliases) }
}
