import Engine
import Foundation

/// Figures drawn with `Canvas`: a captioned grid of pictures and a line plot of the objective.
public enum Figures {
    public struct Tile {
        public var image: RGBImage
        /// First line bold (the unit), then smaller lines (activation, probability).
        public var caption: [String]
        public init(image: RGBImage, caption: [String]) { self.image = image; self.caption = caption }
    }

    /// Tiles in rows of `columns`, each picture `tileSize` wide with its caption under it.
    public static func grid(_ tiles: [Tile], columns: Int? = nil, tileSize: Int = 224, title: String? = nil) -> RGBImage {
        let cols = max(1, min(columns ?? Int(Double(tiles.count).squareRoot().rounded(.up)), tiles.count))
        let rows = (tiles.count + cols - 1) / cols
        let lines = tiles.map(\.caption.count).max() ?? 0
        let gap = 12.0, captionHeight = Double(lines) * 15 + 6, titleHeight = title == nil ? 0.0 : 28
        let cellW = Double(tileSize) + gap, cellH = Double(tileSize) + captionHeight + gap
        let canvas = Canvas(width: Int(Double(cols) * cellW + gap), height: Int(Double(rows) * cellH + gap + titleHeight))
        if let t = title { canvas.text(t, x: gap, y: 20, size: 15, bold: true, maxWidth: Double(canvas.width) - 2 * gap) }
        for (i, tile) in tiles.enumerated() {
            let x = gap + Double(i % cols) * cellW, y = titleHeight + gap + Double(i / cols) * cellH
            canvas.draw(tile.image, x: x, y: y, width: Double(tileSize), height: Double(tileSize))
            canvas.stroke(x: x - 0.5, y: y - 0.5, width: Double(tileSize) + 1, height: Double(tileSize) + 1, .lightGray)
            for (k, line) in tile.caption.enumerated() {
                canvas.text(line, x: x + Double(tileSize) / 2, y: y + Double(tileSize) + 15 + Double(k) * 15,
                            size: k == 0 ? 12 : 11, bold: k == 0, color: k == 0 ? .black : .gray, align: .center,
                            maxWidth: Double(tileSize))
            }
        }
        return canvas.image()
    }

    /// A line plot of one or more series against the step, with axis ticks and a legend.
    public static func plot(_ series: [(name: String, values: [Float])], title: String, xLabel: String = "step",
                            width: Int = 640, height: Int = 360) -> RGBImage {
        let canvas = Canvas(width: width, height: height)
        let left = 64.0, right = Double(width) - 16, top = 36.0, bottom = Double(height) - 44
        canvas.text(title, x: left, y: 22, size: 14, bold: true, maxWidth: right - left)
        let all = series.flatMap(\.values).filter(\.isFinite)
        guard let lo0 = all.min(), let hi0 = all.max(), let count = series.map(\.values.count).max(), count > 0 else {
            return canvas.image()
        }
        let pad = max((hi0 - lo0) * 0.05, 1e-6)
        let lo = Double(lo0 - pad), hi = Double(hi0 + pad)
        let xOf = { (i: Int) in left + (right - left) * Double(i) / Double(max(count - 1, 1)) }
        let yOf = { (v: Double) in bottom - (bottom - top) * (v - lo) / (hi - lo) }
        for k in 0...4 {  // horizontal grid + value ticks
            let v = lo + (hi - lo) * Double(k) / 4, y = yOf(v)
            canvas.line([(left, y), (right, y)], .lightGray, width: 1)
            canvas.text(String(format: "%.3g", v), x: left - 6, y: y + 4, size: 10, color: .gray, align: .right)
        }
        for k in 0...4 {
            let i = (count - 1) * k / 4
            canvas.text("\(i + 1)", x: xOf(i), y: bottom + 16, size: 10, color: .gray, align: .center)
        }
        canvas.text(xLabel, x: (left + right) / 2, y: bottom + 34, size: 11, color: .gray, align: .center)
        canvas.stroke(x: left, y: top, width: right - left, height: bottom - top, .gray)
        let colors: [Canvas.Color] = [.blue, .red, .green, .orange, .gray]
        for (s, entry) in series.enumerated() {
            let color = colors[s % colors.count]
            canvas.line(entry.values.enumerated().filter { $0.element.isFinite }.map { (xOf($0.offset), yOf(Double($0.element))) }, color)
            let ly = top + 14 + Double(s) * 15
            canvas.line([(right - 150, ly - 4), (right - 130, ly - 4)], color, width: 2)
            canvas.text(entry.name, x: right - 124, y: ly, size: 11, maxWidth: 120)
        }
        return canvas.image()
    }
}
