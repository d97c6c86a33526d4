import ArgumentParser
import Engine
import Foundation

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the top ImageNet classes for each image (PNG, JPEG, WebP).")

    @Argument(help: "Image files. A file that cannot be read is reported and skipped; the rest are classified.")
    var images: [String]

    @Option(help: "How many classes to show per image.")
    var top: Int = 5

    @Flag(name: .customLong("as-is"), help: "Feed 224x224 images to the model unchanged (no resize, no crop): how `vizlab attack --region crop` results are checked.")
    var asIs = false

    @Flag(help: "Print one JSON document on stdout instead of text.")
    var json = false

    struct Result: Encodable {
        var path: String
        var top: [ClassScore]?
        var error: String?
    }

    func validate() throws {
        guard top >= 1 && top <= 1000 else { throw ValidationError("--top must be between 1 and 1000 (got \(top))") }
    }

    func run() throws {
        let model = try CLI.loadModel()
        var results: [Result] = []
        for path in images {
            do {
                let image = try ImageDecoder.decode(contentsOf: URL(fileURLWithPath: path))
                if asIs && (image.width != model.inputSize || image.height != model.inputSize) {
                    throw ImageError(file: path, reason: "--as-is needs a \(model.inputSize)x\(model.inputSize) image, this one is \(image.width)x\(image.height)")
                }
                let input = asIs ? Preprocess.normalize(Preprocess.compositeOnWhite(image)) : Preprocess.modelInput(image)
                let logits = GradMode.withoutGrad { model(input) }
                let scores = model.topK(logits, k: top)[0]
                results.append(Result(path: path, top: scores))
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
