import Engine
import Foundation

/// Keras `ImageDataGenerator`'s random geometric transforms, with its meanings: `rotation` degrees (uniform in
/// ±rotation), `widthShift`/`heightShift` as fractions of the side, `shear` in degrees (Keras' `shear_range` is an
/// angle: the tutorial's 0.2 is 0.2°), `zoom` (each axis independently uniform in 1 ± zoom), horizontal flip with
/// probability ½; "nearest" fill (edges extended) and bilinear sampling, as `apply_affine_transform` does with
/// scipy's `affine_transform(order=1, mode="nearest")`. Applied to the model's 8-bit view of a photo, giving floats.
public struct Augmentation: Codable, Sendable, Equatable {
    public var rotation: Double
    public var widthShift: Double
    public var heightShift: Double
    public var shear: Double
    public var zoom: Double
    public var horizontalFlip: Bool

    public init(rotation: Double = 0, widthShift: Double = 0, heightShift: Double = 0, shear: Double = 0, zoom: Double = 0,
                horizontalFlip: Bool = false) {
        self.rotation = rotation; self.widthShift = widthShift; self.heightShift = heightShift
        self.shear = shear; self.zoom = zoom; self.horizontalFlip = horizontalFlip
    }

    /// Chollet's set (Deep Learning with Python §5.3): rotation 40, shifts 0.2, shear 0.2, zoom 0.2, horizontal flip.
    public static let tutorial = Augmentation(rotation: 40, widthShift: 0.2, heightShift: 0.2, shear: 0.2, zoom: 0.2, horizontalFlip: true)
    public static let none = Augmentation()

    public var isIdentity: Bool { self == .none }

    /// One draw of the transform's parameters, in Keras' order of draws.
    struct Draw {
        var theta = 0.0, tx = 0.0, ty = 0.0, shear = 0.0, zx = 1.0, zy = 1.0
        var flip = false
    }

    func draw<G: RandomNumberGenerator>(width: Int, height: Int, using rng: inout G) -> Draw {
        var d = Draw()
        func uniform(_ r: Double) -> Double { r > 0 ? Double.random(in: -r...r, using: &rng) : 0 }
        d.theta = uniform(rotation)
        d.tx = uniform(heightShift) * Double(height)
        d.ty = uniform(widthShift) * Double(width)
        d.shear = uniform(shear)
        if zoom > 0 {
            d.zx = Double.random(in: (1 - zoom)...(1 + zoom), using: &rng)
            d.zy = Double.random(in: (1 - zoom)...(1 + zoom), using: &rng)
        }
        if horizontalFlip { d.flip = Double.random(in: 0..<1, using: &rng) < 0.5 }
        return d
    }

    /// The transformed image as interleaved RGB floats on 0…255 (the model's view size).
    public func apply<G: RandomNumberGenerator>(_ image: RGBImage, using rng: inout G) -> [Float] {
        let w = image.width, h = image.height
        let d = draw(width: w, height: h, using: &rng)
        // Keras' matrix, in (row, col) homogeneous coordinates before its axis swap: rotation · shift · shear · zoom,
        // about the centre; it maps an output pixel to the input position sampled.
        let t = d.theta * .pi / 180, s = d.shear * .pi / 180
        var m = mat([[cos(t), -sin(t), 0], [sin(t), cos(t), 0], [0, 0, 1]])
        m = mul(m, mat([[1, 0, d.tx], [0, 1, d.ty], [0, 0, 1]]))
        m = mul(m, mat([[1, -sin(s), 0], [0, cos(s), 0], [0, 0, 1]]))
        m = mul(m, mat([[d.zx, 0, 0], [0, d.zy, 0], [0, 0, 1]]))
        let ox = Double(h) / 2 - 0.5, oy = Double(w) / 2 - 0.5
        m = mul(mul(mat([[1, 0, ox], [0, 1, oy], [0, 0, 1]]), m), mat([[1, 0, -ox], [0, 1, -oy], [0, 0, 1]]))
        // Keras then swaps the two axes (its matrix is built for x, y but arrays index rows first): M' = P M P.
        let a = [[m[1][1], m[1][0], m[1][2]], [m[0][1], m[0][0], m[0][2]]]
        var out = [Float](repeating: 0, count: w * h * 3)
        image.pixels.withUnsafeBufferPointer { px in
            for r in 0..<h {
                for c in 0..<w {
                    // scipy: input = A · (r, c) + offset, in (row, col).
                    let sr = a[0][0] * Double(r) + a[0][1] * Double(c) + a[0][2]
                    let sc = a[1][0] * Double(r) + a[1][1] * Double(c) + a[1][2]
                    let rr = min(max(sr, 0), Double(h - 1)), cc = min(max(sc, 0), Double(w - 1))
                    let r0 = Int(rr.rounded(.down)), c0 = Int(cc.rounded(.down))
                    let r1 = min(r0 + 1, h - 1), c1 = min(c0 + 1, w - 1)
                    let fr = rr - Double(r0), fc = cc - Double(c0)
                    let col = d.flip ? w - 1 - c : c
                    for ch in 0..<3 {
                        let v00 = Double(px[(r0 * w + c0) * 3 + ch]), v01 = Double(px[(r0 * w + c1) * 3 + ch])
                        let v10 = Double(px[(r1 * w + c0) * 3 + ch]), v11 = Double(px[(r1 * w + c1) * 3 + ch])
                        let v = (v00 * (1 - fc) + v01 * fc) * (1 - fr) + (v10 * (1 - fc) + v11 * fc) * fr
                        out[(r * w + col) * 3 + ch] = Float(v)
                    }
                }
            }
        }
        return out
    }

    private func mat(_ rows: [[Double]]) -> [[Double]] { rows }
    private func mul(_ a: [[Double]], _ b: [[Double]]) -> [[Double]] {
        (0..<3).map { i in (0..<3).map { j in (0..<3).reduce(0) { $0 + a[i][$1] * b[$1][j] } } }
    }
}
