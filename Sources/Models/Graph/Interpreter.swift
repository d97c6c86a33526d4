import Engine
import Foundation

/// Runs a graph: values kept by name, one step per node (or per fused run of nodes), only the nodes the
/// requested outputs depend on, each value released after its last reader.
///
/// A conv whose parameters (and its batch norm's) are frozen has the batch norm folded into it and a following
/// ReLU/ReLU6 fused into its epilogue (the kernels the engine has), unless that intermediate value is asked for;
/// an inverted bottleneck of such convs (1×1 → depthwise → 1×1) runs as one banded pass (its backward too).
/// Where a parameter needs a gradient, its nodes run as written, on the checkpoint's own tensors. In training
/// mode dropout drops and trainable batch norms use batch statistics (updating their running averages).
final class Interpreter: @unchecked Sendable {
    let graph: Graph
    let weights: [String: Tensor]
    private var plans: [PlanKey: Plan] = [:]
    /// BN-folded (weight, bias) per conv node, made once.
    private var folded: [String: (Tensor, Tensor)] = [:]
    private let lock = NSLock()
    /// The convolution algorithm every conv step uses, read when the step runs (a box, so compiled plans see changes
    /// without holding the interpreter).
    let convolution = ConvolutionSetting()

    final class ConvolutionSetting: @unchecked Sendable { var algorithm: ConvAlgorithm = .fastest }

    init(graph: Graph, weights: [String: Tensor]) {
        self.graph = graph; self.weights = weights
    }

    struct PlanKey: Hashable {
        var capture: Set<String>
        /// Parameters that need a gradient (their nodes are not folded or fused).
        var trainable: Set<String>
        var training: Bool
        var batchStatistics: Bool
        /// Values handed in instead of computed (the graph input, or a cut through the graph: cached features).
        var given: Set<String>
    }

    struct Step {
        /// The value this step produces (the last node of a fused run).
        var output: String
        var inputs: [String]
        var run: ([Tensor], inout RunMode) -> Tensor
        /// Values no later step reads (released after this step unless asked for).
        var releases: [String] = []
        /// A frozen conv step's folded parameters and geometry (for fusing a run of them).
        var conv: FrozenConv?
        /// This step and the next two as one pass, when the run allows it (nil: run them one by one).
        var fused: ((Tensor) -> Tensor?)?
    }

    struct FrozenConv {
        var stage: InvertedBottleneck.Stage
        var stride: Int, dilation: Int, groups: Int, padding: Padding
    }

    struct Plan { var steps: [Step] }

    func invalidate() {
        lock.lock(); defer { lock.unlock() }
        plans = [:]; folded = [:]
    }

    func forward(_ x: Tensor, capture: Set<String>, mode: RunMode = .inference) -> [String: Tensor] {
        forward([graph.input: x], capture: capture, mode: mode)
    }

    /// Runs from the named values in `given` (each a node's output or the input) to `capture`; only nodes between
    /// them run. Every value a needed node reads must be given or computed from given ones.
    func forward(_ given: [String: Tensor], capture: Set<String>, mode: RunMode = .inference) -> [String: Tensor] {
        var mode = mode
        let targets = Set(capture.map(graph.resolve))
        // `weights` holds exactly the graph's parameters.
        let trainable = Set(weights.filter { $0.value.requiresGrad }.keys)
        let plan = self.plan(PlanKey(capture: targets, trainable: trainable, training: mode.training,
                                     batchStatistics: mode.training && mode.batchStatistics, given: Set(given.keys)))
        var values: [String: Tensor] = given
        var lastEmit = Profiler.now()
        var i = 0
        while i < plan.steps.count {
            let step = plan.steps[i]
            var span = 1
            if let fused = step.fused, let y = fused(values[step.inputs[0]]!) {
                span = 3
                values[plan.steps[i + 2].output] = y
            } else {
                values[step.output] = step.run(step.inputs.map { values[$0]! }, &mode)
            }
            for s in plan.steps[i..<(i + span)] { for r in s.releases where !targets.contains(r) { values[r] = nil } }
            if Profiler.enabled {
                Profiler.record("forward \(plan.steps[i + span - 1].output)" + (span > 1 ? " (fused bottleneck)" : ""), since: lastEmit)
                lastEmit = Profiler.now()
            }
            i += span
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
            guard !key.given.contains(n), let node = byName[n], needed.insert(n).inserted else { continue }
            stack += node.inputs
        }
        let consumers = graph.consumers
        func soleReader(_ name: String) -> Node? {
            guard !key.capture.contains(name), let c = consumers[name], c.count == 1 else { return nil }
            return byName[c[0]]
        }
        var steps: [Step] = [], absorbed = Set<String>()
        func frozen(_ n: Node) -> Bool { n.parameters.allSatisfy { !key.trainable.contains($0) } }
        for node in graph.nodes where needed.contains(node.name) && !absorbed.contains(node.name) {
            if case .conv = node.op, frozen(node) {
                var output = node.name, bn: Node?, act: Activation = .identity
                if let b = soleReader(node.name), case .batchNorm = b.op, needed.contains(b.name), frozen(b) { bn = b; output = b.name }
                if let a = soleReader(output), needed.contains(a.name), case let .activation(kind) = a.op, let fused = kind.fusable {
                    act = fused; output = a.name
                }
                if let bn { absorbed.insert(bn.name) }
                if output != (bn?.name ?? node.name) { absorbed.insert(output) }
                steps.append(convStep(node, bn: bn, activation: act, output: output))
                continue
            }
            // A residual add followed by ReLU / ReLU6 (ResNet): one pass.
            if case .add = node.op, node.inputs.count == 2, let a = soleReader(node.name), needed.contains(a.name),
               case let .activation(kind) = a.op, let fused = kind.fusable {
                absorbed.insert(a.name)
                steps.append(Step(output: a.name, inputs: node.inputs) { x, _ in add(x[0], x[1], activation: fused) })
                continue
            }
            steps.append(Step(output: node.name, inputs: node.inputs, run: kernel(node, key)))
        }
        markInvertedBottlenecks(&steps, key: key, readers: { consumers[$0]?.count ?? 0 })
        // Release each value after the last step that reads it.
        var last: [String: Int] = [:]
        for (i, s) in steps.enumerated() { for v in s.inputs { last[v] = i } }
        for (v, i) in last where !key.given.contains(v) { steps[i].releases.append(v) }
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
        let weight = w, bias = b, setting = convolution
        return Step(output: output, inputs: node.inputs, run: { x, _ in
            conv2d(x[0], weight, bias: bias, stride: stride, dilation: dilation, padding: padding.engine, groups: groups,
                   activation: activation, algorithm: setting.algorithm)
        }, conv: FrozenConv(stage: .init(weight: weight, bias: bias, activation: activation), stride: stride,
                            dilation: dilation, groups: groups, padding: padding.engine))
    }

