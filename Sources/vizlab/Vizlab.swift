import ArgumentParser
import Engine
import Models
import Foundation

@main
struct Vizlab: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vizlab",
        abstract: "See inside pretrained ImageNet networks (EfficientNet-Lite, VGG, ResNet, MobileNetV2, your own) and fool them — on the CPU, offline.",
        subcommands: [Classify.self, Layers.self, Neuron.self, Channel.self, LayerCommand.self, Dream.self, Ideal.self, ActivationCommand.self, Grid.self, AttackCommand.self, IndexCommand.self, Top.self, GalleryCommand.self, GalleryJobCommand.self, Bench.self, ModelsCommand.self, Train.self, Similar.self, DuplicatesCommand.self, Invert.self, Interpolate.self])

    /// ArgumentParser's own handling, except that a malformed command line is one line on stderr (what is wrong,
    /// and where the help is) with exit status 2, like every other bad input — not the usage text.
    static func main() {
        BLASKernels.ensureFastKernels()
        let arguments = Array(CommandLine.arguments.dropFirst())
        var command: ParsableCommand
        do {
            command = try parseAsRoot(arguments)
        } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            let message = message(for: error).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("Usage:") && !$0.hasPrefix("Help:") && !$0.hasPrefix("See '") }
                .map { $0.hasPrefix("Error: ") ? String($0.dropFirst(7)) : $0 }.joined(separator: "; ")
            let names = Set(configuration.subcommands.map { $0._commandName })
            let sub = arguments.first.flatMap { names.contains($0) ? " \($0)" : nil } ?? ""
            CLI.fail("\(message) (see `vizlab\(sub) --help`)")
            Foundation.exit(2)
        }
        do { try command.run() } catch { exit(withError: error) }
    }
}

/// A failure already reported as one line on stderr; exit non-zero without ArgumentParser's usage text.
struct ReportedFailure: Error {}

enum CLI {
    /// Prints `vizlab: message` on stderr.
    static func fail(_ message: String) {
        FileHandle.standardError.write(Data("vizlab: \(message)\n".utf8))
    }

    static func describe(_ error: Error) -> String {
        String(describing: error)
    }

    /// Pretty, stable JSON on stdout.
    static func printJSON<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }
}
