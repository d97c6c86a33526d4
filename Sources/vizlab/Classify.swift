import ArgumentParser
import Engine
import Models
import Foundation

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the model's top classes for each image (PNG, JPEG, WebP).")

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "Image files. A file that cannot be read is reported and skipped; the rest are classified.")
    var images: [String]

    @Option(help: "How many classes to show per image.")
    var top: Int = 5

    @Flag(name: .customLong("as-is"), help: "Feed images of the model's input size unchanged (its normalization only; no resize, no crop): how `vizlab attack --region crop` results are checked.")
    var asIs = false

    @Flag(help: "With --json: add each image's full logit vector.")
    var logits = false

    @Flag(help: "Print one JSON document on stdout instead of text.")
    var json = false

    struct Result: Encodable {
        var path: String
        var top: [ClassScore]?
        var logits: [Float]?
        var error: String?
    }

    func validate() throws {
        guard top >= 1 && top <= 100_000 else { throw ValidationError("--top must be at least 1 (got \(top))") }
        if logits && !json { throw ValidationError("--logits goes with --json") }
    }

    func run() throws {
        let model = try CLI.loadModel(modelOptions)
        var results: [Result] = []
        for path in images {
            do {
                let image = try ImageDecoder.decode(contentsOf: URL(fileURLWithPath: path))
                if asIs && (image.width != model.inputSize || image.height != model.inputSize) {
                    throw ImageError(file: path, reason: "--as-is needs a \(model.inputSize)x\(model.inputSize) image, this one is \(image.width)x\(image.height)")
                }
                let input = asIs ? model.preprocessing.normalize(Preprocess.compositeOnWhite(image)) : model.preprocessing.input(image)
                let z = GradMode.withoutGrad { model(input) }
                let scores = model.topK(z, k: top)[0]
                results.append(Result(path: path, top: scores, logits: logits ? z.data : nil))
                if !json {
                    print(path)
                    for s in scores {
                        print(String(format: "  %6.2f%%  %4d  %@", s.probability * 100, s.index, s.name))
                    }
                }
            } catch {
                CLI.fail(CLI.describe(error))
                results.append(Result(path: path, error: CLI.describe(error)))
            }
        }
        if json { try CLI.printJSON(results) }
        if results.contains(where: { $0.error != nil }) { throw ExitCode(1) }
    }
}
