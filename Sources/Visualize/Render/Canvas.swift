import CCairo
import Engine
import Foundation

/// A small drawing surface over Cairo (image surface, ARGB32): pictures, text, lines and boxes, then an
/// `RGBImage` for the atomic PNG writer. Grids, captions, loss plots and report panels are drawn with it.
public final class Canvas {
    public let width, height: Int
    private let surface: OpaquePointer
    private let cr: OpaquePointer

    public struct Color: Sendable {
        public var r, g, b: Double
        public init(_ r: Double, _ g: Double, _ b: Double) { self.r = r; self.g = g; self.b = b }
        public static let white = Color(1, 1, 1), black = Color(0, 0, 0), gray = Color(0.45, 0.45, 0.45)
        public static let lightGray = Color(0.88, 0.88, 0.88), blue = Color(0.16, 0.38, 0.70), red = Color(0.80, 0.20, 0.16)
        public static let orange = Color(0.90, 0.50, 0.10), green = Color(0.20, 0.60, 0.25)
    }

    public init(width: Int, height: Int, background: Color = .white) {
        self.width = width; self.height = height
        surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, Int32(width), Int32(height))
        cr = cairo_create(surface)
        fill(x: 0, y: 0, width: Double(width), height: Double(height), background)
    }

    deinit { cairo_destroy(cr); cairo_surface_destroy(surface) }

    public func fill(x: Double, y: Double, width: Double, height: Double, _ color: Color) {
        cairo_set_source_rgb(cr, color.r, color.g, color.b)
        cairo_rectangle(cr, x, y, width, height)
        cairo_fill(cr)
    }

    public func stroke(x: Double, y: Double, width: Double, height: Double, _ color: Color, lineWidth: Double = 1) {
        cairo_set_source_rgb(cr, color.r, color.g, color.b)
        cairo_set_line_width(cr, lineWidth)
        cairo_rectangle(cr, x, y, width, height)
        cairo_stroke(cr)
    }

    /// A polyline through `points`.
    public func line(_ points: [(Double, Double)], _ color: Color, width lineWidth: Double = 1.5) {
        guard let first = points.first else { return }
        cairo_set_source_rgb(cr, color.r, color.g, color.b)
        cairo_set_line_width(cr, lineWidth)
        cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND)
        cairo_move_to(cr, first.0, first.1)
        for p in points.dropFirst() { cairo_line_to(cr, p.0, p.1) }
        cairo_stroke(cr)
    }

    public enum Alignment { case left, center, right }

    /// Text with its baseline at `y`; returns the advance width. Sans-serif through fontconfig (DejaVu Sans on Debian).
    @discardableResult
    public func text(_ s: String, x: Double, y: Double, size: Double = 12, bold: Bool = false,
                     color: Color = .black, align: Alignment = .left, maxWidth: Double? = nil) -> Double {
        cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL)
        cairo_set_font_size(cr, size)
        var shown = s
        var extents = cairo_text_extents_t()
        cairo_text_extents(cr, shown, &extents)
        if let limit = maxWidth {  // shorten with an ellipsis rather than run into the next tile
            while extents.x_advance > limit && shown.count > 1 {
                shown = String(shown.dropLast(shown.hasSuffix("…") ? 2 : 1)) + "…"
                cairo_text_extents(cr, shown, &extents)
            }
        }
        let x0 = switch align { case .left: x; case .center: x - extents.x_advance / 2; case .right: x - extents.x_advance }
        cairo_set_source_rgb(cr, color.r, color.g, color.b)
        cairo_move_to(cr, x0, y)
        cairo_show_text(cr, shown)
        return extents.x_advance
    }

    /// Draws an RGB picture scaled into the box (bilinear when shrinking, nearest when enlarging so pixels stay
    /// visible).
    public func draw(_ image: RGBImage, x: Double, y: Double, width: Double, height: Double) {
        let stride = Int(cairo_format_stride_for_width(CAIRO_FORMAT_RGB24, Int32(image.width)))
        var buffer = [UInt8](repeating: 255, count: stride * image.height)
        for r in 0..<image.height { for q in 0..<image.width {
            let s = (r * image.width + q) * 3, d = r * stride + q * 4   // little-endian xRGB = B, G, R, x
            buffer[d] = image.pixels[s + 2]; buffer[d + 1] = image.pixels[s + 1]; buffer[d + 2] = image.pixels[s]
        } }
        buffer.withUnsafeMutableBytes { raw in
            let picture = cairo_image_surface_create_for_data(raw.baseAddress!.assumingMemoryBound(to: UInt8.self), CAIRO_FORMAT_RGB24,
                                                              Int32(image.width), Int32(image.height), Int32(stride))
            cairo_save(cr)
            cairo_rectangle(cr, x, y, width, height)
            cairo_clip(cr)
            cairo_translate(cr, x, y)
            cairo_scale(cr, width / Double(image.width), height / Double(image.height))
            cairo_set_source_surface(cr, picture, 0, 0)
            let enlarge = width >= Double(image.width)
            cairo_pattern_set_filter(cairo_get_source(cr), enlarge ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_GOOD)
            cairo_paint(cr)
            cairo_restore(cr)
            cairo_surface_destroy(picture)
        }
    }

    /// The canvas as 8-bit RGB.
    public func image() -> RGBImage {
        cairo_surface_flush(surface)
        let stride = Int(cairo_image_surface_get_stride(surface))
        let data = cairo_image_surface_get_data(surface)!
        var px = [UInt8](repeating: 0, count: width * height * 3)
        for r in 0..<height { for q in 0..<width {
            let s = r * stride + q * 4, d = (r * width + q) * 3
            px[d] = data[s + 2]; px[d + 1] = data[s + 1]; px[d + 2] = data[s]
        } }
        return RGBImage(width: width, height: height, pixels: px)
    }
}
