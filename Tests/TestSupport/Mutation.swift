/// Mutation fuzzing's mutator, shared by the reader fuzz tests: 1–6 edits of a seed file — bit flips, random
/// bytes, truncation, inserted runs, a huge little-endian length or address, a protobuf varint made huge, a digit
/// changed in text (JSON sizes, shapes).
public func mutate(_ seed: [UInt8], _ rng: inout TestRNG) -> [UInt8] {
    var b = seed
    for _ in 0..<Int.random(in: 1...6, using: &rng) {
        guard !b.isEmpty else { break }
        let at = Int.random(in: 0..<b.count, using: &rng)
        switch Int.random(in: 0..<7, using: &rng) {
        case 0: b[at] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
        case 1: b[at] = UInt8.random(in: 0...255, using: &rng)
        case 2: b.removeSubrange(at..<b.count)
        case 3: b.insert(contentsOf: (0..<Int.random(in: 1...16, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: at)
        case 4:  // a huge little-endian length or address where one may be
            let v = [UInt64.max, 1 << 40, 1 << 31, UInt64(b.count) * 8, 0][Int.random(in: 0..<5, using: &rng)]
            for i in 0..<min(8, b.count - at) { b[at + i] = UInt8((v >> (8 * UInt64(i))) & 0xFF) }
        case 5:  // a protobuf varint made huge
            let n = min(5, b.count - at)
            for i in 0..<n { b[at + i] = i == n - 1 ? 0x0F : 0xFF }
        default:  // a digit in text (config.json sizes, shapes)
            if let d = b[at...].firstIndex(where: { (48...57).contains($0) }) { b[d] = UInt8.random(in: 48...57, using: &rng) }
        }
    }
    return b
}
