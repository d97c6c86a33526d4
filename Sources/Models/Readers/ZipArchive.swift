import Engine
/// A minimal read-only zip reader for torch's zip checkpoints: central directory + stored (uncompressed)
/// entries, which is what `torch.save` writes. Compressed entries are refused with a clear reason.
struct ZipArchive {
    struct Entry { let name: String; let method: Int; let size: Int; let localHeader: Int }
    struct Malformed: Error { let reason: String }

    let bytes: [UInt8]
    private(set) var entries: [String: Entry] = [:]
    private(set) var names: [String] = []

    init(_ bytes: [UInt8]) throws {
        self.bytes = bytes
        // End of central directory: signature 0x06054b50 within the last 64 KiB + 22 bytes.
        var eocd = -1
        var i = bytes.count - 22
        while i >= max(0, bytes.count - 22 - 65_535) {
            if bytes[i] == 0x50 && bytes[i + 1] == 0x4B && bytes[i + 2] == 0x05 && bytes[i + 3] == 0x06 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw Malformed(reason: "zip end-of-directory record not found (truncated?)") }
        var r = ByteReader(bytes, from: eocd + 10)
        let count = Int(try r.uint(2))
        _ = try r.uint(4)
        var dir = ByteReader(bytes, from: Int(try r.uint(4)))
        for _ in 0..<count {
            guard try dir.uint(4) == 0x0201_4B50 else { throw Malformed(reason: "bad zip central directory entry") }
            _ = try dir.take(6)
            let method = Int(try dir.uint(2))
            _ = try dir.take(8)
            let compressed = try dir.uint(4), uncompressed = try dir.uint(4)
            let nameLength = Int(try dir.uint(2)), extraLength = Int(try dir.uint(2)), commentLength = Int(try dir.uint(2))
            _ = try dir.take(8)
            let local = try dir.uint(4)
            let name = String(decoding: try dir.take(nameLength), as: UTF8.self)
            _ = try dir.take(extraLength + commentLength)
            guard compressed != 0xFFFF_FFFF, uncompressed != 0xFFFF_FFFF, local != 0xFFFF_FFFF else {
                throw Malformed(reason: "zip64 archives (> 4 GiB) are not supported")
            }
            entries[name] = Entry(name: name, method: method, size: Int(compressed), localHeader: Int(local))
            names.append(name)
        }
    }

    /// The bytes of a stored entry.
    func data(_ name: String) throws -> ArraySlice<UInt8> {
        guard let e = entries[name] else { throw Malformed(reason: "zip entry '\(name)' is missing") }
        guard e.method == 0 else { throw Malformed(reason: "zip entry '\(name)' is compressed (method \(e.method)); torch writes stored entries") }
        var r = ByteReader(bytes, from: e.localHeader)
        guard try r.uint(4) == 0x0403_4B50 else { throw Malformed(reason: "bad zip local header for '\(name)'") }
        _ = try r.take(22)
        let skip = Int(try r.uint(2)) + Int(try r.uint(2))
        _ = try r.take(skip)
        return try r.take(e.size)
    }
}
