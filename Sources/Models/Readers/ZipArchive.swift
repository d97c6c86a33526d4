import CZlib
import Engine
/// A minimal read-only zip reader: central directory, stored entries (what `torch.save` and Keras write) and
/// deflated ones (PyPI wheels), inflated through zlib into exactly the declared size — at most 4 GiB, at most 1000× the
/// compressed bytes, and at most what the caller allows for that entry.
struct ZipArchive {
    struct Entry { let name: String; let method: Int; let size: Int; let uncompressed: Int; let localHeader: Int }
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
            entries[name] = Entry(name: name, method: method, size: Int(compressed), uncompressed: Int(uncompressed), localHeader: Int(local))
            names.append(name)
        }
    }

    /// The bytes of an entry (inflated when deflated), refused beyond `maxBytes` before anything is allocated.
    func data(_ name: String, maxBytes: Int = Int(UInt32.max)) throws -> ArraySlice<UInt8> {
        guard let e = entries[name] else { throw Malformed(reason: "zip entry '\(name)' is missing") }
        guard e.uncompressed <= maxBytes, e.method == 8 || e.size <= maxBytes else {
            throw Malformed(reason: "zip entry '\(name)' is \(e.uncompressed) bytes (more than \(maxBytes))")
        }
        guard e.method == 0 || e.method == 8 else { throw Malformed(reason: "zip entry '\(name)' uses compression method \(e.method) (stored or deflated only)") }
        var r = ByteReader(bytes, from: e.localHeader)
        guard try r.uint(4) == 0x0403_4B50 else { throw Malformed(reason: "bad zip local header for '\(name)'") }
        _ = try r.take(22)
        let skip = Int(try r.uint(2)) + Int(try r.uint(2))
        _ = try r.take(skip)
        let raw = try r.take(e.size)
        guard e.method == 8 else { return raw }
        guard e.uncompressed < 1 << 32, e.uncompressed <= max(e.size, 1) * 1000 else {
            throw Malformed(reason: "zip entry '\(name)' claims \(e.uncompressed) bytes from \(e.size) (a zip bomb?)")
        }
        return try Self.inflate(raw, size: e.uncompressed, name: name)[...]
    }

    /// Raw deflate of exactly `size` bytes.
    static func inflate(_ raw: ArraySlice<UInt8>, size: Int, name: String) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size)
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { throw Malformed(reason: "zlib init failed") }
        defer { inflateEnd(&stream) }
        let rc: Int32 = raw.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                stream.next_in = UnsafeMutablePointer(mutating: src.baseAddress)
                stream.avail_in = UInt32(src.count)
                stream.next_out = dst.baseAddress
                stream.avail_out = UInt32(dst.count)
                return CZlib.inflate(&stream, Z_FINISH)
            }
        }
        guard rc == Z_STREAM_END, Int(stream.total_out) == size else {
            throw Malformed(reason: "zip entry '\(name)' does not inflate to its \(size) bytes (zlib \(rc))")
        }
        return out
    }
}
