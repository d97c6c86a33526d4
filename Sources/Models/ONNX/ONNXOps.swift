import Engine
import Foundation
import ONNXProto

/// The op table: one small function per ONNX op, on engine tensors (so each has its backward), following the
/// ONNX operator specs for opsets 11–21 (attributes that became inputs are read from wherever the opset puts them).
enum ONNXOps {
    typealias Node = ONNXGraph.Node

    static func unsupported(_ what: String) -> ONNXError { ONNXError(what, unsupported: true) }

    static func int(_ n: Node, _ key: String, _ def: Int) -> Int { n.attributes[key].map { Int($0.i) } ?? def }
    static func float(_ n: Node, _ key: String, _ def: Float) -> Float { n.attributes[key].map { $0.f } ?? def }
    static func ints(_ n: Node, _ key: String) -> [Int]? { n.attributes[key].map { $0.ints.map { Int($0) } } }
    static func string(_ n: Node, _ key: String, _ def: String) -> String { n.attributes[key].map { String(decoding: $0.s, as: UTF8.self) } ?? def }

    static func tensor(_ v: ONNXValue?, _ what: String) throws -> Tensor {
        switch v {
        case .float(let t)?: return t
        case .ints(let i, let s)?: return Tensor(shape: s, data: i.map(Float.init))
        case nil: throw ONNXError("missing \(what)")
        }
    }

    static func intList(_ v: ONNXValue?, _ what: String) throws -> [Int] {
        switch v {
        case .ints(let i, _)?: return i
        case .float(let t)?:
            return try t.data.map { f in
                guard f.isFinite, abs(f) < 9e15 else { throw ONNXError("\(what) value \(f) is not an integer vizlab can use") }
                return Int(f)
            }
        case nil: throw ONNXError("missing \(what)")
        }
    }

    /// A shape-only op (Slice, Gather, Concat, Reshape, Transpose, Squeeze, Flatten…) on integer values: run on a
    /// tensor of element indices, so the integers themselves never pass through float32.
    static func onInts(_ parts: [(values: [Int], shape: [Int])], _ f: ([Tensor]) throws -> Tensor) throws -> ONNXValue {
        var all: [Int] = [], tensors: [Tensor] = []
        for p in parts {
            guard all.count + p.values.count <= 1 << 24 else { throw ONNXError("integer values too large") }
            tensors.append(Tensor(shape: p.shape, data: (all.count..<(all.count + p.values.count)).map(Float.init)))
            all += p.values
        }
        let y = try f(tensors)
        return .ints(y.data.map { all[Int($0)] }, shape: y.shape)
    }

    static func scalar(_ v: ONNXValue?) throws -> Float? {
        guard let v else { return nil }
        let t = try tensor(v, "scalar")
        guard t.count == 1 else { throw ONNXError("expected a scalar, got shape \(t.shape)") }
        return t.data[0]
    }

    static func axis(_ a: Int, rank: Int) throws -> Int {
        let r = a < 0 ? a &+ rank : a
        guard rank >= 1, (0..<rank).contains(r) else { throw ONNXError("axis \(a) of a rank-\(rank) tensor") }
        return r
    }

    static func constant(_ n: Node) throws -> ONNXValue {
        if let t = n.attributes["value"] { return try ONNXTensorReader.decode(t.t, folder: nil, what: "constant '\(n.name)'") }
        if let a = n.attributes["value_float"] { return .float(Tensor(shape: [], data: [a.f])) }
        if let a = n.attributes["value_floats"] { return .float(Tensor(shape: [a.floats.count], data: a.floats)) }
        if let a = n.attributes["value_int"] { return .ints([Int(a.i)], shape: []) }
        if let a = n.attributes["value_ints"] { return .ints(a.ints.map { Int($0) }, shape: [a.ints.count]) }
        throw unsupported("Constant '\(n.name)' of a kind vizlab does not read (sparse or string)")
    }

