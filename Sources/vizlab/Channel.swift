import ArgumentParser
import Engine
import Models
import Foundation
import Visualize

/// Options for unit commands: several units in one batch, diversity, negation.
struct UnitOptions: ParsableArguments {
    @Argument(help: ArgumentHelp("Units: LAYER:CH (blocks.5:17), a list LAYER:CH,CH,… (one image each, one batch), or an expression such as \"blocks.5:17 - 0.5*blocks.5:3\" or blocks.5:17@3,4 for a neuron at x 3, y 4.",
                                 valueName: "unit"))
    var units: [String]

    @Option(help: "Render N different images of the (single) unit, kept apart by a diversity term (Lucid's).")
    var diversity: Int = 1

    @Option(help: "Weight of the diversity term.")
    var diversityWeight: Float = 10

    @Flag(help: "Minimize instead: what least activates the unit (the same as a leading '-').")
    var negative = false

    func validate() throws {
        guard (1...64).contains(diversity) else { throw ValidationError("--diversity must be 1…64 (got \(diversity))") }
        guard diversityWeight >= 0 else { throw ValidationError("--diversity-weight must be ≥ 0 (got \(diversityWeight))") }
    }
}

struct Channel: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render what a channel responds to: maximize its mean activation over space.",
        discussion: "Examples:\n  vizlab channel blocks.8:10\n  vizlab channel blocks.5:1,2,3,4 --grid\n  vizlab channel blocks.8:10 --diversity 4\n  vizlab channel \"blocks.5:17 - 0.5*blocks.5:3\"")

    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup var unitOptions: UnitOptions
    @OptionGroup var options: RenderOptions

    func run() throws { try CLI.renderUnits(unitOptions, options, modelOptions, kind: .channel) }
}

struct Neuron: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render what one neuron responds to: a channel at one position (the centre unless @X,Y is given).",
        discussion: "Examples:\n  vizlab neuron blocks.5:17\n  vizlab neuron blocks.5:17@3,4")

    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup var unitOptions: UnitOptions
    @OptionGroup var options: RenderOptions

    func run() throws { try CLI.renderUnits(unitOptions, options, modelOptions, kind: .neuron) }
}

extension CLI {
    static func renderUnits(_ u: UnitOptions, _ options: RenderOptions, _ modelOptions: ModelOptions, kind: ObjectiveExpression.UnitKind) throws {
        let model = try loadModel(modelOptions)
        // Expand LAYER:CH,CH,… lists into one item per channel; anything else is one expression.
        var texts: [String] = []
        for text in u.units {
            let parts = text.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[1].contains(","), !parts[1].contains("@"),
               parts[1].split(separator: ",").allSatisfy({ Int($0) != nil }) {
                texts += parts[1].split(separator: ",").map { "\(parts[0]):\($0)" }
            } else {
                texts.append(text)
            }
        }
        if u.diversity > 1 && texts.count > 1 { fail("--diversity renders one unit several times; give one unit (got \(texts.count))"); throw ExitCode(2) }
        var items: [RenderItem] = []
        for text in texts {
            var (objective, terms) = try parseObjective(text, model: model, kind: kind)
            if u.negative { objective = -objective }
            let base = fileName((u.negative ? "neg_" : "") + (kind == .neuron ? "neuron_" : "") +
                                terms.map { ($0.weight < 0 ? "-" : "") + "\($0.layer)_\($0.channel)" + ($0.position.map { "@\($0.x),\($0.y)" } ?? "") }
                                    .joined(separator: "+"))
            for copy in 0..<u.diversity {
                items.append(RenderItem(name: u.diversity > 1 ? "\(base)_div\(copy)" : base, objective: objective,
                                        measure: objective, caption: objective.description))
            }
        }
        var extra: Objective?
        if u.diversity > 1 {
            let layer = diversityLayer(for: items[0].objective, model: model)
            extra = u.diversityWeight * Objective.diversity(layer)
        }
        let batchName = items.count == 1 ? items[0].name : (u.diversity > 1 ? items[0].name.replacingOccurrences(of: "_div0", with: "_diversity")
                                                                               : fileName(kind.rawValue + "s"))
        try renderAndSave(model, items, options: options, extra: extra, batchName: batchName)
    }

    /// Diversity compares Gram matrices of a spatial layer: the objective's own if it has space, else blocks.12.
    static func diversityLayer(for objective: Objective, model: any VisionModel) -> String {
        let spatial = objective.layers.compactMap { try? model.resolveLayer($0) }.filter { $0.kind != .pool && $0.kind != .linear && $0.shape.count == 3 }
        return spatial.max { $0.jump < $1.jump }?.name ?? model.diversityLayer
    }
}
