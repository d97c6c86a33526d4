import Engine
import Foundation

/// Bounds-checked little-endian reads over a byte buffer; every read past the end throws instead of trapping.
struct ByteReader {
    let bytes: [UInt8]
    var offset: Int
    let end: Int

    init(_ bytes: [UInt8], from offset: Int = 0, to end: Int? = nil) {
        self.bytes = bytes; self.offset = offset; self.end = min(end ?? bytes.count, bytes.count)
    }

    struct Truncated: Error { let needed: Int; let at: Int }

    var remaining: Int { end - offset }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else { throw Truncated(needed: n, at: offset) }
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }

    mutating func u8() throws -> UInt8 { try take(1).first! }

    /// Unsigned little-endian integer of `n` bytes (n ≤ 8).
    mutating func uint(_ n: Int) throws -> UInt64 {
        var v: UInt64 = 0
        for (i, b) in try take(n).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }

    mutating func int32() throws -> Int { Int(Int32(truncatingIfNeeded: try uint(4))) }
    mutating func int64() throws -> Int { Int(Int64(bitPattern: try uint(8))) }

    mutating func string(_ n: Int) throws -> String {
        guard let s = String(bytes: try take(n), encoding: .utf8) else { throw Truncated(needed: n, at: offset) }
        return s
    }
}
