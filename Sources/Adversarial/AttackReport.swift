import Foundation

/// Everything about one attack, as written to `<name>.json` beside the adversarial PNG and the panel. Every
/// figure about the result (success, top-5, distances) is measured on the saved PNG re-read from disk.
public struct AttackReport: Codable {
    /// The attacked model's id (architecture @ weights sha256) and weight file.
    public var model: String?
    public var weights: String?
    public var input: String
    public var adversarialImage: String
    public var panel: String
    public var report: String
    /// How to check it yourself.
    public var verify: String
    public var region: String
    public var width: Int
    public var height: Int
    public var attack: String
    public var budgetNorm: String?
    /// L∞ in levels (4 = 4/255) or L2 on the 0–1 scale; nil for minimal attacks without a budget.
    public var epsilon: Double?
    public var settings: [String: Double]
    public var loss: String
    public var seed: UInt64
    public var goal: Goal
    public var success: Bool
    /// Gradient steps until the saved-form image reached the goal (or all, when it did not).
    public var steps: Int
    /// Forward+backward passes, every ε trial included.
    public var gradientEvaluations: Int
    public var seconds: Double
    /// Saved PNG against the original's 8-bit pixels (composited on white).
    public var distances: Distances
    public var originalTop: [ClassScore]
    public var adversarialTop: [ClassScore]
    public var goalProbabilityOriginal: Float
    public var goalProbabilityAdversarial: Float
    public var minimalEpsilonTrials: [MinimalEpsilon.Trial]?
    public var notes: [String: Double]
    public var history: [StepRecord]
}

public enum AttackOutput {
    /// Writes `<stem>.adv.png`, then re-reads it and measures it, then `<stem>.panel.png` and `<stem>.json`
    /// (each written atomically; the JSON last, so its presence means all three are complete).
    public static func write(_ result: AttackResult, request: AttackRequest, input: String,
                             directory: URL, stem: String, model: any VisionModel) throws -> AttackReport {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let imageURL = directory.appendingPathComponent("\(stem).adv.png")
        let panelURL = directory.appendingPathComponent("\(stem).panel.png")
        let jsonURL = directory.appendingPathComponent("\(stem).json")
        // All three or none: a failure after the first write removes what was written.
        do {
            return try writeAll(result, request: request, input: input, imageURL: imageURL,
                                panelURL: panelURL, jsonURL: jsonURL, model: model)
        } catch {
            for url in [imageURL, panelURL, jsonURL] { try? FileManager.default.removeItem(at: url) }
            throw error
        }
    }

    static func writeAll(_ result: AttackResult, request: AttackRequest, input: String,
                         imageURL: URL, panelURL: URL, jsonURL: URL, model: any VisionModel) throws -> AttackReport {
        let original = result.original
        try PNGEncoder.write(result.adversarial, to: imageURL)

        // The saved file, read back as anyone would read it.
        let reread = Preprocess.compositeOnWhite(try ImageDecoder.decode(contentsOf: imageURL))
        let logits = GradMode.withoutGrad { model(request.region.modelInput(reread, model.preprocessing)) }
        let savedTop = model.topK(logits, k: 5)[0]
        let goal = result.goal
        // The check names the model unless it is the default's official file.
        let official = Zoo.architecture(named: Zoo.defaultName).map { ModelStore.candidates($0).map(\.url.path) } ?? []
        var again = official.contains(model.spec.weightsFile) ? "" : " --model \(model.spec.weightsFile)"
        if let arch = Zoo.architecture(named: model.spec.architecture), !official.contains(model.spec.weightsFile) { again += " --arch \(arch.name)" }
        else if model.spec.architecture.contains("+") { again += " --preprocess \(model.preprocessing.mode.rawValue)" }
        let report = AttackReport(
            model: model.spec.id, weights: model.spec.weightsFile, input: input, adversarialImage: imageURL.path, panel: panelURL.path, report: jsonURL.path,
            verify: (request.region == .full ? "vizlab classify \(imageURL.path)" : "vizlab classify --as-is \(imageURL.path)") + again,
            region: request.region.rawValue, width: original.width, height: original.height,
            attack: result.attack.name, budgetNorm: result.attack.budget?.norm.rawValue, epsilon: result.epsilon,
            settings: result.attack.settings, loss: result.attack.name == "cw" ? "margin" : request.loss.rawValue,
            seed: request.seed, goal: goal, success: goal.isReached(logits: logits.data), steps: result.outcome.steps,
            gradientEvaluations: result.gradientEvaluations, seconds: result.seconds,
            distances: Distances(reread, original), originalTop: result.originalTop, adversarialTop: savedTop,
            goalProbabilityOriginal: goal.progress(Goal.softmax(result.originalLogits)),
            goalProbabilityAdversarial: goal.progress(Goal.softmax(logits.data)),
            minimalEpsilonTrials: result.trials, notes: result.outcome.notes, history: result.history)
        try PNGEncoder.write(ReportPanel.render(report, original: original, adversarial: reread), to: panelURL)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try encoder.encode(report), to: jsonURL)
        return report
    }
}
