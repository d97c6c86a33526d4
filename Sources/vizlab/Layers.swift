import ArgumentParser
import Engine
import Foundation

struct Layers: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the layer names you can visualize, with output shape, channels and receptive field.")

    @Flag(help: "Print JSON on stdout instead of a table.")
    var json = false

    func run() throws {
        let model = try CLI.loadModel()
        if json { try CLI.printJSON(model.layers); return }
        print("name                   output shape      channels  receptive field  stride")
        for l in model.layers {
            let shape = l.shape.map(String.init).joined(separator: "×")
            print(l.name.padding(toLength: 22, withPad: " ", startingAt: 0) + " "
                  + shape.padding(toLength: 17, withPad: " ", startingAt: 0)
                  + String(format: "%8d  %15d  %6d", l.channels, l.receptiveField, l.jump))
        }
    }
}
