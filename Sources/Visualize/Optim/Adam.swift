import Engine
import Foundation

/// Adam (Kingma & Ba), the optimizer Lucid uses (lr 0.05). `ascend` maximizes: variables move along the gradient.
public struct Adam {
    public var learningRate: Float
    public var beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8
    /// First and second moments per variable, kept in a class so updating them in place never copies.
    private final class Moments { var m: [Float], v: [Float]; init(_ n: Int) { m = .init(repeating: 0, count: n); v = m } }
    private var moments: [ObjectIdentifier: Moments] = [:]
    private var step = 0

    public init(learningRate: Float = 0.05) { self.learningRate = learningRate }

    /// One update of every variable from its `grad`; `ascend` climbs the objective instead of descending.
    public mutating func update(_ variables: [Tensor], ascend: Bool = true) {
        step += 1
        let c1 = 1 - powf(beta1, Float(step)), c2 = 1 - powf(beta2, Float(step))
        let (b1, b2, eps) = (beta1, beta2, epsilon)
        let rate = (ascend ? 1 : -1) * learningRate / c1, inverseC2 = 1 / c2
        for p in variables {
            guard let g = p.grad else { continue }
            let id = ObjectIdentifier(p)
            let state = moments[id] ?? Moments(p.count)
            moments[id] = state
            g.withUnsafeBufferPointer { g in state.m.withUnsafeMutableBufferPointer { m in
                state.v.withUnsafeMutableBufferPointer { v in p.data.withUnsafeMutableBufferPointer { x in
                    for i in 0..<x.count {
                        m[i] = b1 * m[i] + (1 - b1) * g[i]
                        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
                        x[i] += rate * m[i] / ((v[i] * inverseC2).squareRoot() + eps)
                    }
                } }
            } }
        }
    }
}
