import CHDF5Shim
import Foundation

/// A read-only HDF5 file through libhdf5 (the shim in Sources/CHDF5Shim): groups, string attributes and numeric
/// datasets as float32 — what Keras weight files hold. Sizes are bounded before anything is allocated; every call
/// is serialised (Debian's libhdf5 is the non-thread-safe build).
final class HDF5File {
    struct Failure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// One numeric dataset's header.
    struct DatasetInfo { var shape: [Int]; var isFloat: Bool; var elementSize: Int; var storedBytes: UInt64; var filtered: Bool }

    static let lock = NSLock()
    /// Largest tensor read (elements): 4 GiB of float32.
    static let maxElements = 1 << 30
    static let maxNames = 1 << 20, maxNameBytes = 64 << 20

    private let id: vz_h5_id
    /// Bytes of the file (a dataset stored uncompressed cannot be larger).
    let fileSize: UInt64
    let name: String

    init(path: String) throws {
        name = (path as NSString).lastPathComponent
        fileSize = ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.uint64Value ?? 0
        var f: vz_h5_id = -1
        let rc = HDF5File.call { err in vz_h5_open_file(path, &f, err, 512) }
        guard rc.code == VZ_H5_OK else { throw Failure(message: rc.message) }
        id = f
    }

    /// An in-memory file (a `.keras` archive's `model.weights.h5`).
    init(image: [UInt8], name: String) throws {
        self.name = name
        fileSize = UInt64(image.count)
        var f: vz_h5_id = -1
        let rc = image.withUnsafeBytes { raw in HDF5File.call { err in vz_h5_open_image(raw.baseAddress, raw.count, &f, err, 512) } }
        guard rc.code == VZ_H5_OK else { throw Failure(message: rc.message) }
        id = f
    }

    deinit { HDF5File.lock.lock(); vz_h5_close(id); HDF5File.lock.unlock() }

    private static func call(_ body: (UnsafeMutablePointer<CChar>) -> Int32) -> (code: Int32, message: String) {
        lock.lock(); defer { lock.unlock() }
        var buf = [CChar](repeating: 0, count: 512)
        let code = buf.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
        return (code, String(cString: buf))
    }

    private func names(_ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, UnsafeMutablePointer<Int>, UnsafeMutablePointer<Int>, UnsafeMutablePointer<CChar>) -> Int32) throws -> [String]? {
        var out: UnsafeMutablePointer<CChar>?, size = 0, count = 0
        let rc = HDF5File.call { err in body(&out, &size, &count, err) }
        defer { vz_h5_free(out) }
        if rc.code == VZ_H5_NOT_FOUND { return nil }
        guard rc.code == VZ_H5_OK else { throw Failure(message: rc.message) }
        guard let out, size > 0 else { return [] }
        let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(out).assumingMemoryBound(to: UInt8.self), count: size)
        return bytes.split(separator: 0, omittingEmptySubsequences: false).prefix(count).map { String(decoding: $0, as: UTF8.self) }
    }

    enum Kind { case missing, group, dataset, other }

    func kind(_ path: String) -> Kind {
        HDF5File.lock.lock(); defer { HDF5File.lock.unlock() }
        switch vz_h5_kind(id, path) {
        case Int32(VZ_H5_GROUP): return .group
        case Int32(VZ_H5_DATASET): return .dataset
        case Int32(VZ_H5_MISSING): return .missing
        default: return .other
        }
    }

    /// A group's member names (nil when there is no such group).
    func members(_ path: String) throws -> [String]? {
        try names { out, size, count, err in vz_h5_members(id, path, HDF5File.maxNames, HDF5File.maxNameBytes, out, size, count, err, 512) }
    }

    func hasAttribute(_ path: String, _ attr: String) -> Bool {
        HDF5File.lock.lock(); defer { HDF5File.lock.unlock() }
        return vz_h5_has_attr(id, path, attr) == 1
    }

    /// A string (or list of strings) attribute; nil when absent.
    func strings(_ path: String, _ attr: String) throws -> [String]? {
        try names { out, size, count, err in vz_h5_attr_strings(id, path, attr, HDF5File.maxNames, HDF5File.maxNameBytes, out, size, count, err, 512) }
    }

    func info(_ path: String) throws -> DatasetInfo {
        var rank: Int32 = 0, isFloat: Int32 = 0, elem = 0, stored: UInt64 = 0, filtered: Int32 = 0
        var dims = [UInt64](repeating: 0, count: 8)
        let rc = dims.withUnsafeMutableBufferPointer { d in
            HDF5File.call { err in vz_h5_dataset_info(id, path, &rank, d.baseAddress!, &isFloat, &elem, &stored, &filtered, err, 512) }
        }
        guard rc.code == VZ_H5_OK else { throw Failure(message: "\(path): \(rc.message)") }
        var shape: [Int] = []
        for d in dims.prefix(Int(rank)) {
            guard d <= UInt64(HDF5File.maxElements) else { throw Failure(message: "\(path): dimension \(d) exceeds 4 GiB") }
            shape.append(Int(d))
        }
        return DatasetInfo(shape: shape, isFloat: isFloat != 0, elementSize: elem, storedBytes: stored, filtered: filtered != 0)
    }

    /// A numeric dataset as float32, refused before allocating when its declared size exceeds 4 GiB or (stored
    /// uncompressed) the file.
    func floats(_ path: String) throws -> (shape: [Int], data: [Float]) {
        let i = try info(path)
        var count = 1
        for d in i.shape {
            let (c, o) = count.multipliedReportingOverflow(by: d)
            guard !o, c <= HDF5File.maxElements else { throw Failure(message: "\(path): declared shape \(i.shape) exceeds 4 GiB") }
            count = c
        }
        let declared = UInt64(count) * UInt64(max(i.elementSize, 1))
        guard i.elementSize <= 8 else { throw Failure(message: "\(path): \(i.elementSize)-byte elements") }
        if !i.filtered, declared > fileSize || i.storedBytes < declared, count > 0 {
            throw Failure(message: "\(path): declared size \(declared) bytes exceeds what the file holds (\(min(i.storedBytes, fileSize)) bytes)")
        }
        var data = [Float](repeating: 0, count: count)
        let rc = data.withUnsafeMutableBufferPointer { buf in
            HDF5File.call { err in vz_h5_read_floats(id, path, buf.baseAddress, UInt64(count), err, 512) }
        }
        guard rc.code == VZ_H5_OK else { throw Failure(message: "\(path): \(rc.message)") }
        return (i.shape, data)
    }
}
