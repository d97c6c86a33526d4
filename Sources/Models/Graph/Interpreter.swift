import Engine
import Foundation

/// Runs a graph: values kept by name, one step per node (or per fused run of nodes), only the nodes the
/// requested outputs depend on, each value released after its last reader.
///
/// Inference plans fold a batch norm into the conv before it and fuse a following ReLU/ReLU6 into the conv's
/// epilogue (the kernels the engine has), unless an intermediate value is asked for or a parameter needs a
/// gradient — then every node runs as written, on the checkpoint's own tensors.
final class Interpreter: @unchecked Sendable {
    let graph: Graph
    let weights: [String: Tensor]
    private var plans: [PlanKey: Plan] = [:]
    /// BN-folded (weight, bias) per conv node, made once.
    private var folded: [String: (Tensor, Tensor)] = [:]
    private let lock = NSLock()

    init(graph: Graph, weights: [String: Tensor]) {
        self.graph = graph; self.weights = weights
    }

    struct PlanKey: Hashable { var capture: Set<String>; var fuse: Bool }

    struct Step {
        /// The value this step produces (the last node of a fused run).
        var output: String
        var inputs: [String]
        var run: ([Tensor]) -> Tensor
        /// Values no later step reads (released after this step unless asked for).
        var releases: [String] = []
    }

    struct Plan { var steps: [Step] }

    func invalidate() {
        lock.lock(); defer { lock.unlock() }
        plans = [:]; folded = [:]
    }

    func forward(_ x: Tensor, capture: Set<String>) -> [String: Tensor] {
        let targets = Set(capture.map(graph.resolve))
        // `weights` holds exactly the graph's parameters.
        let fuse = !weights.values.contains { $0.requiresGrad }
        let plan = self.plan(PlanKey(capture: targets, fuse: fuse))
        var values: [String: Tensor] = [graph.input: x]
        var lastEmit = Profiler.now()
        for step in plan.steps {
            values[step.output] = step.run(step.inputs.map { values[$0]! })
            for r in step.releases where !targets.contains(r) { values[r] = nil }
            if Profiler.enabled { Profiler.record("forward \(step.output)", since: lastEmit); lastEmit = Profiler.now() }
        }
        var out: [String: Tensor] = [:]
        for name in capture { out[name] = values[graph.resolve(name)] }
        return out
    }

    private func plan(_ key: PlanKey) -> Plan {
        lock.lock(); defer { lock.unlock() }
        if let p = plans[key] { return p }
        let p = compile(key)
        plans[key] = p
        return p
    }

    private func compile(_ key: PlanKey) -> Plan {
        // Only the ancestors of what is asked for.
        let byName = Dictionary(uniqueKeysWithValues: graph.nodes.map { ($0.name, $0) })
        var needed = Set<String>(), stack = Array(key.capture)
        while let n = stack.popLast() {
            guard let node = byName[n], needed.insert(n).inserted else { continue }
            stack += node.inputs
        }
        let consumers = graph.consumers
        func soleReader(_ name: String) -> Node? {
            guard !key.capture.contains(name), let c = consumers[name], c.count == 1 else { return nil }
            return byName[c[0]]
        }
        var steps: [Step] = [], absorbed = Set<String>()
        for node in graph.nodes where needed.contains(node.name) && !absorbed.contains(node.name) {
            if key.fuse, case .conv = node.op {
                var output = node.name, bn: Node?, act: Activation = .identity
                if let b = soleReader(node.name), case .batchNorm = b.op, needed.contains(b.name) { bn = b; output = b.name }
                if let a = soleReader(output), needed.contains(a.name), case let .activation(kind) = a.op, let fused = kind.fusable {
                    act = fused; output = a.name
                }
                if let bn { absorbed.insert(bn.name) }
                if output != (bn?.name ?? node.name) { absorbed.insert(output) }
                steps.append(convStep(node, bn: bn, activation: act, output: output))
                continue
            }
            steps.append(Step(output: node.name, inputs: node.inputs, run: kernel(node)))
        }
        // Release each value after the last step that reads it.
        var last: [String: Int] = [:]
        for (i, s) in steps.enumerated() { for v in s.inputs { last[v] = i } }
        for (v, i) in last where v != graph.input { steps[i].releases.append(v) }
        return Plan(steps: steps)
    }

