import Engine

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

    /// A class logit (pre-softmax), the usual "ideal class" objective.
    public static func classLogit(_ index: Int) -> Objective {
        Objective(layers: ["logits"], description: "logits:\(index)") { acts in sum(selectColumn(acts["logits"]!, index)) }
    }

    public static func + (a: Objective, b: Objective) -> Objective {
        Objective(layers: a.layers.union(b.layers), description: "\(a) + \(b)") { add(a.evaluate($0), b.evaluate($0)) }
    }

    public static func * (k: Float, a: Objective) -> Objective {
        Objective(layers: a.layers, description: "\(k)*\(a)") { scale(a.evaluate($0), by: k) }
    }

    public static prefix func - (a: Objective) -> Objective { Objective(layers: a.layers, description: "-\(a)") { scale(a.evaluate($0), by: -1) } }

    public static func - (a: Objective, b: Objective) -> Objective { a + (-b) }
}
