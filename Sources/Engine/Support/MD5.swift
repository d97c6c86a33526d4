import Foundation

/// MD5 (RFC 1321): Keras publishes its weight files' MD5 (`get_file(file_hash=)`), so checking them needs it.
/// Not for security — the SHA-256 is what identifies a model.
public struct MD5 {
    private var state: (UInt32, UInt32, UInt32, UInt32) = (0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476)
    private var buffer: [UInt8] = []
    private var length: UInt64 = 0

    private static let s: [UInt32] = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                      5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
                                      4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                      6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21]
    private static let k: [UInt32] = (0..<64).map { UInt32(truncatingIfNeeded: Int64(abs(sin(Double($0 + 1))) * 4_294_967_296)) }

    public init() {}

    public static func hex(of data: Data) -> String {
        var h = MD5()
        h.update(data)
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }

    public static func hex(ofFile url: URL) throws -> String { hex(of: try Data(contentsOf: url, options: .alwaysMapped)) }

    public mutating func update(_ data: Data) {
        length += UInt64(data.count)
        data.withUnsafeBytes { raw in
            var bytes = raw.bindMemory(to: UInt8.self)[...]
            if !buffer.isEmpty {
                let take = min(64 - buffer.count, bytes.count)
                buffer += bytes.prefix(take)
                bytes = bytes.dropFirst(take)
                if buffer.count == 64 { let b = buffer; b.withUnsafeBufferPointer { block($0[...]) }; buffer = [] }
            }
            while bytes.count >= 64 { block(bytes.prefix(64)); bytes = bytes.dropFirst(64) }
            buffer += bytes
        }
    }

    public mutating func finalize() -> [UInt8] {
        var tail = buffer + [0x80]
        while tail.count % 64 != 56 { tail.append(0) }
        let bits = length &* 8
        for i in 0..<8 { tail.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt64(i)))) }
        tail.withUnsafeBufferPointer { p in var i = 0; while i < p.count { block(p[i..<(i + 64)]); i += 64 } }
        var out: [UInt8] = []
        for w in [state.0, state.1, state.2, state.3] { for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: w >> (8 * UInt32(i)))) } }
        return out
    }

    private mutating func block(_ chunk: Slice<UnsafeBufferPointer<UInt8>>) {
        var m = [UInt32](repeating: 0, count: 16)
        let base = chunk.startIndex
        for i in 0..<16 {
            m[i] = UInt32(chunk[base + 4 * i]) | UInt32(chunk[base + 4 * i + 1]) << 8 | UInt32(chunk[base + 4 * i + 2]) << 16 | UInt32(chunk[base + 4 * i + 3]) << 24
        }
        var (a, b, c, d) = state
        for i in 0..<64 {
            var f: UInt32, g: Int
            switch i {
            case 0..<16: f = (b & c) | (~b & d); g = i
            case 16..<32: f = (d & b) | (~d & c); g = (5 * i + 1) % 16
            case 32..<48: f = b ^ c ^ d; g = (3 * i + 5) % 16
            default: f = c ^ (b | ~d); g = (7 * i) % 16
            }
            f = f &+ a &+ MD5.k[i] &+ m[g]
            a = d; d = c; c = b
            b = b &+ (f << MD5.s[i] | f >> (32 - MD5.s[i]))
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d)
    }
}
