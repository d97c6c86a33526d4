import CHDF5Shim
import Foundation

/// A read-only HDF5 file through libhdf5 — read in a child process (`vz_h5_dump` in Sources/CHDF5Shim): libhdf5
/// itself can crash on a corrupt file (the fuzzer found one in its global-heap reader), and a crash there must be a
/// refused file, not a dead vizlab. The child walks every group and sends groups, string attributes and numeric
/// datasets (as float32) back; this type answers the Keras readers' questions from that record stream, parsed in place.
/// Sizes are bounded in the child (4 GiB per tensor; no more than the file holds when stored uncompressed; all
/// datasets together at most twice the file + 64 MiB) and again here.
final class HDF5File {
    struct Failure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    enum Kind { case missing, group, dataset, other }

    /// Most bytes accepted from the reader: twice the file (float16 tensors arrive as float32) + 64 MiB, ≤ 8 GiB.
    static func maxBytes(_ fileSize: UInt64) -> UInt64 { min(8 << 30, 2 * fileSize + (64 << 20)) }

    let name: String
    /// The child's record stream, parsed in place (freed with this object).
    private let stream: UnsafeBufferPointer<UInt8>
    private var kinds: [String: Kind] = ["/": .group]
    private var children: [String: [String]] = [:]
    private var attributes: [String: [String: [String]]] = [:]
    private var datasets: [String: (shape: [Int], offset: Int, count: Int)] = [:]
    private var refusals: [String: String] = [:]

    init(path: String) throws {
        name = (path as NSString).lastPathComponent
        // The size of what the path points at (a symlink's own size is a few bytes).
        let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        let size = ((try? FileManager.default.attributesOfItem(atPath: real)[.size]) as? NSNumber)?.uint64Value ?? 0
        stream = try HDF5File.dump { out, outSize, err in vz_h5_dump(path, nil, 0, HDF5File.maxBytes(size), HDF5File.seconds(size), out, outSize, err, 512) }
        try parse()
    }

    /// An in-memory file (a `.keras` archive's `model.weights.h5`).
    init(image: [UInt8], name: String) throws {
        self.name = name
        stream = try image.withUnsafeBytes { raw in
            try HDF5File.dump { out, outSize, err in
                vz_h5_dump(nil, raw.baseAddress, raw.count, HDF5File.maxBytes(UInt64(raw.count)), HDF5File.seconds(UInt64(raw.count)), out, outSize, err, 512)
            }
        }
        try parse()
    }

    /// The child's time limit: 3 s plus a second per 20 MB (VGG16's 553 MB: 30 s; it reads in about 2).
    static func seconds(_ bytes: UInt64) -> UInt32 { UInt32(3 + min(bytes / 20_000_000, 3600)) }

    private static func dump(_ body: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, UnsafeMutablePointer<Int>, UnsafeMutablePointer<CChar>) -> Int32) throws -> UnsafeBufferPointer<UInt8> {
        var out: UnsafeMutablePointer<UInt8>?, size = 0
        var err = [CChar](repeating: 0, count: 512)
        let rc = err.withUnsafeMutableBufferPointer { body(&out, &size, $0.baseAddress!) }
        guard rc == VZ_H5_OK, let out else { vz_h5_free(out); throw Failure(message: String(cString: err)) }
        return UnsafeBufferPointer(start: out, count: size)
    }

    deinit { vz_h5_free(UnsafeMutableRawPointer(mutating: stream.baseAddress)) }

    private func parse() throws {
        var at = 0
        func bad() -> Failure { Failure(message: "the HDF5 reader's output is malformed (truncated at byte \(at))") }
        func u32() throws -> Int {
            guard at + 4 <= stream.count else { throw bad() }
            defer { at += 4 }
            return Int(UInt32(stream[at]) | UInt32(stream[at + 1]) << 8 | UInt32(stream[at + 2]) << 16 | UInt32(stream[at + 3]) << 24)
        }
        func u64() throws -> UInt64 {
            guard at + 8 <= stream.count else { throw bad() }
            var v: UInt64 = 0
            for i in 0..<8 { v |= UInt64(stream[at + i]) << (8 * UInt64(i)) }
            at += 8
            return v
        }
        func str() throws -> String {
            let n = try u32()
            guard n <= stream.count - at else { throw bad() }
            defer { at += n }
            return String(decoding: stream[at..<(at + n)], as: UTF8.self)
        }
        func register(_ path: String, _ kind: Kind) {
            kinds[path] = kind
            guard path != "/" else { return }
            let parent = path.lastIndex(of: "/").map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "/"
            children[parent, default: []].append(String(path[path.index(after: path.lastIndex(of: "/") ?? path.startIndex)...]))
        }
        while at < stream.count {
            let tag = stream[at]
            at += 1
            switch tag {
            case UInt8(ascii: "G"): register(try str(), .group)
            case UInt8(ascii: "A"):
                let path = try str(), attr = try str(), n = try u32()
                guard n <= stream.count - at else { throw bad() }
                attributes[path, default: [:]][attr] = try (0..<n).map { _ in try str() }
            case UInt8(ascii: "D"):
                let path = try str(), rank = try u32()
                guard rank <= 8 else { throw bad() }
                let dims = try (0..<rank).map { _ in try u64() }
                guard dims.allSatisfy({ $0 <= 1 << 30 }) else { throw bad() }
                let shape = dims.map { Int($0) }
                let bytes = try u64()
                guard bytes % 4 == 0, bytes <= UInt64(stream.count - at), shape.reduce(1) { $0 &* max($1, 1) } <= 1 << 30,
                      shape.reduce(1, *) * 4 == Int(bytes) else { throw bad() }
                datasets[path] = (shape, at, Int(bytes) / 4)
                at += Int(bytes)
                register(path, .dataset)
            case UInt8(ascii: "d"):
                let path = try str()
                refusals[path] = try str()
                register(path, .dataset)
            case UInt8(ascii: "E"): throw Failure(message: try str())
            case UInt8(ascii: "Z"): return
            default: throw bad()
            }
        }
        throw bad()  // no end record: the reader stopped early
    }

    func kind(_ path: String) -> Kind { kinds[path] ?? .missing }

    /// A group's member names (nil when there is no such group).
    func members(_ path: String) throws -> [String]? { kinds[path] == .group ? children[path] ?? [] : nil }

    func hasAttribute(_ path: String, _ attr: String) -> Bool { attributes[path]?[attr] != nil }

    /// A string (or list of strings) attribute; nil when absent.
    func strings(_ path: String, _ attr: String) throws -> [String]? { attributes[path]?[attr] }

    /// A numeric dataset as float32.
    func floats(_ path: String) throws -> (shape: [Int], data: [Float]) {
        if let why = refusals[path] { throw Failure(message: "\(path): \(why)") }
        guard let d = datasets[path] else { throw Failure(message: "\(path): no such dataset") }
        let raw = UnsafeRawBufferPointer(stream)
        let data = (0..<d.count).map { raw.loadUnaligned(fromByteOffset: d.offset + 4 * $0, as: Float.self) }
        return (d.shape, data)
    }
}
