import ArgumentParser
import Engine
import Models
import Foundation
import Visualize

struct Ideal: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render the model's ideal image of a class (or of a group of classes: --class dog).",
        discussion: """
        A class is an index (281), a name or synonym from the label list ("tiger cat", "tabby"), or a WordNet noun \
        that covers several classes ("cat": the 5 domestic cats; "dog": the 118 dogs). A group is rendered by \
        maximizing log Σ exp of its logits, so the model may settle on any member.
        Examples:
          vizlab ideal --class "tiger cat"
          vizlab ideal --class espresso --class volcano --grid
          vizlab ideal --class dog --diversity 4
        """)

    enum ClassObjective: String, ExpressibleByArgument, CaseIterable {
        /// The pre-softmax logit (Lucid's usual class objective); for a group log Σ exp(logits).
        case logit
        /// log p(class): also pushes every other class down.
        case logprob
    }

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .customLong("class"), help: "Class index, name, synonym or WordNet noun (repeat for several images).")
    var classes: [String] = []

    @Option(help: "What to maximize: logit (for a group log Σ exp of its logits) or logprob (log of the class's or group's probability; saturates once it wins).")
    var objective: ClassObjective = .logit

    @Option(help: "Render N different images of the class, kept apart by a diversity term.")
    var diversity: Int = 1

    @Option(help: "Weight of the diversity term.")
    var diversityWeight: Float = 10

    @OptionGroup var options: RenderOptions

    func validate() throws {
        guard !classes.isEmpty else { throw ValidationError("give a class: --class NAME|INDEX (e.g. --class \"tiger cat\")") }
        guard (1...64).contains(diversity) else { throw ValidationError("--diversity must be 1…64 (got \(diversity))") }
        if diversity > 1 && classes.count > 1 { throw ValidationError("--diversity renders one class several times; give one --class") }
    }

    func run() throws {
        let model = try CLI.loadModel(modelOptions)
        let lookup = model.classLookup()
        var selections: [ClassSelection] = []
        for q in classes {
            do { selections.append(try lookup.resolve(q)) } catch { CLI.fail("--class \(CLI.describe(error))"); throw ExitCode(2) }
        }
        var items: [RenderItem] = []
        for sel in selections {
            if !sel.otherSenses.isEmpty || sel.isGroup {
                FileHandle.standardError.write(Data("vizlab: --class \(sel.query) → \(sel.description)\(sel.otherSenses.isEmpty ? "" : "; other senses: " + sel.otherSenses.joined(separator: ", "))\n".utf8))
            }
            let name = sel.isGroup ? sel.description.components(separatedBy: ":")[0] : model.labels.names[sel.indices[0]]
            let obj: Objective = switch (objective, sel.isGroup) {
            case (.logprob, _): .classLogProbability(sel.indices, name: name, logits: model.spec.logits)
            case (.logit, true): .classGroupLogit(sel.indices, name: name, logits: model.spec.logits)
            case (.logit, false): .classLogit(sel.indices[0], logits: model.spec.logits).named("logit \(name) (\(sel.indices[0]))")
            }
            let base = CLI.fileName("class_" + (sel.isGroup ? name : "\(sel.indices[0])_\(name)"))
            for copy in 0..<diversity {
                items.append(RenderItem(name: diversity > 1 ? "\(base)_div\(copy)" : base, objective: obj, measure: obj,
                                        caption: sel.isGroup ? "\(name) (\(sel.indices.count) classes)" : "\(name) (\(sel.indices[0]))",
                                        classes: sel))
            }
        }
        let extra: Objective? = diversity > 1 ? diversityWeight * Objective.diversity(model.diversityLayer) : nil
        try CLI.renderAndSave(model, items, options: options, extra: extra,
                              batchName: items.count == 1 ? items[0].name : (diversity > 1 ? items[0].name.replacingOccurrences(of: "_div0", with: "_diversity") : "classes"))
    }
}
