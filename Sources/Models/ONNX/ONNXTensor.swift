import Engine
import Foundation
import ONNXProto
import SwiftProtobuf

/// A value of an ONNX graph: float32 data (what flows and gets gradients) or integers (shapes, axes, pads).
enum ONNXValue {
    case float(Tensor)
    case ints([Int], shape: [Int])

    var shape: [Int] {
        switch self {
        case .float(let t): return t.shape
        case .ints(_, let s): return s
        }
    }
}

/// Why an ONNX file cannot be used, in one line.
public struct ONNXError: Error, CustomStringConvertible {
    public var message: String
    /// The file uses something vizlab does not implement (the conformance runner counts these as skipped).
    public var unsupported: Bool
    init(_ message: String, unsupported: Bool = false) { self.message = message; self.unsupported = unsupported }
    public var description: String { message }
}

/// TensorProto → value, every size bounded before anything is allocated; external data only from files inside the
/// model's own folder.
enum ONNXTensorReader {
    /// Largest tensor (elements): 4 GiB of float32.
    static let maxElements = 1 << 30

    static func decode(_ t: Onnx_TensorProto, folder: URL?, what: String) throws -> ONNXValue {
        let name = t.name.isEmpty ? what : "tensor '\(t.name)'"
        var count = 1, bound = 1
        for d in t.dims {
            guard d >= 0, d <= Int64(maxElements) else { throw ONNXError("\(name): dimension \(d) is out of range") }
            let (b, o) = bound.multipliedReportingOverflow(by: max(Int(d), 1))  // a zero cannot hide a huge dimension
            guard !o, b <= maxElements else { throw ONNXError("\(name): declared shape \(t.dims) exceeds 4 GiB") }
            bound = b
            count *= Int(d)
        }
        let shape = t.dims.map { Int($0) }
        guard let type = Onnx_TensorProto.DataType(rawValue: Int(t.dataType)) else { throw ONNXError("\(name): unknown data type \(t.dataType)") }
        let elementSize: Int
        switch type {
        case .float, .int32, .uint32: elementSize = 4
        case .double, .int64, .uint64: elementSize = 8
        case .float16, .bfloat16, .int16, .uint16: elementSize = 2
        case .int8, .uint8, .bool: elementSize = 1
        default: throw ONNXError("\(name): data type \(type) is not supported", unsupported: true)
        }
        var raw: Data?
        if t.dataLocation == .external {
            raw = try external(t, folder: folder, name: name, bytes: count * elementSize)
        } else if !t.rawData.isEmpty {
            raw = t.rawData
        }
        if let raw {
            guard raw.count == count * elementSize else {
                throw ONNXError("\(name): holds \(raw.count) bytes for \(count) \(type) elements (\(count * elementSize) bytes)")
            }
            return raw.withUnsafeBytes { p -> ONNXValue in
                func f<T>(_: T.Type, _ conv: (T) -> Float) -> ONNXValue {
                    .float(Tensor(shape: shape, data: (0..<count).map { conv(p.loadUnaligned(fromByteOffset: $0 * elementSize, as: T.self)) }))
                }
                func i<T: BinaryInteger>(_: T.Type) -> ONNXValue {
                    .ints((0..<count).map { Int(clamping: p.loadUnaligned(fromByteOffset: $0 * elementSize, as: T.self)) }, shape: shape)
                }
                switch type {
                case .float: return f(Float.self) { $0 }
                case .double: return f(Double.self) { Float($0) }
                case .float16: return f(UInt16.self) { StorageDecoder.halfToFloat($0) }
                case .bfloat16: return f(UInt16.self) { Float(bitPattern: UInt32($0) << 16) }
                case .int64: return i(Int64.self)
                case .int32: return i(Int32.self)
                case .uint64: return i(UInt64.self)
                case .uint32: return i(UInt32.self)
                case .int16: return i(Int16.self)
                case .uint16: return i(UInt16.self)
                case .int8: return i(Int8.self)
                default: return i(UInt8.self)
                }
            }
        }
        func check(_ n: Int) throws { guard n == count else { throw ONNXError("\(name): holds \(n) values for shape \(shape)") } }
        switch type {
        case .float: try check(t.floatData.count); return .float(Tensor(shape: shape, data: t.floatData))
        case .double: try check(t.doubleData.count); return .float(Tensor(shape: shape, data: t.doubleData.map(Float.init)))
        case .float16, .bfloat16:
            try check(t.int32Data.count)
            return .float(Tensor(shape: shape, data: t.int32Data.map { type == .float16 ? StorageDecoder.halfToFloat(UInt16(truncatingIfNeeded: $0)) : Float(bitPattern: UInt32(truncatingIfNeeded: $0) << 16) }))
        case .int64: try check(t.int64Data.count); return .ints(t.int64Data.map { Int($0) }, shape: shape)
        case .uint64, .uint32: try check(t.uint64Data.count); return .ints(t.uint64Data.map { Int(clamping: $0) }, shape: shape)
        default: try check(t.int32Data.count); return .ints(t.int32Data.map { Int($0) }, shape: shape)
        }
    }

    /// External data: `location` relative to the model's folder, never outside it (no absolute paths, no `..`,
    /// no symlink out), offset + length within the file.
    static func external(_ t: Onnx_TensorProto, folder: URL?, name: String, bytes: Int) throws -> Data {
        guard let folder else { throw ONNXError("\(name): external data needs the model's folder") }
        var entries: [String: String] = [:]
        for e in t.externalData { entries[e.key] = e.value }
        guard let location = entries["location"], !location.isEmpty else { throw ONNXError("\(name): external data without a location") }
        let root = folder.standardizedFileURL.resolvingSymlinksInPath().path
        let target = URL(fileURLWithPath: location, relativeTo: folder).standardizedFileURL.resolvingSymlinksInPath()
        guard !location.hasPrefix("/"), !location.split(separator: "/").contains(".."), target.path.hasPrefix(root + "/") else {
            throw ONNXError("\(name): external data path '\(location)' leaves the model's folder")
        }
        let offset = Int(entries["offset"] ?? "0") ?? -1, length = entries["length"].map { Int($0) ?? -1 } ?? bytes
        guard offset >= 0, offset <= Int.max / 2, length == bytes else { throw ONNXError("\(name): external data offset \(entries["offset"] ?? "") / length \(entries["length"] ?? "") do not fit \(bytes) bytes") }
        // Opened without following a last symlink and without blocking (a FIFO), and only a regular file is read.
        let fd = open(target.path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw ONNXError("\(name): external data file '\(location)' cannot be read") }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw ONNXError("\(name): external data '\(location)' is not a regular file")
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        let size = (try? handle.seekToEnd()).map(Int.init) ?? 0
        guard length <= size, offset <= size - length else { throw ONNXError("\(name): external data '\(location)' holds \(size) bytes, the tensor needs \(offset)+\(length)") }
        try handle.seek(toOffset: UInt64(offset))
        guard let data = try handle.read(upToCount: length), data.count == length else { throw ONNXError("\(name): external data '\(location)' is truncated") }
        return data
    }
}
