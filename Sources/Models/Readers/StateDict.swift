import Engine
import Foundation

/// Named float32 tensors read from a checkpoint, in file order.
public struct StateDict {
    public var keys: [String]
    public var tensors: [String: Tensor]

    public init(keys: [String] = [], tensors: [String: Tensor] = [:]) {
        self.keys = keys; self.tensors = tensors
    }

    public subscript(_ key: String) -> Tensor? { tensors[key] }

    public mutating func set(_ key: String, _ tensor: Tensor) {
        if tensors[key] == nil { keys.append(key) }
        tensors[key] = tensor
    }
}

/// A checkpoint that cannot be used, in one line naming the file.
public struct CheckpointError: Error, CustomStringConvertible {
    public let file: String
    public let reason: String
    public var description: String { "\(file): \(reason)" }
}

/// Raw storage bytes -> Float values, for every dtype a state_dict may hold.
enum StorageDecoder {
    static func floats(_ bytes: ArraySlice<UInt8>, _ type: StorageType) -> [Float] {
        let n = bytes.count / type.elementSize
        return bytes.withUnsafeBytes { raw -> [Float] in
            switch type {
            case .FloatStorage: return (0..<n).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
            case .DoubleStorage: return (0..<n).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self)) }
            case .HalfStorage: return (0..<n).map { halfToFloat(raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) }
            case .BFloat16Storage:
                return (0..<n).map { Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) << 16) }
            case .LongStorage: return (0..<n).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
            case .IntStorage: return (0..<n).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
            case .ShortStorage: return (0..<n).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 2, as: Int16.self)) }
            case .CharStorage: return (0..<n).map { Float(raw.load(fromByteOffset: $0, as: Int8.self)) }
            case .ByteStorage, .BoolStorage: return (0..<n).map { Float(raw.load(fromByteOffset: $0, as: UInt8.self)) }
            }
        }
    }

    /// IEEE half -> float, including subnormals, infinities and NaN.
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31, exp = Int((h >> 10) & 0x1F), frac = UInt32(h & 0x3FF)
        if exp == 0 { return Float(bitPattern: sign) + (sign != 0 ? -1 : 1) * Float(frac) * 0x1p-24 }
        if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (frac << 13)) }
        return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (frac << 13))
    }

    /// Copies a (possibly strided) view out of its storage into contiguous row-major order.
    static func materialize(_ t: TensorRef, storage: [Float], name: String) throws -> Tensor {
        guard t.offset >= 0, t.size.allSatisfy({ $0 >= 0 }), t.stride.allSatisfy({ $0 >= 0 }) else {
            throw RestrictedUnpickler.Refused(message: "tensor '\(name)' has a negative size, stride or offset")
        }
        var count = 1, last = t.offset
        for (n, s) in zip(t.size, t.stride) {
            let (c, o1) = count.multipliedReportingOverflow(by: n)
            let (span, o2) = max(n - 1, 0).multipliedReportingOverflow(by: s)
            guard !o1, !o2, c <= 1 << 31 else { throw RestrictedUnpickler.Refused(message: "tensor '\(name)' is implausibly large") }
            count = c; last += span
        }
        guard count == 0 || last < storage.count else {
            throw RestrictedUnpickler.Refused(message: "tensor '\(name)' reaches element \(last) of a \(storage.count)-element storage")
        }
        var out = [Float](repeating: 0, count: count)
        if count > 0 {
            // Odometer over the index space; the innermost dimension runs as a strided copy.
            let rank = t.size.count
            if rank == 0 {
                out[0] = storage[t.offset]
            } else {
                let inner = t.size[rank - 1], innerStride = t.stride[rank - 1]
                var index = [Int](repeating: 0, count: rank - 1)
                var dst = 0
                storage.withUnsafeBufferPointer { src in
                    while dst < count {
                        var base = t.offset
                        for d in 0..<(rank - 1) { base += index[d] * t.stride[d] }
                        for i in 0..<inner { out[dst + i] = src[base + i * innerStride] }
                        dst += inner
                        var d = rank - 2
                        while d >= 0 { index[d] += 1; if index[d] < t.size[d] { break }; index[d] = 0; d -= 1 }
                    }
                }
            }
        }
        return Tensor(shape: t.size, data: out)
    }
}
