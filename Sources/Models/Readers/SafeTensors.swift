import Engine
import Foundation

/// The safetensors format: an 8-byte little-endian header length, a JSON header
/// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the raw data.
public enum SafeTensors {
    public static func load(contentsOf url: URL) throws -> StateDict {
        let name = url.lastPathComponent
        func fail(_ reason: String) -> CheckpointError { CheckpointError(file: name, reason: reason) }
        guard let data = FileManager.default.contents(atPath: url.path) else { throw fail("no such file") }
        let bytes = [UInt8](data)
        var r = ByteReader(bytes)
        guard let raw = try? r.uint(8), let headerLength = Int(exactly: raw), headerLength > 1, headerLength <= bytes.count - 8 else {
            throw fail(bytes.isEmpty ? "empty file" : "not a safetensors file (bad header length)")
        }
        guard let header = try? JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as? [String: Any] else {
            throw fail("not a safetensors file (header is not a JSON object)")
        }
        let dataStart = 8 + headerLength
        var entries: [(String, begin: Int, end: Int, dtype: String, shape: [Int])] = []
        for (key, value) in header where key != "__metadata__" {
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2 else {
                throw fail("malformed header entry '\(key)'")
            }
            entries.append((key, offsets[0], offsets[1], dtype, shape))
        }
        var dict = StateDict()
        for e in entries.sorted(by: { $0.begin < $1.begin }) {
            let types: [String: StorageType] = ["F32": .FloatStorage, "F64": .DoubleStorage, "F16": .HalfStorage,
                                                "BF16": .BFloat16Storage, "I64": .LongStorage, "I32": .IntStorage,
                                                "I16": .ShortStorage, "I8": .CharStorage, "U8": .ByteStorage, "BOOL": .BoolStorage]
            guard let type = types[e.dtype] else { throw fail("tensor '\(e.0)' has unsupported dtype \(e.dtype)") }
            var count = 1, overflow = false
            for d in e.shape where !overflow { (count, overflow) = count.multipliedReportingOverflow(by: max(d, 0)) }
            guard !overflow, count <= bytes.count else { throw fail("tensor '\(e.0)' declares \(e.shape), more values than the file holds") }
            guard e.shape.allSatisfy({ $0 >= 0 }), e.begin >= 0, e.end - e.begin == count * type.elementSize,
                  dataStart + e.end <= bytes.count else {
                throw fail("tensor '\(e.0)' has inconsistent offsets or is truncated")
            }
            let values = StorageDecoder.floats(bytes[(dataStart + e.begin)..<(dataStart + e.end)], type)
            dict.set(e.0, Tensor(shape: e.shape, data: values))
        }
        return dict
    }

    /// Writes float32 tensors atomically (temp file in the same folder, then rename).
    public static func save(_ dict: StateDict, to url: URL, metadata: [String: String] = [:]) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for key in dict.keys {
            guard let t = dict[key] else { continue }
            header[key] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + t.count * 4]] as [String: Any]
            offset += t.count * 4
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (8 + json.count) % 8 != 0 { json.append(0x20) }  // pad with spaces so data starts 8-aligned
        var out = Data()
        out.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for key in dict.keys {
            guard let t = dict[key] else { continue }
            t.data.withUnsafeBytes { out.append(contentsOf: $0) }  // little-endian on every platform we build for
        }
        try AtomicFile.write(out, to: url)
    }
}
