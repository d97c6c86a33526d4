import ArgumentParser
import Engine
import Models
import Foundation
import Visualize

struct ActivationCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "activation",
        abstract: "Measure one channel on images: its mean over space and its largest value (with where).",
        discussion: "Example:\n  vizlab activation blocks.8:10 photos/*.jpg\n  vizlab activation blocks.8:10 out/blocks.8_10.png --as-is")

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "LAYER:CHANNEL, e.g. blocks.5:17.")
    var unit: String

    @Argument(help: "Images. A file that cannot be read is reported and skipped.")
    var images: [String]

    @Flag(help: "Feed each image at its own size (for rendered pictures), not resized to 256 and centre-cropped to 224.")
    var asIs = false

    @Flag(help: "Print JSON on stdout.")
    var json = false

    struct Result: Encodable { var path: String; var mean: Float?; var max: Float?; var maxX: Int?; var maxY: Int?; var error: String? }

    func run() throws {
        let model = try CLI.loadModel(modelOptions)
        let (layer, channel) = try CLI.parseUnit(unit, model: model)
        var results: [Result] = []
        for path in images {
            do {
                let decoded = try ImageDecoder.decode(contentsOf: URL(fileURLWithPath: path))
                let input = asIs ? model.preprocessing.normalize(Preprocess.compositeOnWhite(decoded)) : model.preprocessing.input(decoded)
                do { try model.checkInputSize(height: input.shape[2], width: input.shape[3]) } catch {
                    throw ImageError(file: path, reason: "--as-is: \(CLI.describe(error))")
                }
                let a = GradMode.withoutGrad { model.forward(input, capture: [layer.name])[layer.name]! }
                let plane = a.rank == 4 ? a.shape[2] * a.shape[3] : 1
                let values = Array(a.data[(channel * plane)..<((channel + 1) * plane)])
                let (best, at) = values.enumerated().map { ($0.element, $0.offset) }.max { $0.0 < $1.0 }!
                let width = a.rank == 4 ? a.shape[3] : 1
                let r = Result(path: path, mean: values.reduce(0, +) / Float(plane), max: best, maxX: at % width, maxY: at / width)
                results.append(r)
                if !json { print(String(format: "%@  mean %.4f  max %.4f at (%d, %d)", path, r.mean!, best, at % width, at / width)) }
            } catch {
                CLI.fail(CLI.describe(error))
                results.append(Result(path: path, error: CLI.describe(error)))
            }
        }
        if json { try CLI.printJSON(results) }
        if results.contains(where: { $0.error != nil }) { throw ExitCode(1) }
    }
}

extension CLI {
    /// "blocks.5:17" → (layer, 17), with one-line errors naming the nearest layers or the valid channel range.
    static func parseUnit(_ text: String, model: any VisionModel) throws -> (LayerInfo, Int) {
        do {
            let (layer, channel, _) = try ObjectiveExpression.parseUnit(text, position: false) { try model.resolveLayer($0) }
            return (layer, channel)
        } catch { fail(describe(error)); throw ExitCode(2) }
    }
}