    /// Three adjacent frozen conv steps — 1×1, depthwise, 1×1 — each reading only the one before, whose
    /// intermediate values nobody else reads or asks for: the first gets a fused form of all three, which the run
    /// takes (skipping the other two) when `InvertedBottleneck` covers the shapes — in inference (classify, index,
    /// a forward benchmark) and when the gradient reaches the input through frozen weights (renders, attacks: the
    /// fused pass then records its own banded backward). Otherwise the three run as written.
    private func markInvertedBottlenecks(_ steps: inout [Step], key: PlanKey, readers: (String) -> Int) {
        func inner(_ s: Step) -> Bool { !key.capture.contains(s.output) && readers(s.output) == 1 }
        var i = 0
        while i + 2 < steps.count {
            let (a, b, c) = (steps[i], steps[i + 1], steps[i + 2])
            guard let e = a.conv, let d = b.conv, let p = c.conv,
                  b.inputs == [a.output], c.inputs == [b.output], inner(a), inner(b),
                  // What the weights' shapes cannot tell (`applies` checks those, and the sizes, at run time).
                  e.groups == 1, e.stride == 1, d.groups > 1, d.dilation == 1, p.groups == 1, p.stride == 1
            else { i += 1; continue }
            let setting = convolution
            steps[i].fused = { x in
                guard setting.algorithm == .fastest,
                      InvertedBottleneck.applies(input: x.shape, expand: e.stage.weight, depthwise: d.stage.weight, stride: d.stride,
                                                 padding: d.padding, project: p.stage.weight) else { return nil }
                return InvertedBottleneck.forward(x, expand: e.stage, depthwise: d.stage, stride: d.stride,
                                                  padding: d.padding, project: p.stage)
            }
            i += 3
        }
    }

    /// The op of one node as a function of its inputs.
    private func kernel(_ node: Node, _ key: PlanKey) -> ([Tensor], inout RunMode) -> Tensor {
        let op = inferenceKernel(node, key)
        switch node.op {
        case let .dropout(rate) where key.training:
            return { x, mode in dropout(x[0], rate: rate, using: &mode.random) }
        case let .batchNorm(eps) where key.batchStatistics && node.parameters.prefix(2).contains(where: key.trainable.contains):
            let p = node.parameters.map(tensor)
            return { x, mode in
                let (y, mean, variance) = batchNormTraining(x[0], gamma: p[0], beta: p[1], eps: eps)
                // PyTorch's running averages: momentum 0.1, the unbiased batch variance.
                let m = Float(x[0].count / x[0].shape[1]), k = mode.batchNormMomentum
                for c in 0..<mean.count {
                    p[2].data[c] = (1 - k) * p[2].data[c] + k * mean[c]
                    p[3].data[c] = (1 - k) * p[3].data[c] + k * variance[c] * m / max(m - 1, 1)
                }
                return y
            }
        default:
            return { x, _ in op(x) }
        }
    }

    private func inferenceKernel(_ node: Node, _ key: PlanKey) -> ([Tensor]) -> Tensor {
        let p = node.parameters.map(tensor), setting = convolution
        switch node.op {
        case let .conv(_, _, stride, dilation, groups, padding):
            return { conv2d($0[0], p[0], bias: p.count > 1 ? p[1] : nil, stride: stride, dilation: dilation, padding: padding.engine,
                            groups: groups, algorithm: setting.algorithm) }
        case let .batchNorm(eps) where node.parameters.prefix(2).contains(where: key.trainable.contains):
            // Frozen statistics, learning scale and shift.
            return { batchNorm($0[0], gamma: p[0], beta: p[1], mean: p[2].data, variance: p[3].data, eps: eps) }
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

/// How a forward pass runs: inference (dropout is the identity, batch norms use their running statistics), or
/// training (dropout drops with `random`; trainable batch norms use batch statistics when `batchStatistics`).
public struct RunMode {
    public var training: Bool
    public var batchStatistics: Bool
    /// PyTorch's running-average momentum (Keras' 0.99 decay is 1 − 0.01).
    public var batchNormMomentum: Float
    public var random: SeededGenerator

    public static var inference: RunMode { RunMode(training: false, batchStatistics: false, batchNormMomentum: 0.1, random: SeededGenerator(seed: 0)) }

    public static func training(seed: UInt64, batchStatistics: Bool, momentum: Float = 0.1) -> RunMode {
        RunMode(training: true, batchStatistics: batchStatistics, batchNormMomentum: momentum, random: SeededGenerator(seed: seed))
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
