import Foundation

/// A dense float32 tensor in row-major (NCHW for images) order, and a node of the autograd tape.
///
/// A tensor produced by an op from inputs that need gradients remembers those inputs and a closure that
/// turns its gradient into theirs; `backward()` on a scalar walks that graph in reverse topological order.
/// Tensors produced without any such input record nothing, so inference keeps no graph alive.
public final class Tensor: @unchecked Sendable {
    public var shape: [Int]
    /// The values. Any change drops the kernels' packed forms of them (`packed`), so a trained weight is re-packed.
    /// A `_modify` accessor, not a `didSet`: with the observer every `t.data[i] = v` copied the whole array (an
    /// element-wise loop over a 224² image went quadratic); this yields the storage itself, mutated in place.
    public var data: [Float] {
        get { storage }
        set { if packed != nil { packed = nil }; storage = newValue }
        _modify { if packed != nil { packed = nil }; yield &storage }
    }
    private var storage: [Float]
    /// Forms of `data` re-laid for a kernel (Winograd-transformed filters), made on first use (`packedForm`).
    var packed: [String: [Float]]?
    /// Accumulated gradient of the last `backward()` call (same shape as `data`), if this tensor needs one.
    public var grad: [Float]?
    public var requiresGrad: Bool

    /// Inputs of the op that made this tensor, and how to push this tensor's gradient into them.
    var parents: [Tensor] = []
    /// Receives this tensor's gradient to own (inout: it may be masked or scaled in place, no copy).
    var backwardFn: ((inout [Float]) -> Void)?
    /// Name of the op that made this tensor (for debugging and graph dumps).
    public var op: String = "leaf"

    public init(shape: [Int], data: [Float], requiresGrad: Bool = false) {
        precondition(shape.reduce(1, *) == data.count, "shape \(shape) does not match \(data.count) values")
        self.shape = shape
        self.storage = data
        self.requiresGrad = requiresGrad
    }

    public convenience init(zeros shape: [Int], requiresGrad: Bool = false) {
        self.init(shape: shape, data: [Float](repeating: 0, count: shape.reduce(1, *)), requiresGrad: requiresGrad)
    }

    public convenience init(scalar: Float) {
        self.init(shape: [], data: [scalar])
    }

    public var count: Int { data.count }
    public var rank: Int { shape.count }
    public var item: Float {
        precondition(data.count == 1, "item() needs a single value, tensor has shape \(shape)")
        return data[0]
    }

    /// A new leaf holding a copy of the values (no graph).
    public func detached(requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: shape, data: data, requiresGrad: requiresGrad)
    }

    public func reshaped(_ newShape: [Int]) -> Tensor {
        let out = Tensor(shape: newShape, data: data)
        out.record(op: "reshape", parents: [self]) { [unowned self] g in self.accumulate(g) }
        return out
    }
}

// MARK: - Packed weights

/// Serializes the making of packed forms (once per weight tensor; renders on several threads share weights).
private let packLock = NSLock()

extension Tensor {
    /// The packed form `key` of this tensor's values, made by `make` on first use and kept until `data` changes.
    func packedForm(_ key: String, _ make: ([Float]) -> [Float]) -> [Float] {
        packLock.lock(); defer { packLock.unlock() }
        if let p = packed?[key] { return p }
        let p = make(data)
        packed = (packed ?? [:]).merging([key: p]) { $1 }
        return p
    }
}

// MARK: - Autograd plumbing

extension Tensor {
    /// Whether an op on these inputs must record a backward closure.
    static func needsGrad(_ inputs: [Tensor?]) -> Bool {
        GradMode.enabled && inputs.contains { $0.map { $0.requiresGrad || $0.backwardFn != nil } ?? false }
    }

    /// Attach `backward` to this freshly made output if any parent needs a gradient. This is how an op is
    /// defined (here or in another module): compute the output, then record how its gradient reaches its inputs.
    public func record(op name: String, parents: [Tensor], _ backward: @escaping (inout [Float]) -> Void) {
        op = name
        guard Tensor.needsGrad(parents) else { return }
        self.parents = parents
        self.backwardFn = backward
    }

    /// Whether this tensor takes part in gradient flow (is a leaf that wants one, or depends on one).
    public var tracksGrad: Bool { requiresGrad || backwardFn != nil }

    /// Add `g` into this tensor's gradient buffer (a no-op for tensors outside the gradient graph).
    public func accumulate(_ g: [Float]) {
        guard tracksGrad else { return }
        if grad == nil {
            grad = g
        } else {
            grad!.withUnsafeMutableBufferPointer { dst in
                g.withUnsafeBufferPointer { src in
                    for i in 0..<dst.count { dst[i] += src[i] }
                }
            }
        }
    }

    /// Reverse-mode sweep from this tensor. `seed` defaults to ones (d self / d self) for a scalar.
    public func backward(seed: [Float]? = nil) {
        let start = seed ?? [Float](repeating: 1, count: count)
        precondition(start.count == count, "backward seed has \(start.count) values, tensor has \(count)")
        // Topological order by iterative DFS (the graph can be deep: no recursion).
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (node, expanded) = stack.popLast() {
            if expanded { order.append(node); continue }
            if !visited.insert(ObjectIdentifier(node)).inserted { continue }
            stack.append((node, true))
            for p in node.parents where p.tracksGrad { stack.append((p, false)) }
        }
        // Intermediate gradients are freed after use; leaves keep theirs.
        for node in order where node.backwardFn != nil { node.grad = nil }
        grad = nil
        accumulate(start)
        for node in order.reversed() {
            guard let fn = node.backwardFn, var g = node.grad else { continue }
            // Hand an intermediate's gradient over instead of sharing it, so an op can mask it in place
            // without a copy-on-write copy.
            if !node.requiresGrad { node.grad = nil }
            if Profiler.enabled {
                let start = Profiler.now()
                fn(&g)
                Profiler.record("backward \(node.op) \(node.shape)", since: start)
            } else {
                fn(&g)
            }
        }
    }

    /// Drop the recorded graph below this tensor (frees activations held for backward).
    public func releaseGraph() {
        parents = []
        backwardFn = nil
    }
}

/// Global switch to run ops without recording a tape (like `torch.no_grad()`).
public enum GradMode {
    nonisolated(unsafe) public static var enabled = true

    public static func withoutGrad<T>(_ body: () throws -> T) rethrows -> T {
        let saved = enabled
        enabled = false
        defer { enabled = saved }
        return try body()
    }
}

/// A float array whose every element the caller promises to write before reading (skips a zero-fill pass,
/// which for multi-megabyte activations costs as much as the arithmetic that follows).
@inline(__always)
func uninitializedFloats(_ count: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
}
