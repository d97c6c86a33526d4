import Engine
import Foundation

/// Something to maximize, computed from named activations of the model (Lucid's `objectives`).
/// Objectives combine with +, − and scalar ×, so `channel(blocks.5, 17) - 0.5 * channel(blocks.5, 3)` works.
public struct Objective: CustomStringConvertible {
    /// The layers the objective reads; the forward pass stops at the deepest one.
    public let layers: Set<String>
    public let description: String
    /// Scalar (summed over the batch) to maximize.
    public let evaluate: ([String: Tensor]) -> Tensor

    public init(layers: Set<String>, description: String, evaluate: @escaping ([String: Tensor]) -> Tensor) {
        self.layers = layers; self.description = description; self.evaluate = evaluate
    }

    /// Mean of channel `c` over space (batch summed).
    public static func channel(_ layer: String, _ c: Int) -> Objective {
        Objective(layers: [layer], description: "\(layer):\(c)") { acts in
            let a = acts[layer]!
            return a.rank == 4 ? scale(sum(selectChannel(a, c)), by: 1 / Float(a.shape[2] * a.shape[3]))
                               : sum(selectColumn(a, c))
        }
    }

    /// Channel `c` at one spatial position (default: the centre) — a single neuron.
    public static func neuron(_ layer: String, _ c: Int, x: Int? = nil, y: Int? = nil) -> Objective {
        Objective(layers: [layer], description: "\(layer):\(c)" + (x.map { "@\($0),\(y ?? 0)" } ?? "")) { acts in
            let a = acts[layer]!
            guard a.rank == 4 else { return sum(selectColumn(a, c)) }
            return sum(selectNeuron(a, channel: c, y: y ?? a.shape[2] / 2, x: x ?? a.shape[3] / 2))
        }
    }

    /// DeepDream: mean of squared activations of the whole layer.
    public static func layer(_ layer: String) -> Objective {
        Objective(layers: [layer], description: "layer \(layer)") { acts in
            let a = acts[layer]!
            return scale(sum(multiply(a, a)), by: 1 / Float(a.count / a.shape[0]))
        }
    }

    /// A direction in a layer's channel space (Lucid's `direction`): the mean over space of Σ_c v_c·a_c.
    public static func direction(_ layer: String, _ vector: [Float], name: String = "direction") -> Objective {
        Objective(layers: [layer], description: "\(name)@\(layer)") { acts in
            let a = acts[layer]!
            precondition(a.shape[1] == vector.count, "direction has \(vector.count) entries, \(layer) has \(a.shape[1]) channels")
            let spatial = a.rank == 4 ? a.shape[2] * a.shape[3] : 1
            let perChannel = Tensor(shape: [1, vector.count] + (a.rank == 4 ? [1, 1] : []), data: vector)
            return scale(sum(multiply(a, broadcastChannels(perChannel, like: a))), by: 1 / Float(spatial))
        }
    }

    /// A class logit (pre-softmax), the usual "ideal class" objective.
    public static func classLogit(_ index: Int, logits: String = "logits") -> Objective {
        Objective(layers: [logits], description: "\(logits):\(index)") { acts in sum(selectColumn(acts[logits]!, index)) }
    }

    /// log Σ_{c∈group} exp(logit_c): the group's "logit" — for one class exactly its logit. Unlike the
    /// log-probability it does not saturate once the group wins, so the picture keeps sharpening.
    public static func classGroupLogit(_ indices: [Int], name: String, logits: String = "logits") -> Objective {
        Objective(layers: [logits], description: "logit \(name)") { acts in sum(logSumExp(acts[logits]!, columns: indices)) }
    }

    /// log p(class ∈ group): log Σ_{c∈group} softmax(logits)_c. For one class this is its log-probability,
    /// which (unlike the logit) also pushes the other classes down.
    public static func classLogProbability(_ indices: [Int], name: String, logits: String = "logits") -> Objective {
        Objective(layers: [logits], description: "log p(\(name))") { acts in
            sum(logSumExp(logSoftmax(acts[logits]!), columns: indices))
        }
    }

