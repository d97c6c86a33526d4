import Engine
import Foundation
import Models
import Visualize

/// Everything a run leaves in `--out`: the model bundle, the per-epoch log (JSON + CSV), the tutorial's two figures
/// (loss and accuracy, training vs validation), the confusion matrix, per-class accuracy, and a grid of the
/// images the model gets most wrong (fastai's `plot_top_losses`), with `train.json` as the sidecar of it all.
public struct TrainReport: Codable, Sendable {
    public var model: String
    public var bundle: String
    public var base: String
    public var data: String
    public var classes: [String]
    public var counts: [String: [Int]]
    public var skipped: [SkippedFile]
    public var config: TrainConfig
    public var best: Best
    public var evaluatedOn: String
    public var accuracy: Double
    public var loss: Double
    public var perClassAccuracy: [String: Double]
    /// confusion[actual][predicted]
    public var confusion: [[Int]]
    public var seconds: Double
    public var epochs: [EpochLog]
    public var files: [String]

    public struct Best: Codable, Sendable { public var stage: String; public var epoch: Int; public var validationLoss: Double }

    public static func write(_ result: Trainer.Result, trainer: Trainer, to out: URL) throws -> TrainReport {
        let fm = FileManager.default
        try fm.createDirectory(at: out, withIntermediateDirectories: true)
        let bundleURL = out.appendingPathComponent("model.vizlab")
        try ModelBundle.write(result.model, to: bundleURL)
        let saved = try ModelBundle.load(bundleURL)
        let data = trainer.data
        let split = data.test.isEmpty ? data.validation : data.test
        let ev = result.evaluation
        let c = data.classes.count
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: c), count: c)
        for (i, image) in split.enumerated() { confusion[image.label][ev.predictions[i]] += 1 }
        var perClass: [String: Double] = [:]
        for k in 0..<c { let n = confusion[k].reduce(0, +); perClass[data.classes[k]] = n > 0 ? Double(confusion[k][k]) / Double(n) : 0 }

        // Log as CSV.
        var csv = "stage,epoch,train_loss,train_accuracy,validation_loss,validation_accuracy,learning_rate,seconds\n"
        for e in result.log {
            csv += "\(e.stage),\(e.epoch),\(e.trainLoss),\(e.trainAccuracy),\(e.validationLoss),\(e.validationAccuracy),\(e.learningRate),\(String(format: "%.3f", e.seconds))\n"
        }
        try AtomicFile.write(Data(csv.utf8), to: out.appendingPathComponent("log.csv"))
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try enc.encode(result.log), to: out.appendingPathComponent("log.json"))

        // The two figures.
        let title = "\(saved.spec.architecture), \(trainer.config.mode.rawValue)"
        try PNGEncoder.write(Figures.plot([("training", result.log.map { Float($0.trainLoss) }), ("validation", result.log.map { Float($0.validationLoss) })],
                                          title: "Loss — \(title)", xLabel: "epoch"), to: out.appendingPathComponent("loss.png"))
        try PNGEncoder.write(Figures.plot([("training", result.log.map { Float($0.trainAccuracy) }), ("validation", result.log.map { Float($0.validationAccuracy) })],
                                          title: "Accuracy — \(title)", xLabel: "epoch"), to: out.appendingPathComponent("accuracy.png"))
        try PNGEncoder.write(confusionFigure(confusion, classes: data.classes, title: "Confusion (\(result.evaluatedOn)), accuracy \(String(format: "%.2f%%", ev.accuracy * 100))"),
                             to: out.appendingPathComponent("confusion.png"))
        // Top losses.
        let worst = split.indices.sorted { (ev.losses[$0], $1) > (ev.losses[$1], $0) }.prefix(16)
        var tiles: [Figures.Tile] = []
        for i in worst {
            guard let decoded = try? ImageDecoder.decode(contentsOf: URL(fileURLWithPath: split[i].path)) else { continue }
            let view = saved.spec.preprocessing.view(Preprocess.compositeOnWhite(decoded))
            let p = ev.predictions[i]
            tiles.append(Figures.Tile(image: view, caption: [
                "\(data.classes[p]) / \(data.classes[split[i].label])",
                String(format: "loss %.2f, p %.2f", ev.losses[i], ev.probabilities[i][split[i].label]),
                URL(fileURLWithPath: split[i].path).lastPathComponent,
            ]))
        }
        try PNGEncoder.write(Figures.grid(tiles, columns: 4, tileSize: 160, title: "Top losses (\(result.evaluatedOn)): predicted / actual, loss, p(actual)"),
                             to: out.appendingPathComponent("top_losses.png"))
        let report = TrainReport(
            model: saved.spec.id, bundle: bundleURL.path, base: trainer.base.spec.id, data: data.root, classes: data.classes,
            counts: ["train": data.counts(data.train), "validation": data.counts(data.validation), "test": data.counts(data.test)],
            skipped: data.skipped, config: trainer.config,
            best: Best(stage: result.best.stage, epoch: result.best.epoch, validationLoss: result.best.validationLoss),
            evaluatedOn: result.evaluatedOn, accuracy: ev.accuracy, loss: ev.loss, perClassAccuracy: perClass, confusion: confusion,
            seconds: result.seconds, epochs: result.log,
            files: ["model.vizlab", "log.json", "log.csv", "loss.png", "accuracy.png", "confusion.png", "top_losses.png", "train.json"])
        try AtomicFile.write(try enc.encode(report), to: out.appendingPathComponent("train.json"))
        return report
    }

    /// The confusion matrix as a heat map (rows: actual, columns: predicted), counts in each cell.
    static func confusionFigure(_ m: [[Int]], classes: [String], title: String) -> RGBImage {
        let c = classes.count, cell = max(28, min(64, 640 / max(c, 1)))
        let left = 150.0, top = 150.0
        let width = Int(left) + c * cell + 20, height = Int(top) + c * cell + 40
        let canvas = Canvas(width: width, height: height)
        canvas.text(title, x: 12, y: 22, size: 14, bold: true, maxWidth: Double(width - 24))
        canvas.text("actual ↓  predicted →", x: 12, y: 44, size: 11, color: .gray)
        for (k, name) in classes.enumerated() {
            canvas.text(name, x: left - 6, y: top + Double(k * cell) + Double(cell) / 2 + 4, size: 10, align: .right, maxWidth: left - 12)
            canvas.text(String(name.prefix(10)), x: left + Double(k * cell) + Double(cell) / 2, y: top - 8, size: 9, align: .center)
        }
        for r in 0..<c {
            let total = max(m[r].reduce(0, +), 1)
            for col in 0..<c {
                let f = Double(m[r][col]) / Double(total)
                let color = r == col ? Canvas.Color(1 - 0.8 * f, 1 - 0.4 * f, 1 - 0.8 * f) : Canvas.Color(1, 1 - 0.7 * f, 1 - 0.7 * f)
                let x = left + Double(col * cell), y = top + Double(r * cell)
                canvas.fill(x: x, y: y, width: Double(cell), height: Double(cell), color)
                canvas.stroke(x: x, y: y, width: Double(cell), height: Double(cell), .lightGray)
                if m[r][col] > 0 { canvas.text("\(m[r][col])", x: x + Double(cell) / 2, y: y + Double(cell) / 2 + 4, size: 10, align: .center) }
            }
        }
        return canvas.image()
    }
}
