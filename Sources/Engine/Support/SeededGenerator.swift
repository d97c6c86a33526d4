import Foundation

/// SplitMix64: a small, fast generator whose stream depends only on the seed, so `--seed` reproduces runs
/// bit for bit (the system generator cannot be seeded).
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Standard normal samples (Box–Muller), `count` of them.
    public mutating func normal(_ count: Int, sd: Float = 1) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(count + 1)
        while out.count < count {
            let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self), u2 = Double.random(in: 0..<1, using: &self)
            let r = (-2 * log(u1)).squareRoot()
            out.append(Float(r * cos(2 * .pi * u2)) * sd)
            out.append(Float(r * sin(2 * .pi * u2)) * sd)
        }
        return Array(out.prefix(count))
    }
}
