import ArgumentParser
import Engine
import Models
import Foundation

struct Layers: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the layer names you can visualize, with output shape, channels and receptive field.")

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "Show only these layers (e.g. blocks.5 blocks.5.expand head).")
    var names: [String] = []

    @Flag(help: "Print JSON on stdout instead of a table.")
    var json = false

    func run() throws {
        let model = try CLI.loadModel(modelOptions)
        var rows = model.layers
        if !names.isEmpty {
            rows = []
            for name in names {
                do { rows.append(try model.resolveLayer(name)) } catch {
                    CLI.fail(CLI.describe(error))
                    throw ExitCode(2)
                }
            }
        }
        if json { try CLI.printJSON(rows); return }
        let width = max(22, (rows.map(\.name.count).max() ?? 0) + 1)
        print("model: \(model.spec.id) (\(model.spec.weightsFile)), input \(model.inputSize)², \(model.preprocessing.description)")
        print("name".padding(toLength: width, withPad: " ", startingAt: 0) + " op                    output shape      channels  receptive field  stride  multiply-adds")
        for l in rows {
            let shape = l.shape.map(String.init).joined(separator: "×")
            print(l.name.padding(toLength: width, withPad: " ", startingAt: 0) + " "
                  + l.op.padding(toLength: 21, withPad: " ", startingAt: 0) + " "
                  + shape.padding(toLength: 17, withPad: " ", startingAt: 0)
                  + String(format: "%8d  %15d  %6d  %13d", l.channels, l.receptiveField, l.jump, l.multiplyAdds))
        }
    }
}