    /// The same objective under another description.
    public func named(_ description: String) -> Objective { Objective(layers: layers, description: description, evaluate: evaluate) }

    /// The same objective on image `b` of the batch only (batch of units, one per image).
    public func onImage(_ b: Int) -> Objective {
        Objective(layers: layers, description: description) { acts in
            self.evaluate(acts.mapValues { a in plane(a, b).reshaped([1] + a.shape.dropFirst()) })
        }
    }

    public static func + (a: Objective, b: Objective) -> Objective {
        Objective(layers: a.layers.union(b.layers), description: "\(a) + \(b)") { add(a.evaluate($0), b.evaluate($0)) }
    }

    public static func * (k: Float, a: Objective) -> Objective {
        Objective(layers: a.layers, description: "\(k)*\(a)") { scale(a.evaluate($0), by: k) }
    }

    public static prefix func - (a: Objective) -> Objective { Objective(layers: a.layers, description: "-\(a)") { scale(a.evaluate($0), by: -1) } }

    public static func - (a: Objective, b: Objective) -> Objective { a + (-b) }

    /// Σ of objectives, each on its own image of the batch.
    public static func perImage(_ objectives: [Objective]) -> Objective {
        precondition(!objectives.isEmpty)
        if objectives.count == 1 { return objectives[0] }
        return Objective(layers: objectives.reduce(into: Set<String>()) { $0.formUnion($1.layers) },
                         description: objectives.map(\.description).joined(separator: " | ")) { acts in
            objectives.enumerated().map { $1.onImage($0).evaluate(acts) }.dropFirst().reduce(objectives[0].onImage(0).evaluate(acts), add)
        }
    }
}

/// [1, C(, 1, 1)] repeated to the shape of `like` ([N, C(, H, W)]); backward sums over the repeated axes.
func broadcastChannels(_ v: Tensor, like a: Tensor) -> Tensor {
    let n = a.shape[0], c = a.shape[1], spatial = a.count / (n * c)
    var y = [Float](repeating: 0, count: a.count)
    for b in 0..<n { for ch in 0..<c { for i in 0..<spatial { y[(b * c + ch) * spatial + i] = v.data[ch] } } }
    let out = Tensor(shape: a.shape, data: y)
    out.record(op: "broadcastChannels", parents: [v]) { g in
        var dv = [Float](repeating: 0, count: c)
        for b in 0..<n { for ch in 0..<c { for i in 0..<spatial { dv[ch] += g[(b * c + ch) * spatial + i] } } }
        v.accumulate(dv)
    }
    return out
}

/// log Σ_{k∈columns} exp(x[n, k]) per row: [N, K] -> [N]. Backward: softmax over the chosen columns.
public func logSumExp(_ x: Tensor, columns: [Int]) -> Tensor {
    precondition(x.rank == 2 && !columns.isEmpty && columns.allSatisfy { $0 >= 0 && $0 < x.shape[1] })
    let n = x.shape[0], width = x.shape[1]
    var y = [Float](repeating: 0, count: n), weights = [Float](repeating: 0, count: n * columns.count)
    for r in 0..<n {
        let m = columns.map { x.data[r * width + $0] }.max()!
        let e = columns.map { Double(expf(x.data[r * width + $0] - m)) }
        let s = e.reduce(0, +)
        y[r] = m + Float(log(s))
        for (j, v) in e.enumerated() { weights[r * columns.count + j] = Float(v / s) }
    }
    let out = Tensor(shape: [n], data: y)
    out.record(op: "logSumExp", parents: [x]) { g in
        var dx = [Float](repeating: 0, count: x.count)
        for r in 0..<n { for (j, k) in columns.enumerated() { dx[r * width + k] += g[r] * weights[r * columns.count + j] } }
        x.accumulate(dx)
    }
    return out
}
