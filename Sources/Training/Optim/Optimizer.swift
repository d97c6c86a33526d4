import Engine
import Foundation

/// The optimizers of the tutorials, each in PyTorch's formulation (the reference script runs torch.optim with the
/// same constants): RMSprop with Keras' defaults (ρ 0.9, ε 1e-7), Adam (β 0.9, 0.999, ε 1e-8), SGD with momentum.
/// Weight decay is coupled (added to the gradient: torch's `weight_decay`). State is per parameter name, so it can
/// be saved and restored exactly (`--resume`).
public enum OptimizerKind: String, Codable, Sendable, CaseIterable {
    case rmsprop, adam, sgd
}

public struct Optimizer: Sendable {
    public var kind: OptimizerKind
    public var weightDecay: Float
    public var momentum: Float
    public var rho: Float = 0.9
    public var epsilon: Float
    public var beta1: Float = 0.9, beta2: Float = 0.999
    /// Moments by parameter name (RMSprop: square average; Adam: first and second; SGD: momentum buffer).
    public var first: [String: [Float]] = [:]
    public var second: [String: [Float]] = [:]
    public var steps: [String: Int] = [:]

    public init(kind: OptimizerKind, weightDecay: Float = 0, momentum: Float = 0.9) {
        self.kind = kind; self.weightDecay = weightDecay; self.momentum = momentum
        epsilon = kind == .rmsprop ? 1e-7 : 1e-8
    }

    /// One update of every named parameter that has a gradient, at learning rate `lr`; gradients are then cleared.
    public mutating func step(_ parameters: [(name: String, tensor: Tensor)], lr: Float) {
        for (name, p) in parameters {
            guard var g = p.grad else { continue }
            let n = p.count
            var a = first.removeValue(forKey: name) ?? [], b = second.removeValue(forKey: name) ?? []
            if a.isEmpty && kind != .sgd { a = [Float](repeating: 0, count: n) }
            if b.isEmpty && kind == .adam { b = [Float](repeating: 0, count: n) }
            let t = (steps[name] ?? 0) + 1
            steps[name] = t
            let (wd, mu, rho, eps, b1, b2) = (weightDecay, momentum, self.rho, epsilon, beta1, beta2)
            let kind = self.kind
            g.withUnsafeMutableBufferPointer { g in p.data.withUnsafeMutableBufferPointer { w in
                if wd != 0 { for i in 0..<n { g[i] += wd * w[i] } }
                switch kind {
                case .sgd:
                    if a.isEmpty { a = Array(g) } else { a.withUnsafeMutableBufferPointer { m in for i in 0..<n { m[i] = mu * m[i] + g[i] } } }
                    a.withUnsafeBufferPointer { m in for i in 0..<n { w[i] -= lr * m[i] } }
                case .rmsprop:
                    a.withUnsafeMutableBufferPointer { v in
                        for i in 0..<n {
                            v[i] = rho * v[i] + (1 - rho) * g[i] * g[i]
                            w[i] -= lr * g[i] / (v[i].squareRoot() + eps)
                        }
                    }
                case .adam:
                    let c1 = 1 - powf(b1, Float(t)), c2 = 1 - powf(b2, Float(t))
                    let stepSize = lr / c1, c2Root = c2.squareRoot()
                    a.withUnsafeMutableBufferPointer { m in b.withUnsafeMutableBufferPointer { v in
                        for i in 0..<n {
                            m[i] = b1 * m[i] + (1 - b1) * g[i]
                            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
                            w[i] -= stepSize * m[i] / (v[i].squareRoot() / c2Root + eps)
                        }
                    } }
                }
            } }
            first[name] = a
            if kind == .adam { second[name] = b }
            p.grad = nil
        }
    }

    /// The state as named tensors (for a safetensors file) and back.
    public func state() -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for (k, v) in first { out["first/\(k)"] = v }
        for (k, v) in second { out["second/\(k)"] = v }
        for (k, v) in steps { out["steps/\(k)"] = [Float(v)] }
        return out
    }

    public mutating func restore(_ state: [String: [Float]]) {
        first = [:]; second = [:]; steps = [:]
        for (k, v) in state {
            if k.hasPrefix("first/") { first[String(k.dropFirst(6))] = v }
            else if k.hasPrefix("second/") { second[String(k.dropFirst(7))] = v }
            else if k.hasPrefix("steps/") { steps[String(k.dropFirst(6))] = Int(v[0]) }
        }
    }
}

/// Learning rate over a stage's steps: constant, cosine to zero, or one-cycle (PyTorch `OneCycleLR`'s shape: 30%
/// cosine warm-up from lr/25, then cosine down to lr/25e4).
public enum Schedule: String, Codable, Sendable, CaseIterable {
    case constant, cosine, onecycle

    public func rate(_ lr: Float, step: Int, total: Int) -> Float {
        let t = Double(step) / Double(max(total, 1))
        switch self {
        case .constant: return lr
        case .cosine: return Float(Double(lr) * 0.5 * (1 + cos(.pi * t)))
        case .onecycle:
            let warm = 0.3, start = Double(lr) / 25, end = start / 1e4
            func cosAnneal(_ a: Double, _ b: Double, _ f: Double) -> Double { b + (a - b) / 2 * (1 + cos(.pi * f)) }
            return Float(t < warm ? cosAnneal(start, Double(lr), t / warm) : cosAnneal(Double(lr), end, (t - warm) / (1 - warm)))
        }
    }
}