    /// `batch`: the batch the graph declares for its input and the one running now — a graph traced at a fixed batch
    /// (torch's `x.view(N, -1)` becomes Reshape to [N, -1]) then runs at any batch.
    /// Largest value an op may produce (elements; 1 GiB of float32): no single op of a malformed graph allocates more
    /// (a graph of many such values is not budgeted as a whole).
    static let maxElements = 1 << 28

    /// Every dimension and the product of them (empty ones counted as 1, so a zero cannot hide a huge one).
    static func bounded(_ shape: [Int], _ what: String) throws {
        var n = 1
        for d in shape {
            guard d >= 0, d <= maxElements else { throw ONNXError("\(what) of shape \(shape) is too large") }
            let (m, o) = n.multipliedReportingOverflow(by: max(d, 1))
            guard !o, m <= maxElements else { throw ONNXError("\(what) of shape \(shape) is too large") }
            n = m
        }
    }

    static func run(_ n: Node, _ x: [ONNXValue?], opset: Int, batch: (declared: Int, actual: Int)? = nil) throws -> [ONNXValue] {
        func t(_ i: Int) throws -> Tensor { try tensor(i < x.count ? x[i] : nil, "input \(i)") }
        func one(_ v: Tensor) -> [ONNXValue] { [.float(v)] }
        /// The first input with a new shape (integers stay integers).
        func reshaped(_ shape: [Int]) throws -> [ONNXValue] {
            switch x.first ?? nil {
            case .ints(let iv, _)?: return [.ints(iv, shape: shape)]
            case .float(let f)?: return one(f.reshaped(shape))
            case nil: throw ONNXError("missing input")
            }
        }
        if n.outputs.count > 1, !["Dropout", "MaxPool", "BatchNormalization"].contains(n.opType) {
            throw unsupported("\(n.outputs.count) outputs")
        }
        switch n.opType {
        case "Identity":
            guard let v = x.first ?? nil else { throw ONNXError("missing input") }
            return [v]
        case "Dropout":
            if n.outputs.count > 1, !n.outputs[1].isEmpty { throw unsupported("Dropout's mask output") }
            if x.count > 2, let training = try scalar(x[2]), training != 0 { throw unsupported("Dropout in training mode") }
            return one(try t(0))
        case "Relu": return one(relu(try t(0)))
        case "Sigmoid": return one(sigmoid(try t(0)))
        case "LeakyRelu": return one(leakyRelu(try t(0), alpha: float(n, "alpha", 0.01)))
        case "HardSigmoid": return one(hardSigmoid(try t(0), alpha: float(n, "alpha", 0.2), beta: float(n, "beta", 0.5)))
        case "HardSwish": return one(hardSwish(try t(0)))
        case "Clip":
            let v = try t(0)
            let lo = try (x.count > 1 ? scalar(x[1]) : nil) ?? -Float.greatestFiniteMagnitude
            let hi = try (x.count > 2 ? scalar(x[2]) : nil) ?? Float.greatestFiniteMagnitude
            return one(lo == 0 && hi == 6 && v.rank == 4 ? relu6(v) : clip(v, min: lo, max: hi))
        case "Add", "Sub", "Mul", "Div":
            let a = try t(0), b = try t(1)
            guard let out = broadcastShape(a.shape, b.shape) else { throw ONNXError("shapes \(a.shape) and \(b.shape) do not broadcast") }
            try bounded(out, "the result")
            let kind: BinaryKind = ["Add": .add, "Sub": .sub, "Mul": .mul, "Div": .div][n.opType]!
            if kind == .add, a.shape == b.shape { return one(add(a, b)) }
            return one(binary(a, b, kind))
        case "Concat":
            let shapes = x.map { $0?.shape ?? [] }
            guard let first = shapes.first, x.allSatisfy({ $0 != nil }) else { throw ONNXError("no inputs") }
            let ax = try axis(int(n, "axis", 1), rank: first.count)
            guard shapes.allSatisfy({ $0.count == first.count && zip($0, first).enumerated().allSatisfy { $0.offset == ax || $0.element.0 == $0.element.1 } }) else {
                throw ONNXError("shapes \(shapes) do not concatenate along \(ax)")
            }
            var out = first
            out[ax] = shapes.map { $0[ax] }.reduce(0) { $0 &+ $1 }
            try bounded(out, "the concatenation")
            if x.allSatisfy({ if case .ints? = $0 { return true }; return false }) {
                return [try onInts(x.map { if case let .ints(v, s)? = $0 { return (v, s) }; return ([], []) }) { concat($0, axis: ax) }]
            }
            let parts = try x.indices.map { try t($0) }
            return one(concat(parts, axis: ax))
        case "Flatten":
            let v = try t(0)
            let a = int(n, "axis", 1), ax = a < 0 ? a + v.rank : a
            guard (0...v.rank).contains(ax) else { throw ONNXError("axis \(a) of a rank-\(v.rank) tensor") }
            let outer = v.shape[..<ax].reduce(1, *)
            return try reshaped([outer, v.count / max(outer, 1)])
        case "Reshape":
            let v = try t(0)
            var shape = try intList(x.count > 1 ? x[1] : nil, "shape")
            let allowZero = int(n, "allowzero", 0) != 0
            if let b = batch, b.declared != b.actual, shape.first == b.declared, v.shape.first == b.actual { shape[0] = b.actual }
            for (i, d) in shape.enumerated() where d == 0 && !allowZero {
                guard i < v.rank else { throw ONNXError("shape \(shape): 0 copies a dimension the input lacks") }
                shape[i] = v.shape[i]
            }
            guard shape.allSatisfy({ $0 >= -1 }), shape.filter({ $0 == -1 }).count <= 1 else { throw ONNXError("cannot reshape \(v.shape) to \(shape)") }
            if let i = shape.firstIndex(of: -1) {
                let others = shape.enumerated().filter { $0.offset != i }.map(\.element)
                try bounded(others, "the reshaped value")
                let rest = others.reduce(1, *)
                guard rest > 0, v.count % rest == 0 else { throw ONNXError("cannot reshape \(v.shape) to \(shape)") }
                shape[i] = v.count / rest
            }
            try bounded(shape, "the reshaped value")
            guard shape.reduce(1, *) == v.count else { throw ONNXError("cannot reshape \(v.shape) to \(shape)") }
            return try reshaped(shape)
        case "Transpose":
            let v = try t(0)
            let perm = ints(n, "perm") ?? Array((0..<v.rank).reversed())
            guard perm.count == v.rank, Set(perm) == Set(0..<v.rank) else { throw ONNXError("perm \(perm) of shape \(v.shape)") }
            if case let .ints(iv, sh)? = x.first { return [try onInts([(iv, sh)]) { permute($0[0], perm) }] }
            return one(permute(v, perm))
        case "Squeeze", "Unsqueeze":
            let v = try t(0)
            let axesIn = opset >= 13 ? (x.count > 1 && x[1] != nil ? try intList(x[1], "axes") : nil) : ints(n, "axes")
            var shape = v.shape
            if n.opType == "Squeeze" {
                let axes = try (axesIn ?? v.shape.indices.filter { v.shape[$0] == 1 }).map { try axis($0, rank: v.rank) }
                guard axes.allSatisfy({ v.shape[$0] == 1 }) else { throw ONNXError("squeezes axes \(axes) of \(v.shape), not all 1") }
                shape = v.shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
            } else {
                guard let axesIn else { throw ONNXError("Unsqueeze without axes") }
                let rank = v.rank + axesIn.count
                let axes = try axesIn.map { try axis($0, rank: rank) }.sorted()
                guard Set(axes).count == axes.count else { throw ONNXError("repeated axes \(axesIn)") }
                for a in axes { shape.insert(1, at: a) }
            }
            return try reshaped(shape)
        case "Softmax":
            let v = try t(0)
            if opset < 13 {  // coerced to 2-D at `axis` (default 1), softmax over the second dimension
                let ax = try axis(int(n, "axis", 1), rank: v.rank)
                let outer = v.shape[..<ax].reduce(1, *)
                return one(softmax(v.reshaped([outer, v.count / max(outer, 1)]), axis: 1).reshaped(v.shape))
            }
            return one(softmax(v, axis: try axis(int(n, "axis", -1), rank: v.rank)))
        case "ReduceMean":
            let v = try t(0)
            let keep = int(n, "keepdims", 1) != 0
            var axes: [Int]? = opset >= 18 ? (x.count > 1 && x[1] != nil ? try intList(x[1], "axes") : nil) : ints(n, "axes")
            if axes?.isEmpty == true { axes = nil }
            if axes == nil, int(n, "noop_with_empty_axes", 0) != 0 { return one(v) }
            let resolved = try (axes ?? Array(0..<v.rank)).map { try axis($0, rank: v.rank) }
            if resolved.sorted() == [2, 3], v.rank == 4, !keep { return one(globalAveragePool(v)) }
            return one(reduceMean(v, axes: resolved, keepDims: keep))
        case "GlobalAveragePool":
            let v = try t(0)
            guard v.rank >= 3 else { throw ONNXError("input \(v.shape) has no spatial axes") }
            if v.rank == 4 { return one(globalAveragePool(v).reshaped([v.shape[0], v.shape[1], 1, 1])) }
            return one(reduceMean(v, axes: Array(2..<v.rank), keepDims: true))
        case "MatMul":
            let a = try t(0), b = try t(1)
            guard a.rank >= 1, b.rank >= 1, a.shape[a.rank - 1] == (b.rank == 1 ? b.shape[0] : b.shape[b.rank - 2]),
                  broadcastShape(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2))) != nil || a.rank < 3 || b.rank < 3 else {
                throw ONNXError("matmul of \(a.shape) and \(b.shape)")
            }
            try bounded(Array(a.shape.dropLast()) + [b.rank == 1 ? 1 : b.shape[b.rank - 1]] + Array(b.shape.dropLast(2)), "the product")
            return one(batchMatmul(a, b))
        case "Gemm":
            var a = try t(0), b = try t(1)
            guard a.rank == 2, b.rank == 2 else { throw ONNXError("Gemm of \(a.shape) and \(b.shape) (2-D only)") }
            let alpha = float(n, "alpha", 1), beta = float(n, "beta", 1)
            let transA = int(n, "transA", 0) != 0, transB = int(n, "transB", 0) != 0
            guard (transA ? a.shape[0] : a.shape[1]) == (transB ? b.shape[1] : b.shape[0]) else { throw ONNXError("Gemm of \(a.shape) and \(b.shape)") }
            try bounded([transA ? a.shape[1] : a.shape[0], transB ? b.shape[0] : b.shape[1]], "the product")
            var y: Tensor
            if !transA, transB, x.count > 2, let cv = x[2], alpha == 1, beta == 1, case let .float(c) = cv, c.shape == [b.shape[0]] {
                y = linear(a, b, bias: c)  // the common Linear export, on the engine's GEMM
                return one(y)
            }
            if transA { a = transpose(a) }
            if transB { b = transpose(b) }
            y = batchMatmul(a, b)
            if alpha != 1 { y = scale(y, by: alpha) }
            if x.count > 2, x[2] != nil, beta != 0 {
                var c = try t(2)
                guard broadcastShape(c.shape, y.shape) == y.shape else { throw ONNXError("Gemm's C \(c.shape) does not broadcast to \(y.shape)") }
                if beta != 1 { c = scale(c, by: beta) }
                y = binary(y, c, .add)
            }
            return one(y)
        case "BatchNormalization":
            if int(n, "training_mode", 0) != 0 || n.outputs.dropFirst().contains(where: { !$0.isEmpty }) { throw unsupported("BatchNormalization in training mode") }
            let v = try t(0), s = try t(1), b = try t(2), m = try t(3), va = try t(4)
            guard v.rank >= 2 else { throw ONNXError("input \(v.shape) has no channel axis") }
            let c = v.shape[1]
            guard [s, b, m, va].allSatisfy({ $0.count == c }) else { throw ONNXError("parameters do not have \(c) channels") }
            let eps = float(n, "epsilon", 1e-5)
            if v.rank == 4 { return one(batchNorm(v, BatchNormParameters(gamma: s.data, beta: b.data, mean: m.data, variance: va.data, eps: eps))) }
            let shape = [c] + [Int](repeating: 1, count: v.rank - 2)
            let inv = zip(s.data, va.data).map { $0 / ($1 + eps).squareRoot() }
            let shift = zip(zip(b.data, m.data), inv).map { $0.0 - $0.1 * $1 }
            return one(binary(binary(v, Tensor(shape: shape, data: inv), .mul), Tensor(shape: shape, data: shift), .add))
        case "Pad":
            let v = try t(0)
            let mode = string(n, "mode", "constant")
            guard mode == "constant" else { throw unsupported("Pad mode '\(mode)'") }
            var pads = try intList(x.count > 1 ? x[1] : nil, "pads")
            let value = try (x.count > 2 ? scalar(x[2]) : nil) ?? 0
            if opset >= 18, x.count > 3, x[3] != nil {
                let axes = try intList(x[3], "axes").map { try axis($0, rank: v.rank) }
                guard pads.count == 2 * axes.count else { throw ONNXError("pads \(pads) for axes \(axes)") }
                var full = [Int](repeating: 0, count: 2 * v.rank)
                for (i, a) in axes.enumerated() { full[a] = pads[i]; full[v.rank + a] = pads[axes.count + i] }
                pads = full
            }
            guard pads.count == 2 * v.rank else { throw ONNXError("pads \(pads) for a rank-\(v.rank) tensor") }
            guard pads.allSatisfy({ abs($0) <= 1 << 16 }) else { throw ONNXError("pads \(pads) are out of range") }
            guard (0..<v.rank).allSatisfy({ v.shape[$0] + pads[$0] + pads[v.rank + $0] >= 0 }) else { throw ONNXError("pads \(pads) crop \(v.shape) below zero") }
            try bounded((0..<v.rank).map { v.shape[$0] + pads[$0] + pads[v.rank + $0] }, "the padded value")
            if v.rank == 4, value == 0, pads[0] == 0, pads[1] == 0, pads[4] == 0, pads[5] == 0, pads.allSatisfy({ $0 >= 0 }) {
                return one(zeroPad2d(v, top: pads[2], bottom: pads[6], left: pads[3], right: pads[7]))
            }
            return one(pad(v, pads: pads, value: value))
        case "Cast":
            guard let v = x.first ?? nil else { throw ONNXError("missing input") }
            let to = int(n, "to", 1)
            switch Onnx_TensorProto.DataType(rawValue: to) {
            case .float?, .double?, .float16?: return one(try tensor(v, "input"))  // float16's rounding is within float32's tolerances
            case .bfloat16?: throw unsupported("Cast to bfloat16 (vizlab computes in float32)")
            case .int64?, .int32?, .int16?, .int8?, .uint8?, .uint16?, .uint32?, .uint64?, .bool?:
                if case .ints = v { return [v] }
                let f = try tensor(v, "input")
                return [.ints(f.data.map { $0.isFinite && abs($0) < 9e15 ? Int($0.rounded(.towardZero)) : 0 }, shape: f.shape)]
            default: throw unsupported("Cast to type \(to)")
            }
        case "ConstantOfShape":
            let shape = try intList(x.first ?? nil, "shape")
            guard shape.allSatisfy({ (0...(1 << 24)).contains($0) }) else { throw ONNXError("shape \(shape) is out of range") }
            try bounded(shape, "the constant")
            let count = shape.reduce(1, *)
            let value = try n.attributes["value"].map { try ONNXTensorReader.decode($0.t, folder: nil, what: "value") } ?? .float(Tensor(shape: [1], data: [0]))
            switch value {
            case .float(let t): return one(Tensor(shape: shape, data: [Float](repeating: t.data.first ?? 0, count: count)))
            case .ints(let i, _): return [.ints([Int](repeating: i.first ?? 0, count: count), shape: shape)]
            }
        case "Slice":
            guard let v = x.first ?? nil else { throw ONNXError("missing input") }
            let shape = v.shape
            try bounded(shape, "the sliced value")
            let starts = try intList(x.count > 1 ? x[1] : nil, "starts"), ends = try intList(x.count > 2 ? x[2] : nil, "ends")
            let axes = try (x.count > 3 && x[3] != nil ? intList(x[3], "axes") : Array(0..<starts.count)).map { try axis($0, rank: shape.count) }
            let steps = x.count > 4 && x[4] != nil ? try intList(x[4], "steps") : [Int](repeating: 1, count: starts.count)
            guard starts.count == ends.count, axes.count == starts.count, steps.count == starts.count, !steps.contains(0) else {
                throw ONNXError("starts \(starts), ends \(ends), axes \(axes), steps \(steps)")
            }
            var ranges: [(axis: Int, start: Int, end: Int, step: Int)] = []
            for i in starts.indices {
                let dim = shape[axes[i]], step = steps[i]
                guard step > Int.min / 2, step < Int.max / 2 else { throw ONNXError("step \(step)") }
                var s = starts[i] < 0 ? starts[i] &+ dim : starts[i], e = ends[i] < 0 ? ends[i] &+ dim : ends[i]
                if step > 0 { s = min(max(s, 0), dim); e = min(max(e, 0), dim) } else { s = min(max(s, 0), dim - 1); e = min(max(e, -1), dim - 1) }
                ranges.append((axes[i], s, e, step))
            }
            switch v {
            case .float(let f): return one(slice(f, ranges: ranges))
            case .ints(let i, let s): return [try onInts([(i, s)]) { slice($0[0], ranges: ranges) }]
            }
        case "Shape":
            guard let v = x.first ?? nil else { throw ONNXError("missing input") }
            let r = v.shape.count
            func clamp(_ a: Int) -> Int { min(max(a < 0 ? a + r : a, 0), r) }
            let start = clamp(int(n, "start", 0)), end = clamp(int(n, "end", r))
            let dims = start < end ? Array(v.shape[start..<end]) : []
            return [.ints(dims, shape: [dims.count])]
        case "Gather":
            guard let v = x.first ?? nil else { throw ONNXError("missing input") }
            let idx = try intList(x.count > 1 ? x[1] : nil, "indices"), idxShape = x.count > 1 ? (x[1]?.shape ?? []) : []
            let ax = try axis(int(n, "axis", 0), rank: v.shape.count)
            let len = v.shape[ax]
            let fixed = try idx.map { i -> Int in
                let k = i < 0 ? i + len : i
                guard (0..<len).contains(k) else { throw ONNXError("index \(i) out of range for axis \(ax) of \(v.shape)") }
                return k
            }
            try bounded(Array(v.shape[..<ax]) + idxShape + Array(v.shape[(ax + 1)...]), "the gathered value")
            switch v {
            case .float(let f): return one(gather(f, axis: ax, indices: fixed, indicesShape: idxShape))
            case .ints(let i, let s): return [try onInts([(i, s)]) { gather($0[0], axis: ax, indices: fixed, indicesShape: idxShape) }]
            }
        case "Conv": return one(try conv(n, try t(0), try t(1), x.count > 2 && x[2] != nil ? try t(2) : nil))
        case "MaxPool", "AveragePool":
            if n.outputs.count > 1, !n.outputs[1].isEmpty { throw unsupported("MaxPool's indices output") }
            return one(try pool(n, try t(0)))
        default:
            throw unsupported("op \(n.opType)")
        }
    }

    /// The spatial geometry shared by Conv and the pools: 2-D (or 1-D as H = 1), square stride and dilation.
    struct Window { var kernel: (Int, Int); var stride: Int; var dilation: Int; var pads: (Int, Int, Int, Int) }

    static func window(_ n: Node, input: [Int], kernel: [Int]) throws -> Window {
        let spatial = input.count - 2
        guard spatial == 1 || spatial == 2 else { throw unsupported("\(spatial)-D \(n.opType) (vizlab runs 1-D and 2-D)") }
        guard kernel.count == spatial else { throw ONNXError("kernel_shape \(kernel) for a \(spatial)-D input") }
        let k2 = spatial == 1 ? [1, kernel[0]] : kernel
        let strides = ints(n, "strides") ?? [Int](repeating: 1, count: spatial)
        let dilations = ints(n, "dilations") ?? [Int](repeating: 1, count: spatial)
        guard strides.count == spatial, dilations.count == spatial else { throw ONNXError("strides \(strides) / dilations \(dilations)") }
        guard Set(strides).count == 1, Set(dilations).count == 1 else { throw unsupported("non-square strides \(strides) or dilations \(dilations)") }
        let s = strides[0], d = dilations[0]
        guard (1...1024).contains(s), (1...1024).contains(d), k2.allSatisfy({ (1...1024).contains($0) }) else { throw ONNXError("kernel \(kernel), stride \(s), dilation \(d) out of range") }
        let size = spatial == 1 ? [1, input[2]] : [input[2], input[3]]
        var pads = ints(n, "pads") ?? [Int](repeating: 0, count: 2 * spatial)
        guard pads.count == 2 * spatial, pads.allSatisfy({ (0...4096).contains($0) }) else { throw ONNXError("pads \(pads)") }
        if spatial == 1 { pads = [0, pads[0], 0, pads[1]] }
        switch string(n, "auto_pad", "NOTSET") {
        case "NOTSET": break
        case "VALID": pads = [0, 0, 0, 0]
        case let mode where mode == "SAME_UPPER" || mode == "SAME_LOWER":
            for a in 0..<2 {
                let out = (size[a] + s - 1) / s
                let total = max((out - 1) * s + (k2[a] - 1) * d + 1 - size[a], 0)
                let small = total / 2, large = total - small
                (pads[a], pads[a + 2]) = mode == "SAME_UPPER" ? (small, large) : (large, small)
            }
        case let mode: throw ONNXError("auto_pad '\(mode)'")
        }
        return Window(kernel: (k2[0], k2[1]), stride: s, dilation: d, pads: (pads[0], pads[1], pads[2], pads[3]))
    }

    static func as4D(_ v: Tensor) -> Tensor { v.rank == 3 ? v.reshaped([v.shape[0], v.shape[1], 1, v.shape[2]]) : v }
    static func back(_ y: Tensor, rank: Int) -> Tensor { rank == 3 ? y.reshaped([y.shape[0], y.shape[1], y.shape[3]]) : y }

    static func conv(_ n: Node, _ x: Tensor, _ w: Tensor, _ b: Tensor?) throws -> Tensor {
        guard x.rank == w.rank, x.rank == 3 || x.rank == 4 else { throw unsupported("Conv of \(x.shape) with \(w.shape) (1-D and 2-D only)") }
        let groups = int(n, "group", 1)
        guard groups >= 1, groups <= 1 << 20, x.shape[1] % groups == 0, w.shape[0] % groups == 0, w.shape[1] &* groups == x.shape[1] else {
            throw ONNXError("weight \(w.shape) does not fit input \(x.shape) in \(groups) groups")
        }
        if let b { guard b.count == w.shape[0] else { throw ONNXError("bias of \(b.count) for \(w.shape[0]) filters") } }
        let kernel = Array(w.shape.dropFirst(2))
        if let k = ints(n, "kernel_shape"), k != kernel { throw ONNXError("kernel_shape \(k) but weight \(w.shape)") }
        let g = try window(n, input: x.shape, kernel: kernel)
        let x4 = as4D(x), w4 = as4D(w)
        if let o = WindowGeometry.outputSize(inH: x4.shape[2], inW: x4.shape[3], kH: g.kernel.0, kW: g.kernel.1, stride: g.stride, dilation: g.dilation,
                                             padding: .explicit(top: g.pads.0, bottom: g.pads.2, left: g.pads.1, right: g.pads.3)) {
            try bounded([x.shape[0], w.shape[0], o.h, o.w], "the conv output")
            try bounded([w.shape[1], g.kernel.0, g.kernel.1, o.h, o.w], "the conv's work space")
        }
        guard WindowGeometry.outputSize(inH: x4.shape[2], inW: x4.shape[3], kH: g.kernel.0, kW: g.kernel.1, stride: g.stride, dilation: g.dilation,
                                        padding: .explicit(top: g.pads.0, bottom: g.pads.2, left: g.pads.1, right: g.pads.3)) != nil else {
            throw ONNXError("a \(kernel) window does not fit \(x.shape)")
        }
        let y = conv2d(x4, w4, bias: b, stride: g.stride, dilation: g.dilation,
                       padding: .explicit(top: g.pads.0, bottom: g.pads.2, left: g.pads.1, right: g.pads.3), groups: groups)
        return back(y, rank: x.rank)
    }

    static func pool(_ n: Node, _ x: Tensor) throws -> Tensor {
        guard x.rank == 3 || x.rank == 4 else { throw unsupported("\(n.opType) of \(x.shape) (1-D and 2-D only)") }
        guard let kernel = ints(n, "kernel_shape") else { throw ONNXError("no kernel_shape") }
        var g = try window(n, input: x.shape, kernel: kernel)
        guard g.dilation == 1 else { throw unsupported("dilated pooling") }
        guard g.kernel.0 == g.kernel.1 || x.rank == 3 else { throw unsupported("non-square pooling window \(kernel)") }
        let k = max(g.kernel.0, g.kernel.1)
        if x.rank == 3, g.kernel.0 != g.kernel.1 { throw unsupported("1-D pooling") }
        let x4 = as4D(x)
        let h = x4.shape[2], w = x4.shape[3]
        if int(n, "ceil_mode", 0) != 0 {
            // Ceil mode: extra padding at the end so the last partial window counts (never a window wholly in padding).
            for (a, size) in [(0, h), (1, w)] {
                let (p0, p1) = a == 0 ? (g.pads.0, g.pads.2) : (g.pads.1, g.pads.3)
                let span = size + p0 + p1 - k
                guard span >= 0 else { break }
                var out = (span + g.stride - 1) / g.stride + 1
                if (out - 1) * g.stride >= size + p0 { out -= 1 }
                let extra = max((out - 1) * g.stride + k - (size + p0 + p1), 0)
                if a == 0 { g.pads.2 += extra } else { g.pads.3 += extra }
                if extra > 0, n.opType == "AveragePool", int(n, "count_include_pad", 0) != 0 { throw unsupported("ceil_mode with count_include_pad") }
            }
        }
        let padding = Padding.explicit(top: g.pads.0, bottom: g.pads.2, left: g.pads.1, right: g.pads.3)
        guard let o = WindowGeometry.outputSize(inH: h, inW: w, kH: k, kW: k, stride: g.stride, dilation: 1, padding: padding) else {
            throw ONNXError("a \(kernel) window does not fit \(x.shape)")
        }
        try bounded([x.shape[0], x.shape[1], o.h, o.w], "the pooled value")
        guard [g.pads.0, g.pads.1, g.pads.2, g.pads.3].allSatisfy({ $0 < k }) else { throw unsupported("pooling padding \(g.pads) not smaller than the window") }
        let y = n.opType == "MaxPool" ? maxPool2d(x4, kernel: k, stride: g.stride, padding: padding)
            : avgPool2d(x4, kernel: k, stride: g.stride, padding: padding, countPadding: int(n, "count_include_pad", 0) != 0)
        return back(y, rank: x.rank)
    }
}
