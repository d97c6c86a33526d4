import Foundation
import Visualize

/// The attack's picture: original | perturbation | adversarial, each with what the model says under it, and a line
/// with the attack's figures. Drawn with Cairo.
public enum ReportPanel {
    public static func render(_ report: AttackReport, original: RGBImage, adversarial: RGBImage) -> RGBImage {
        let box = 256.0, gap = 18.0, barsHeight = 5 * 20.0 + 10
        let width = 3 * box + 4 * gap
        let height = 40 + box + 14 + barsHeight + 44
        let canvas = Canvas(width: Int(width), height: Int(height))
        let top = 40.0
        // Keep the photo's aspect ratio inside each box.
        let aspect = Double(original.width) / Double(original.height)
        let (w, h) = aspect >= 1 ? (box, box / aspect) : (box * aspect, box)
        let inset = ((box - w) / 2, (box - h) / 2)
        let columns = (0..<3).map { gap + Double($0) * (box + gap) }

        let verdict = report.success ? "fooled" : "not fooled"
        canvas.text("\(report.attack) → \(report.goal.kind == .targeted ? "target " + report.goal.description : report.goal.description): \(verdict) (judged on the saved PNG)",
                    x: gap, y: 24, size: 14, bold: true, color: report.success ? .black : .red, maxWidth: width - 2 * gap)

        // Original and adversarial with their top-5.
        for (column, image, scores, title) in [(0, original, report.originalTop, "original"),
                                              (2, adversarial, report.adversarialTop, "adversarial (saved PNG)")] {
            let x = columns[column]
            canvas.draw(image, x: x + inset.0, y: top + inset.1, width: w, height: h)
            canvas.text(title, x: x + box / 2, y: top - 4, size: 11, color: .gray, align: .center)
            bars(canvas, scores, goal: report.goal, x: x, y: top + box + 14, width: box)
        }

        // Perturbation: the mean over R, G, B of (adversarial − original), on a diverging scale.
        let (picture, extreme) = perturbationPicture(original: original, adversarial: adversarial)
        let px = columns[1]
        canvas.draw(picture, x: px + inset.0, y: top + inset.1, width: w, height: h)
        canvas.stroke(x: px + inset.0 - 0.5, y: top + inset.1 - 0.5, width: w + 1, height: h + 1, .lightGray)
        canvas.text(String(format: "perturbation (mean of R,G,B), ×%.0f", 127.5 / Double(extreme)), x: px + box / 2, y: top - 4,
                    size: 11, color: .gray, align: .center)
        colourScale(canvas, extreme: extreme, x: px, y: top + box + 14, width: box)
        let d = report.distances
        canvas.text(String(format: "L∞ %d/255 · L2 %.3f · RMS %.2f levels", d.linfLevels, d.l2, d.rmsLevels), x: px + box / 2,
                    y: top + box + 14 + 62, size: 11, align: .center, maxWidth: box)
        canvas.text(String(format: "%.1f%% of values changed", d.changedFraction * 100), x: px + box / 2,
                    y: top + box + 14 + 78, size: 11, color: .gray, align: .center, maxWidth: box)

        // The figures line.
        let eps = report.epsilon.map { report.budgetNorm == "linf" ? String(format: "ε %g/255", $0) : String(format: "ε %g (L2)", $0) } ?? "no budget"
        let info = "\(report.attack) · \(eps) · \(report.steps) steps, \(report.gradientEvaluations) gradients · "
            + String(format: "L∞ %d/255 · L2 %.3f · %.2f s · %@ %dx%d · seed %llu", d.linfLevels, d.l2, report.seconds,
                     report.region, report.width, report.height, report.seed)
        canvas.text(info, x: gap, y: height - 16, size: 11, color: .gray, maxWidth: width - 2 * gap)
        return canvas.image()
    }

    /// Five horizontal probability bars; target classes in red, the original top-1 in blue.
    static func bars(_ canvas: Canvas, _ scores: [ClassScore], goal: Goal, x: Double, y: Double, width: Double) {
        let labelWidth = width * 0.52, barMax = width - labelWidth - 46
        for (k, s) in scores.prefix(5).enumerated() {
            let row = y + Double(k) * 20
            let isTarget = goal.kind == .targeted && goal.classes.contains(s.index)
            let isOriginal = goal.kind == .untargeted && goal.classes.contains(s.index)
            let colour: Canvas.Color = isTarget ? .red : (isOriginal ? .blue : .gray)
            canvas.text(s.name, x: x, y: row + 13, size: 11, bold: isTarget, maxWidth: labelWidth - 4)
            canvas.fill(x: x + labelWidth, y: row + 3, width: barMax, height: 12, .lightGray)
            canvas.fill(x: x + labelWidth, y: row + 3, width: max(1, barMax * Double(s.probability)), height: 12, colour)
            canvas.text(String(format: "%.1f%%", s.probability * 100), x: x + width, y: row + 13, size: 10, color: .gray, align: .right)
        }
    }

    /// Diverging colour for a signed value in −1…1: blue (negative) – white – red (positive).
    static func diverging(_ t: Float) -> (UInt8, UInt8, UInt8) {
        let a = min(abs(t), 1)
        let fade = UInt8((255 * (1 - 0.85 * a)).rounded())
        return t >= 0 ? (255, fade, fade) : (fade, fade, 255)
    }

    /// The perturbation as a picture and the largest |mean δ| (in levels) the colour scale spans.
    static func perturbationPicture(original: RGBImage, adversarial: RGBImage) -> (RGBImage, Float) {
        let n = original.width * original.height
        var mean = [Float](repeating: 0, count: n)
        var extreme: Float = 1
        for i in 0..<n {
            var s: Float = 0
            for c in 0..<3 { s += Float(adversarial.pixels[i * 3 + c]) - Float(original.pixels[i * 3 + c]) }
            mean[i] = s / 3
            extreme = max(extreme, abs(mean[i]))
        }
        var px = [UInt8](repeating: 0, count: 3 * n)
        for i in 0..<n {
            let (r, g, b) = diverging(mean[i] / extreme)
            px[i * 3] = r; px[i * 3 + 1] = g; px[i * 3 + 2] = b
        }
        return (RGBImage(width: original.width, height: original.height, pixels: px), extreme)
    }

    static func colourScale(_ canvas: Canvas, extreme: Float, x: Double, y: Double, width: Double) {
        let steps = 64, barY = y + 8, barH = 14.0, left = x + 20, span = width - 40
        for k in 0..<steps {
            let t = Float(k) / Float(steps - 1) * 2 - 1
            let (r, g, b) = diverging(t)
            canvas.fill(x: left + span * Double(k) / Double(steps), y: barY, width: span / Double(steps) + 0.5, height: barH,
                        Canvas.Color(Double(r) / 255, Double(g) / 255, Double(b) / 255))
        }
        canvas.stroke(x: left, y: barY, width: span, height: barH, .gray, lineWidth: 0.5)
        canvas.text(String(format: "−%.2g", extreme), x: left, y: barY + barH + 13, size: 10, color: .gray, align: .center)
        canvas.text("0", x: left + span / 2, y: barY + barH + 13, size: 10, color: .gray, align: .center)
        canvas.text(String(format: "+%.2g levels", extreme), x: left + span, y: barY + barH + 13, size: 10, color: .gray, align: .center)
    }
}
