import Engine

/// How a dataset example is shown: the model's 224² view of the image, the receptive field of the unit's max cut
/// out of it or outlined on it, and the channel's activation map as a heat map.
public enum ExampleView {
    /// The part of the model view inside the receptive-field box (the box clipped to the image: units deep in the
    /// network see more than the whole 224² view), on a grey square.
    public static func crop(_ view: RGBImage, box: (x0: Int, y0: Int, side: Int)) -> RGBImage {
        let x0 = max(0, box.x0), y0 = max(0, box.y0)
        let x1 = min(view.width, box.x0 + box.side), y1 = min(view.height, box.y0 + box.side)
        let side = max(x1 - x0, y1 - y0, 1)
        var px = [UInt8](repeating: 128, count: side * side * 3)
        let ox = (side - (x1 - x0)) / 2, oy = (side - (y1 - y0)) / 2
        for y in y0..<y1 { for x in x0..<x1 {
            for c in 0..<3 { px[((y - y0 + oy) * side + (x - x0 + ox)) * 3 + c] = view.pixels[(y * view.width + x) * 3 + c] }
        } }
        return RGBImage(width: side, height: side, pixels: px)
    }

    /// The activation map of one channel (upsampled bilinearly to the view, clipped at 0, scaled to its own max)
    /// blended over the view from transparent to red–yellow.
    public static func overlay(_ view: RGBImage, map t: Tensor, channel: Int) -> RGBImage {
        let h = t.shape[2], w = t.shape[3]
        let plane = Array(t.data[(channel * h * w)..<((channel + 1) * h * w)])
        let top = max(plane.max() ?? 0, 1e-6)
        var out = view
        for y in 0..<view.height { for x in 0..<view.width {
            let fy = max(0, min(Double(h - 1), (Double(y) + 0.5) * Double(h) / Double(view.height) - 0.5))
            let fx = max(0, min(Double(w - 1), (Double(x) + 0.5) * Double(w) / Double(view.width) - 0.5))
            let y0 = Int(fy), x0 = Int(fx), y1 = min(y0 + 1, h - 1), x1 = min(x0 + 1, w - 1)
            let ty = Float(fy - Double(y0)), tx = Float(fx - Double(x0))
            let v = (plane[y0 * w + x0] * (1 - tx) + plane[y0 * w + x1] * tx) * (1 - ty) + (plane[y1 * w + x0] * (1 - tx) + plane[y1 * w + x1] * tx) * ty
            let a = max(0, min(1, v / top)) * 0.6
            let heat: [Float] = [255, 255 * max(0, min(1, 2 * v / top - 1)), 0]
            for c in 0..<3 {
                let i = (y * view.width + x) * 3 + c
                out.pixels[i] = UInt8((Float(view.pixels[i]) * (1 - a) + heat[c] * a).rounded())
            }
        } }
        return out
    }

    /// The model view with the receptive field of the max position outlined in orange.
    public static func outline(_ view: RGBImage, box: (x0: Int, y0: Int, side: Int)?) -> RGBImage {
        guard let b = box, b.side < view.width else { return view }
        var out = view
        let x0 = max(0, b.x0), y0 = max(0, b.y0), x1 = min(view.width - 1, b.x0 + b.side - 1), y1 = min(view.height - 1, b.y0 + b.side - 1)
        func set(_ x: Int, _ y: Int) { let i = (y * view.width + x) * 3; out.pixels[i] = 255; out.pixels[i + 1] = 140; out.pixels[i + 2] = 0 }
        for x in x0...x1 { set(x, y0); set(x, y1) }
        for y in y0...y1 { set(x0, y); set(x1, y) }
        return out
    }
}
