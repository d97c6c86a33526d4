import Adversarial
import ArgumentParser
import Engine
import Models
import Foundation

struct AttackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attack",
        abstract: "Make an image the model misclassifies — targeted or not — that still fools it once saved as an 8-bit PNG.",
        discussion: """
        Writes OUT/NAME.adv.png (the adversarial image), OUT/NAME.panel.png (original | perturbation | adversarial \
        with top-5 bars) and OUT/NAME.json. Success, top-5 and distances are measured on the saved PNG re-read from disk.
        Default region is the full photo at its own size through the differentiable resize + crop, so \
        `vizlab classify NAME.adv.png` checks it; `--region crop` attacks the 224x224 crop the model sees \
        (check with `vizlab classify --as-is`). A folder (or several images) is a batch: a summary table at the end \
        and OUT/summary.json.
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "Images (PNG, JPEG, WebP) or folders of them.")
    var inputs: [String]

    @Option(help: "Target: a class index, name or WordNet group (cat = any domestic cat), 'least-likely' or 'random' (a random class other than the original top-1). Untargeted when absent.")
    var target: String?

    @Option(help: "fgsm | bim | pgd | pgd-l2 | mifgsm | cw | deepfool.")
    var attack: String = "pgd"

    @Option(help: "Budget. L∞ attacks (fgsm, bim, pgd, mifgsm): 8-bit levels, 4 = 4/255 (default 4). pgd-l2: L2 on the 0–1 scale over the attacked image (default 1).")
    var eps: Double?

    @Option(help: "Gradient steps (pgd, pgd-l2: 50; mifgsm: 10; bim: min(eps+4, 1.25 eps); cw: 100 per search step; deepfool: 50).")
    var steps: Int?

    @Option(name: .customLong("step-size"), help: "Step per iteration (L∞: levels; pgd-l2: 0–1 scale). Default depends on the attack.")
    var stepSize: Double?

    @Option(help: "Random restarts (pgd, pgd-l2).")
    var restarts: Int = 1

    @Flag(name: .customLong("no-random-start"), help: "pgd, pgd-l2: start from the original image instead of a random point in the ball (smaller L2, less robust).")
    var noRandomStart = false

    @Option(name: .customLong("search-steps"), help: "cw: binary-search steps on the constant c.")
    var searchSteps: Int = 5

    @Option(name: .customLong("initial-const"), help: "cw: the first c (weight of the margin against ‖δ‖²).")
    var initialConst: Double = 1

    @Option(name: .customLong("learning-rate"), help: "cw: Adam's learning rate in tanh space.")
    var learningRate: Double = 0.01

    @Option(help: "Success needs this probability: the target set's total (targeted) or the new top-1's (untargeted).")
    var confidence: Float = 0

    @Option(help: "Loss for the gradient attacks: ce (cross-entropy of the target set) or margin (Carlini–Wagner's logit margin).")
    var loss: String = "ce"

    @Flag(name: .customLong("min-eps"), help: "Search the smallest ε (≤ --eps) at which the attack succeeds.")
    var minEps = false

    @Option(help: "full (the photo at its size, through the differentiable resize + crop) or crop (the 224x224 model input).")
    var region: String = "full"

    @Option(help: "Seed for random starts and random targets; the same seed gives the same files.")
    var seed: UInt64 = 0

    @Option(help: "Output folder.")
    var out: String = "out/attack"

    @Flag(help: "Print the report (one image) or the batch summary as JSON on stdout.")
    var json = false

    var method: AttackRequest.Method { AttackRequest.Method(rawValue: attack.lowercased())! }

    /// Checks the options; a bad one is one line on stderr and exit 2 (no usage dump), before anything is loaded.
    func check() throws {
        do { try checkOptions() } catch let e as ValidationError {
            CLI.fail(e.message)
            throw ExitCode(2)
        }
    }

    func checkOptions() throws {
        guard let m = AttackRequest.Method(rawValue: attack.lowercased()) else {
            throw ValidationError("unknown --attack '\(attack)'; choose one of \(AttackRequest.Method.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let e = eps {
            guard e.isFinite && e > 0 else { throw ValidationError("--eps must be positive (got \(e))") }
            if m == .pgdL2 {
                guard e * 255 >= 1 else { throw ValidationError("--eps \(e) is below one 8-bit level (1/255 ≈ 0.0039 on the 0–1 scale): no saved PNG fits inside it") }
                guard e <= 100 else { throw ValidationError("--eps \(e) is absurd for L2 on the 0–1 scale (the whole 224² image differs by at most ~388); use ≤ 100") }
            } else if m != .cw && m != .deepfool {
                guard e >= 1 else { throw ValidationError("--eps \(e) is below one 8-bit level: a saved PNG cannot change by less; L∞ ε is in levels (4 = 4/255)") }
                guard e <= 64 else { throw ValidationError("--eps \(e) levels is absurd (64/255 already repaints the image); use 1…64") }
                guard e == e.rounded() else { throw ValidationError("--eps \(e): L∞ budgets are whole 8-bit levels (a PNG changes by whole levels); use \(Int(e))") }
            }
        }
        if let s = steps { guard (1...10_000).contains(s) else { throw ValidationError("--steps must be 1…10000 (got \(s))") } }
        if let s = stepSize { guard s.isFinite && s > 0 else { throw ValidationError("--step-size must be positive (got \(s))") } }
        guard (1...20).contains(searchSteps) else { throw ValidationError("--search-steps must be 1…20 (got \(searchSteps))") }
        guard initialConst.isFinite && initialConst > 0 else { throw ValidationError("--initial-const must be positive (got \(initialConst))") }
        guard learningRate.isFinite && learningRate > 0 && learningRate <= 1 else { throw ValidationError("--learning-rate must be in (0, 1] (got \(learningRate))") }
        guard (1...100).contains(restarts) else { throw ValidationError("--restarts must be 1…100 (got \(restarts))") }
        if restarts > 1 && noRandomStart { throw ValidationError("--restarts \(restarts) with --no-random-start would repeat the same run; drop one of them") }
        guard confidence >= 0 && confidence < 1 else { throw ValidationError("--confidence must be in [0, 1) (got \(confidence))") }
        guard LossKind(rawValue: loss) != nil else { throw ValidationError("--loss must be ce or margin (got '\(loss)')") }
        guard AttackRegion(rawValue: region) != nil else { throw ValidationError("--region must be full or crop (got '\(region)')") }
        if m == .deepfool && target != nil { throw ValidationError("deepfool is untargeted: drop --target, or use pgd / cw for a target") }
        if minEps && (m == .cw || m == .deepfool) { throw ValidationError("--min-eps is for budgeted attacks (fgsm, bim, pgd, pgd-l2, mifgsm); \(m.rawValue) already minimizes") }
    }

    struct BatchSummary: Encodable {
        var attack: String
        var target: String
        var epsilon: Double?
        var images: Int
        var attacked: Int
        var succeeded: Int
        var successRate: Double
        var medianSteps: Double?
        var medianL2: Double?
        var medianLinf: Double?
        var secondsPerImage: Double?
        var skipped: [Skipped]
        var results: [Row]
    }
    struct Row: Encodable {
        var input: String
        var success: Bool
        var steps: Int
        var l2: Double
        var linf: Int
        var seconds: Double
        var original: String
        var adversarial: String
        var report: String
    }
    struct Skipped: Encodable { var input: String; var reason: String }

    func run() throws {
        try check()
        let files = try collectImages()
        let outDir = URL(fileURLWithPath: out, isDirectory: true)
        do { try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true) } catch {
            CLI.fail("--out \(out): cannot create the output folder (\(error.localizedDescription))")
            throw ExitCode(1)
        }
        guard FileManager.default.isWritableFile(atPath: outDir.path) else {
            CLI.fail("--out \(out): the output folder is not writable")
            throw ExitCode(1)
        }
        let model = try CLI.loadModel(modelOptions)
        var request = AttackRequest(method: method, target: try resolveTarget(model), epsilon: eps ?? (method == .pgdL2 ? 1 : 4))
        request.region = AttackRegion(rawValue: region)!
        request.steps = steps; request.stepSize = stepSize; request.restarts = restarts; request.randomStart = !noRandomStart
        request.confidence = confidence; request.loss = LossKind(rawValue: loss)!
        request.searchMinimalEpsilon = minEps
        request.searchSteps = searchSteps; request.initialConstant = initialConst; request.learningRate = learningRate
        let stems = uniqueStems(files)
        var rows: [Row] = [], skipped: [Skipped] = [], reports: [AttackReport] = []
        let batchStart = Date()
        for (k, path) in files.enumerated() {
            let name = URL(fileURLWithPath: path).lastPathComponent
            do {
                let image = try ImageDecoder.decode(contentsOf: URL(fileURLWithPath: path))
                var r = request
                r.seed = files.count == 1 ? seed : seed &+ stableHash(name)
                let imageStart = Date()
                let result = try AttackSession.attack(image, model: model, request: r) { done, total in
                    guard done % 4 == 0 || done == total else { return }
                    let elapsed = Date().timeIntervalSince(imageStart)
                    let eta = elapsed / Double(done) * Double(max(total - done, 0))
                    let prefix = files.count > 1 ? "[\(k + 1)/\(files.count)] " : ""
                    FileHandle.standardError.write(Data(String(format: "\r%@%@: %d/%d gradients, %.1fs elapsed, ETA ≤ %.1fs   ",
                                                               prefix, name, done, total, elapsed, eta).utf8))
                }
                FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
                let report = try AttackOutput.write(result, request: r, input: path,
                                                    directory: outDir, stem: stems[k], model: model)
                reports.append(report)
                rows.append(Row(input: path, success: report.success, steps: report.steps, l2: report.distances.l2,
                                linf: report.distances.linfLevels, seconds: report.seconds,
                                original: "\(report.originalTop[0].name) \(String(format: "%.1f%%", report.originalTop[0].probability * 100))",
                                adversarial: "\(report.adversarialTop[0].name) \(String(format: "%.1f%%", report.adversarialTop[0].probability * 100))",
                                report: report.report))
                if !json { printLine(report, files.count > 1 ? "[\(k + 1)/\(files.count)] " : "") }
                if files.count > 1 {
                    let left = Double(files.count - k - 1) * Date().timeIntervalSince(batchStart) / Double(k + 1)
                    FileHandle.standardError.write(Data(String(format: "batch: %d/%d done, ETA %.0fs\n", k + 1, files.count, left).utf8))
                }
            } catch {
                FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
                let reason = CLI.describe(error)
                CLI.fail("\(path): \(reason)")
                skipped.append(Skipped(input: path, reason: reason))
            }
        }
        if files.count == 1 && skipped.isEmpty {
            if json { try CLI.printJSON(reports[0]) }
            if !reports[0].success { throw ExitCode(3) }
            return
        }
        if files.count == 1 { throw ExitCode(1) }
        let summary = summarize(rows, skipped: skipped, epsilon: request.isBudgeted ? request.epsilon : nil)
        try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try encoder.encode(summary), to: outDir.appendingPathComponent("summary.json"))
        if json { try CLI.printJSON(summary) } else { printTable(summary) }
        if !skipped.isEmpty { throw ExitCode(1) }
    }

    func resolveTarget(_ model: any VisionModel) throws -> AttackRequest.Target {
        guard let t = target?.trimmingCharacters(in: .whitespaces), !t.isEmpty else { return .none }
        switch t.lowercased() {
        case "least-likely", "least_likely", "ll": return .leastLikely
        case "random": return .random
        default:
            do {
                let s = try model.classLookup().resolve(t)
                return .classes(indices: s.indices, query: t, description: s.description)
            } catch {
                CLI.fail("--target: \(CLI.describe(error))")
                throw ExitCode(2)
            }
        }
    }

    /// Files as given, and the images directly inside given folders (sorted), so a batch is reproducible.
    func collectImages() throws -> [String] {
        var files: [String] = []
        for input in inputs {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: input, isDirectory: &isDir) else {
                if inputs.count == 1 { CLI.fail("\(input): no such file or folder"); throw ExitCode(1) }
                files.append(input)  // reported (and skipped) in the loop
                continue
            }
            if isDir.boolValue {
                let names: [String]
                do { names = try FileManager.default.contentsOfDirectory(atPath: input) } catch {
                    CLI.fail("\(input): cannot read this folder (\(error.localizedDescription))"); throw ExitCode(1)
                }
                let images = names.filter { ImageDecoder.fileExtensions.contains(URL(fileURLWithPath: $0).pathExtension.lowercased()) }.sorted()
                if images.isEmpty { CLI.fail("\(input): no PNG, JPEG or WebP images in this folder"); throw ExitCode(1) }
                files += images.map { URL(fileURLWithPath: input).appendingPathComponent($0).path }
            } else {
                files.append(input)
            }
        }
        return files
    }

    /// Output names: the file name without its extension; when two inputs share it, the folder name and the
    /// extension are added, then a counter. `summary` is the batch's own file, so an image of that name becomes
    /// `summary_image`.
    func uniqueStems(_ files: [String]) -> [String] {
        var used: Set<String> = ["summary"]
        let plain = files.map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent }
        let counts = Dictionary(plain.map { ($0, 1) }, uniquingKeysWith: +)
        return zip(files, plain).map { file, stem in
            let url = URL(fileURLWithPath: file)
            var name = counts[stem]! > 1
                ? "\(url.deletingLastPathComponent().lastPathComponent)_\(stem)_\(url.pathExtension)" : stem
            if name == "summary" { name = "summary_image" }
            var candidate = name, k = 2
            while used.contains(candidate) { candidate = "\(name)_\(k)"; k += 1 }
            used.insert(candidate)
            return candidate
        }
    }

    /// FNV-1a of the file name: a per-image seed that does not depend on the batch's other files.
    func stableHash(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    func printLine(_ r: AttackReport, _ prefix: String) {
        let o = r.originalTop[0], a = r.adversarialTop[0]
        print(String(format: "%@%@: %@ → %@ %.1f%% (%@) · %d steps · L∞ %d/255 · L2 %.3f · %.2fs → %@",
                     prefix, URL(fileURLWithPath: r.input).lastPathComponent, o.name, a.name, a.probability * 100,
                     r.success ? "fooled" : "NOT fooled", r.steps, r.distances.linfLevels, r.distances.l2, r.seconds,
                     r.adversarialImage))
    }

    func summarize(_ rows: [Row], skipped: [Skipped], epsilon: Double?) -> BatchSummary {
        func median(_ v: [Double]) -> Double? {
            guard !v.isEmpty else { return nil }
            let s = v.sorted()
            return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
        let won = rows.filter(\.success)
        return BatchSummary(attack: method.rawValue, target: target ?? "untargeted", epsilon: epsilon,
                            images: rows.count + skipped.count, attacked: rows.count, succeeded: won.count,
                            successRate: rows.isEmpty ? 0 : Double(won.count) / Double(rows.count),
                            medianSteps: median(won.map { Double($0.steps) }), medianL2: median(won.map(\.l2)),
                            medianLinf: median(won.map { Double($0.linf) }),
                            secondsPerImage: rows.isEmpty ? nil : rows.map(\.seconds).reduce(0, +) / Double(rows.count),
                            skipped: skipped, results: rows)
    }

    func printTable(_ s: BatchSummary) {
        print("image                          original → adversarial (saved PNG)                 ok  steps   L∞     L2      s")
        for r in s.results {
            let name = URL(fileURLWithPath: r.input).lastPathComponent
            print(name.padding(toLength: 30, withPad: " ", startingAt: 0) + " "
                  + "\(r.original) → \(r.adversarial)".padding(toLength: 50, withPad: " ", startingAt: 0)
                  + String(format: " %@ %6d %4d %7.3f %6.2f", r.success ? "yes" : " no", r.steps, r.linf, r.l2, r.seconds))
        }
        for k in s.skipped { print("\(URL(fileURLWithPath: k.input).lastPathComponent): skipped — \(k.reason)") }
        print(String(format: "%@, target %@%@: %d/%d succeeded (%.1f%%) · median steps %@ · median L2 %@ · median L∞ %@ · %.2f s per image · %d skipped",
                     s.attack, s.target, s.epsilon.map { String(format: ", ε %g", $0) } ?? "", s.succeeded, s.attacked, s.successRate * 100,
                     s.medianSteps.map { String(format: "%g", $0) } ?? "–", s.medianL2.map { String(format: "%.3f", $0) } ?? "–",
                     s.medianLinf.map { String(format: "%g", $0) } ?? "–", s.secondsPerImage ?? 0, s.skipped.count))
    }
}
