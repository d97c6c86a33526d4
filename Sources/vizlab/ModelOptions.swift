import ArgumentParser
import Engine
import Foundation
import Models

/// `--model`, `--arch`, `--preprocess`: which network a command works on (every command has them).
struct ModelOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A built-in name (\(Zoo.names.joined(separator: ", "))), a weight file (.pth, .safetensors) or a .vizlab bundle. Default: $VIZLAB_MODEL, else \(Zoo.defaultName).",
                               valueName: "name|path"))
    var model: String?

    @Option(help: ArgumentHelp("The architecture of a weight file given to --model (default: recognised from its tensor names and shapes).", valueName: "name"))
    var arch: String?

    @Option(help: "Input normalization for an imported graph: lite, torch, caffe or tf (a built-in uses its framework's).")
    var preprocess: Preprocessing.Mode?

    var request: ModelRequest { ModelRequest(model: model, arch: arch, preprocess: preprocess) }

    /// Options that make a child process load the same model (by its file, so a changed $VIZLAB_MODEL cannot differ).
    func workerArguments(_ loaded: any VisionModel) -> [String] {
        var args = ["--model", Zoo.architecture(named: request.model) != nil ? request.model : loaded.spec.weightsFile]
        if let a = arch { args += ["--arch", a] }
        if let p = preprocess { args += ["--preprocess", p.rawValue] }
        return args
    }
}

extension Preprocessing.Mode: ExpressibleByArgument {}

extension CLI {
    /// Loads and checks the model, turning any failure into one line and a non-zero exit.
    static func loadModel(_ options: ModelOptions) throws -> any VisionModel {
        do { return try ModelStore.load(options.request) } catch {
            fail(describe(error))
            throw ExitCode(2)
        }
    }
}
