import Engine
import Foundation

/// Transformation robustness (Lucid's `standard_transforms`): the objective is evaluated on a randomly padded,
/// jittered, scaled and rotated copy of the image every step, so the picture must work under small shifts and
/// zooms instead of exploiting one pixel grid.
public struct TransformSettings: Codable, Sendable, Equatable {
    public var pad = 12
    public var padValue: Float = 0.5
    public var jitter = 8
    public var scales: [Double] = (0...10).map { 1 + Double($0 - 5) / 50 }           // 0.90 … 1.10
    public var anglesDegrees: [Double] = (-10...10).map(Double.init) + [0, 0, 0, 0, 0] // Lucid's list, 0 weighted ×6
    public var finalJitter = 4

    public init() {}

    /// No transforms at all (`--no-transforms`).
    public static let none: TransformSettings = {
        var t = TransformSettings()
        t.pad = 0; t.jitter = 0; t.scales = [1]; t.anglesDegrees = [0]; t.finalJitter = 0
        return t
    }()

    /// The random draws of one step, so a step can be logged and reproduced.
    public struct Draw: Codable, Sendable, Equatable {
        public var jitter: [Int]
        public var scale: Double
        public var angleDegrees: Double
        public var finalJitter: [Int]
    }

    public func draw(_ g: inout SeededGenerator) -> Draw {
        Draw(jitter: [Int.random(in: 0...jitter, using: &g), Int.random(in: 0...jitter, using: &g)],
             scale: scales.randomElement(using: &g) ?? 1,
             angleDegrees: anglesDegrees.randomElement(using: &g) ?? 0,
             finalJitter: [Int.random(in: 0...finalJitter, using: &g), Int.random(in: 0...finalJitter, using: &g)])
    }

    /// Applies one draw to [N, 3, H, W]: pad → jitter (crop by `jitter`) → scale + rotate → jitter again.
    public func apply(_ image: Tensor, _ d: Draw) -> Tensor {
        var t = pad > 0 ? Visualize.pad(image, pad, value: padValue) : image
        if jitter > 0 {
            t = crop(t, top: d.jitter[0], left: d.jitter[1], height: t.shape[2] - jitter, width: t.shape[3] - jitter)
        }
        if d.scale != 1 || d.angleDegrees != 0 {
            let h = Int((Double(t.shape[2]) * d.scale).rounded()), w = Int((Double(t.shape[3]) * d.scale).rounded())
            t = affineResample(t, scale: d.scale, angle: d.angleDegrees * .pi / 180, outHeight: h, outWidth: w)
        }
        if finalJitter > 0 {
            t = crop(t, top: d.finalJitter[0], left: d.finalJitter[1], height: t.shape[2] - finalJitter, width: t.shape[3] - finalJitter)
        }
        return t
    }
}