    private func tensor(_ name: String) -> Tensor { weights[name]! }

    private func convStep(_ node: Node, bn: Node?, activation: Activation, output: String) -> Step {
        guard case let .conv(_, _, stride, dilation, groups, padding) = node.op else { preconditionFailure() }
        var w = tensor(node.parameters[0]), b = node.parameters.count > 1 ? tensor(node.parameters[1]) : nil
        if let bn, case let .batchNorm(eps) = bn.op {
            if let f = folded[node.name] { (w, b) = f } else {
                let p = bn.parameters.map(tensor)
                let f = BatchNormParameters(gamma: p[0].data, beta: p[1].data, mean: p[2].data, variance: p[3].data, eps: eps).fold(weight: w, bias: b)
                folded[node.name] = f
                (w, b) = f
            }
        }
        let weight = w, bias = b
        return Step(output: output, inputs: node.inputs) { x in
            conv2d(x[0], weight, bias: bias, stride: stride, dilation: dilation, padding: padding.engine, groups: groups, activation: activation)
        }
    }

    /// The op of one node as a function of its inputs.
    private func kernel(_ node: Node) -> ([Tensor]) -> Tensor {
        let p = node.parameters.map(tensor)
        switch node.op {
        case let .conv(_, _, stride, dilation, groups, padding):
            return { conv2d($0[0], p[0], bias: p.count > 1 ? p[1] : nil, stride: stride, dilation: dilation, padding: padding.engine, groups: groups) }
        case let .batchNorm(eps):
            return { batchNorm($0[0], BatchNormParameters(gamma: p[0].data, beta: p[1].data, mean: p[2].data, variance: p[3].data, eps: eps)) }
        case let .activation(kind):
            switch kind {
            case .relu: return { relu($0[0]) }
            case .relu6: return { relu6($0[0]) }
            case .sigmoid: return { sigmoid($0[0]) }
            case .swish: return { swish($0[0]) }
            case .hardSwish: return { hardSwish($0[0]) }
            case .hardSigmoid: return { hardSigmoid($0[0]) }
            }
        case .add: return { $0.dropFirst().reduce($0[0]) { add($0, $1) } }
        case .concat: return { concatChannels($0) }
        case let .maxPool(k, s, pad): return { maxPool2d($0[0], kernel: k, stride: s, padding: pad.engine) }
        case let .avgPool(k, s, pad, countPadding): return { avgPool2d($0[0], kernel: k, stride: s, padding: pad.engine, countPadding: countPadding) }
        case .globalAveragePool: return { globalAveragePool($0[0]) }
        case let .adaptiveAvgPool(h, w): return { adaptiveAvgPool2d($0[0], outH: h, outW: w) }
        case let .flatten(channelsLast):
            return { x in
                let t = x[0]
                if channelsLast && t.rank == 4 { return flattenChannelsLast(t) }
                return t.reshaped([t.shape[0], t.count / t.shape[0]])
            }
        case .dense: return { linear($0[0], p[0], bias: p.count > 1 ? p[1] : nil) }
        case .dropout: return { $0[0] }
        case .softmax: return { softmax($0[0]) }
        case let .pad(t, l, b, r): return { zeroPad2d($0[0], top: t, bottom: b, left: l, right: r) }
        }
    }
}

extension ActivationKind {
    /// The engine's fused conv epilogue for this activation, if it has one.
    var fusable: Activation? {
        switch self {
        case .relu: return .relu
        case .relu6: return .relu6
        default: return nil
        }
    }
}
