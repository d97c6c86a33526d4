import Engine
import Foundation

/// Adam (Kingma & Ba), the optimizer Lucid uses (lr 0.05). `ascend` maximizes: variables move along the gradient.
public struct Adam {
    public var learningRate: Float
    public var beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8
    private var m: [ObjectIdentifier: [Float]] = [:], v: [ObjectIdentifier: [Float]] = [:]
    private var step = 0

    public init(learningRate: Float = 0.05) { self.learningRate = learningRate }

    /// One update of every variable from its `grad`; `ascend` climbs the objective instead of descending.
    public mutating func update(_ variables: [Tensor], ascend: Bool = true) {
        step += 1
        let c1 = 1 - powf(beta1, Float(step)), c2 = 1 - powf(beta2, Float(step))
        for p in variables {
            guard let g = p.grad else { continue }
            let id = ObjectIdentifier(p)
            var mi = m[id] ?? [Float](repeating: 0, count: p.count), vi = v[id] ?? [Float](repeating: 0, count: p.count)
            let sign: Float = ascend ? 1 : -1
            for i in 0..<p.count {
                mi[i] = beta1 * mi[i] + (1 - beta1) * g[i]
                vi[i] = beta2 * vi[i] + (1 - beta2) * g[i] * g[i]
                p.data[i] += sign * learningRate * (mi[i] / c1) / ((vi[i] / c2).squareRoot() + epsilon)
            }
            m[id] = mi; v[id] = vi
        }
    }
}

