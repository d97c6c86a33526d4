import Adversarial
import ArgumentParser
import Engine
import Models
import Foundation
import Visualize

struct GalleryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gallery",
        abstract: "Write a static, offline HTML gallery: layers → channels (renders + dataset examples), classes, attacks.",
        discussion: """
        Renders are cached in OUT/renders/ by the hash of everything that determines them, so a rerun renders only \
        what is missing (nothing, if nothing changed). Work is split over --jobs worker processes, each single-threaded \
        (the same job gives the same bytes whatever --jobs is). Pages: OUT/index.html, OUT/layers/LAYER/CH.html.
        Examples:
          vizlab gallery
          vizlab gallery --layers blocks.15 --channels all --out gallery/blocks15
          vizlab gallery --attacks out/demo/attack --dataset out/demo/examples.sqlite
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Output folder (the site).")
    var out = "gallery/site"

    @Option(help: "Layers, comma-separated (spatial layers; default: the model's gallery layers, for lite0 blocks.2,5,9,14).")
    var layers: String?

    @Option(help: "Channels per layer: N (the first N), 'all', or a list such as 3,17,40.")
    var channels = "16"

    @Option(help: "Index database for dataset examples (default: $VIZLAB_HOME/examples.sqlite when it exists; 'none' for none).")
    var dataset: String?

    @Option(help: "Dataset examples per end (top and bottom) on a channel page.")
    var examples = 10

    @Option(name: .customLong("class"), help: "A class for the classes page (index, name or WordNet group; repeat). Default: 8 everyday classes.")
    var classes: [String] = []

    @Flag(help: "No classes page renders.")
    var noClasses = false

    @Option(help: "A folder of `vizlab attack` output (NAME.json + NAME.panel.png) for the attacks page (repeat).")
    var attacks: [String] = []

    @Option(help: "Optimization steps per unit render.")
    var steps = 256

    @Option(help: "Side of the unit renders in pixels (Lucid's default 128).")
    var size = 128

    @Option(help: "Steps for the class renders (default: --steps).")
    var classSteps: Int?

    @Option(help: "Side of the class renders.")
    var classSize: Int?

    @Option(help: "Pictures in each channel's diversity set (0: none).")
    var diversity = 4

    @Flag(help: "No neuron (centre position) render per channel.")
    var noNeuron = false

    @Flag(help: "No negative (minimizing) render per channel.")
    var noNegative = false

    @Option(help: "Total-variation weight of the renders.")
    var tv: Float = RenderOptions.defaultTV

    @Option(help: "Random seed of the renders.")
    var seed: UInt64 = 0

    @Option(help: "Worker processes (each single-threaded; default: one per core).")
    var jobs = min(ProcessInfo.processInfo.activeProcessorCount, 64)

    @Flag(help: "Print a JSON summary on stdout instead of the index path.")
    var json = false

    static let defaultClasses = ["tiger cat", "Pekinese", "espresso", "goldfish", "castle", "school bus", "banana", "volcano"]

    struct Summary: Encodable {
        var index: String
        var layers: [String: [Int]]
        var classes: [String]
        var attacks: Int
        var jobs: Int
        var rendered: Int
        var cached: Int
        var failed: [String]
        var imageSteps: Int
        var renderSeconds: Double
        var seconds: Double
        var pages: Int
        var pagesWritten: Int
        var examplePicturesMade: Int
        var similarPages: Int
        var links: Int
        var brokenLinks: [String]
        var settings: RenderSettings
    }

    func run() throws {
        let started = Date()
        for (name, v, range) in [("--steps", steps, 1...100_000), ("--size", size, 32...1024), ("--class-size", classSize ?? 224, 32...1024),
                                 ("--diversity", diversity, 0...16), ("--examples", examples, 0...100), ("--jobs", jobs, 1...64)] where !range.contains(v) {
            CLI.fail("\(name) must be \(range.lowerBound)…\(range.upperBound) (got \(v))"); throw ExitCode(2)
        }
        // One picture cannot be kept apart from anything: a diversity set has at least two.
        if diversity == 1 { CLI.fail("--diversity must be 0 (none) or 2…16 (got 1)"); throw ExitCode(2) }
        if let s = classSteps, !(1...100_000).contains(s) { CLI.fail("--class-steps must be 1…100000 (got \(s))"); throw ExitCode(2) }
        guard tv >= 0 && tv < 1e6 else { CLI.fail("--tv must be ≥ 0 (got \(tv))"); throw ExitCode(2) }

        // Everything that can be wrong with the arguments is found before any work.
        let model = try CLI.loadModel(modelOptions)
        let lookup = model.classLookup()
        var classList: [(name: String, indices: [Int])] = []
        let defaults = model.labels.isImageNet1k ? Self.defaultClasses : Array(model.labels.names.prefix(8))
        for q in noClasses ? [] : (classes.isEmpty ? defaults : classes) {
            do {
                let sel = try lookup.resolve(q)
                classList.append((sel.isGroup ? sel.description.components(separatedBy: ":")[0] : model.labels.names[sel.indices[0]], sel.indices))
            } catch { CLI.fail("--class \(CLI.describe(error))"); throw ExitCode(2) }
        }
        let attackEntries = try readAttacks(model)
        let chosen = try chooseLayers(model)
        let examplesDB = try openDataset(model)

        var options = GalleryPlan.Options()
        options.layers = chosen
        options.unitSettings = settings(steps: steps, size: size)
        options.classSettings = settings(steps: classSteps ?? steps, size: classSize ?? model.inputSize)
        options.classes = classList
        options.diversity = diversity
        options.neuron = !noNeuron
        options.negative = !noNegative
        // Job hashes carry the model's id: renders of two models never mix in one store.
        options.model = model.spec.id
        options.logits = model.spec.logits
        let plan = GalleryPlan(options)

        let root = URL(fileURLWithPath: out, isDirectory: true)
        var site = GallerySite(root: root, plan: plan, modelLayers: model.layers,
                               modelDescription: "\(model.spec.architecture), weights \((model.spec.weightsFile as NSString).lastPathComponent) (sha256 \(model.spec.weightsSHA256.prefix(16))…)",
                               preprocessing: model.preprocessing, command: shownCommand())
        site.examples = examplesDB
        site.exampleCount = examples
        site.attacks = attackEntries
        do {
            try FileManager.default.createDirectory(at: site.store, withIntermediateDirectories: true)
        } catch { CLI.fail("cannot create \(site.store.path): \(error.localizedDescription)"); throw ExitCode(1) }
        GalleryRenderer.removePartials(store: site.store)

        let missing = plan.jobs.filter { GalleryRenderer.stored($0.id, store: site.store) == nil }
        var unique: [GalleryJob] = []
        for job in missing where !unique.contains(where: { $0.id == job.id }) { unique.append(job) }
        let renderStart = Date()
        var failed: [String] = []
        if !unique.isEmpty {
            failed = GalleryWorkerPool(jobs: unique, workers: jobs, store: site.store, model: modelOptions.workerArguments(model)).run()
        }
        let renderSeconds = Date().timeIntervalSince(renderStart)
        let written = try site.write()
        let links = LinkChecker.check(site: root)
        for p in links.problems { CLI.fail("broken link: \(p)") }
        for f in failed { CLI.fail(f) }

        let summary = Summary(index: written.index, layers: Dictionary(uniqueKeysWithValues: chosen.map { ($0.info.name, $0.channels) }),
                              classes: classList.map(\.name), attacks: attackEntries.count, jobs: plan.jobs.count,
                              rendered: unique.count - failed.count, cached: plan.jobs.count - unique.count, failed: failed,
                              imageSteps: unique.map(\.cost).reduce(0, +), renderSeconds: renderSeconds,
                              seconds: Date().timeIntervalSince(started), pages: written.pages, pagesWritten: written.pagesWritten,
                              examplePicturesMade: written.examplePicturesMade, similarPages: written.similarPages, links: links.links,
                              brokenLinks: links.problems.map(\.description), settings: options.unitSettings)
        try AtomicFile.write(try CLI.jsonEncoder().encode(summary), to: root.appendingPathComponent("gallery.json"))
        FileHandle.standardError.write(Data(String(format: "gallery: %d jobs (%d rendered, %d cached, %d failed), %d pages (%d changed), %d links checked, %.1f s\n",
                                                   plan.jobs.count, summary.rendered, summary.cached, failed.count, written.pages,
                                                   written.pagesWritten, links.links, summary.seconds).utf8))
        if json { try CLI.printJSON(summary) } else { print(written.index) }
        if !failed.isEmpty || !links.problems.isEmpty { throw ExitCode(1) }
    }

    /// The command line for the index page, without the options that do not change the site (so a rerun with
    /// another --jobs or --json rewrites no page).
    func shownCommand() -> String {
        var words = ["vizlab"], arguments = CommandLine.arguments.dropFirst()[...]
        while let a = arguments.popFirst() {
            if a == "--json" || a.hasPrefix("--jobs=") { continue }
            if a == "--jobs" { _ = arguments.popFirst(); continue }
            words.append(a)
        }
        return words.joined(separator: " ")
    }

    func settings(steps: Int, size: Int) -> RenderSettings {
        var s = RenderSettings()
        s.steps = steps; s.size = size; s.seed = seed
        s.regularizers.totalVariation = tv
        return s
    }

    func chooseLayers(_ model: any VisionModel) throws -> [(info: LayerInfo, channels: [Int])] {
        var out: [(info: LayerInfo, channels: [Int])] = []
        for name in (layers ?? model.spec.galleryLayers.joined(separator: ",")).split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            guard !out.contains(where: { $0.info.name == name }) else { CLI.fail("--layers: \(name) is listed twice"); throw ExitCode(2) }
            guard let info = model.layerInfo(named: name) else {
                CLI.fail("--layers: no layer '\(name)' (see `vizlab layers`)"); throw ExitCode(2)
            }
            guard info.shape.count == 3 else {
                CLI.fail("--layers: \(name) has no spatial extent (channels need a picture; use --class for logits)"); throw ExitCode(2)
            }
            let list: [Int]
            if channels == "all" {
                list = Array(0..<info.channels)
            } else if let n = Int(channels) {
                guard n >= 1 else { CLI.fail("--channels must be ≥ 1, 'all' or a list (got \(channels))"); throw ExitCode(2) }
                list = Array(0..<min(n, info.channels))
            } else {
                let parts = channels.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else {
                    CLI.fail("--channels must be N, 'all' or a list such as 3,17,40 (got '\(channels)')"); throw ExitCode(2)
                }
                list = parts.map { $0! }
                if let bad = list.first(where: { $0 < 0 || $0 >= info.channels }) {
                    CLI.fail("--channels: \(bad) is out of range for \(name) (channels 0…\(info.channels - 1))"); throw ExitCode(2)
                }
                if let twice = list.enumerated().first(where: { list[..<$0.offset].contains($0.element) })?.element {
                    CLI.fail("--channels: \(twice) is listed twice"); throw ExitCode(2)
                }
            }
            out.append((info, list))
        }
        guard !out.isEmpty else { CLI.fail("--layers is empty"); throw ExitCode(2) }
        return out
    }

    func openDataset(_ model: any VisionModel) throws -> ExampleIndex? {
        if dataset == "none" { return nil }
        let url = CLI.indexURL(dataset)
        guard FileManager.default.fileExists(atPath: url.path) else {
            if dataset != nil { CLI.fail("--dataset \(url.path): no such file (make one with `vizlab index FOLDER --db \(url.path)`)"); throw ExitCode(2) }
            return nil
        }
        // Read-only: the gallery never changes the user's index.
        let index: ExampleIndex
        do { index = try ExampleIndex(url: url, readOnly: true) } catch { CLI.fail("--dataset \(url.path): \(error)"); throw ExitCode(2) }
        if index.listsStale {
            CLI.fail("--dataset \(url.path): its lists are out of date (an index run was interrupted): run `vizlab index` on the folder again")
            throw ExitCode(2)
        }
        // Dataset examples of one model are never shown for another's channels.
        do { try index.checkModel(model.spec.id) } catch {
            guard dataset != nil else {
                FileHandle.standardError.write(Data("vizlab: not using \(url.path) for dataset examples: \(CLI.describe(error))\n".utf8))
                return nil
            }
            CLI.fail("--dataset \(CLI.describe(error))"); throw ExitCode(2)
        }
        return index
    }

    /// The reports in each folder: NAME.json files that decode as attack reports, with their panels.
    func readAttacks(_ model: any VisionModel) throws -> [GallerySite.Attack] {
        var out: [GallerySite.Attack] = []
        for dir in attacks {
            let url = URL(fileURLWithPath: dir, isDirectory: true)
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: url.path) else {
                CLI.fail("--attacks \(dir): not a readable folder"); throw ExitCode(2)
            }
            var found = 0
            for name in names.sorted() where name.hasSuffix(".json") && name != "summary.json" {
                guard let data = try? Data(contentsOf: url.appendingPathComponent(name)),
                      let r = try? JSONDecoder().decode(AttackReport.self, from: data) else { continue }
                if let m = r.model, m != model.spec.id {
                    CLI.fail("--attacks \(dir)/\(name): an attack on model \(m), not \(model.spec.id)"); throw ExitCode(2)
                }
                let panel = URL(fileURLWithPath: r.panel, relativeTo: url)
                guard FileManager.default.fileExists(atPath: panel.path) else {
                    CLI.fail("--attacks \(dir)/\(name): its panel \(r.panel) is missing"); throw ExitCode(2)
                }
                found += 1
                let top = { (s: [ClassScore]) in s.first.map { String(format: "%@ %.1f%%", $0.name, $0.probability * 100) } ?? "?" }
                let budget = r.epsilon.map { r.budgetNorm == "linf" ? String(format: "ε = %g/255", $0) : String(format: "‖δ‖₂ ≤ %g", $0) } ?? "minimal"
                out.append(GallerySite.Attack(
                    panel: panel,
                    title: "\(URL(fileURLWithPath: r.input).lastPathComponent): \(r.goal.description)",
                    lines: ["\(r.attack), \(budget), \(r.steps) steps, \(String(format: "%.2f", r.seconds)) s",
                            "before: \(top(r.originalTop)); after (saved PNG): \(top(r.adversarialTop))",
                            String(format: "L∞ %d/255, L2 %.3f, RMS %.2f levels", r.distances.linfLevels, r.distances.l2, r.distances.rmsLevels)],
                    success: r.success))
            }
            if found == 0 { CLI.fail("--attacks \(dir): no attack reports (NAME.json from `vizlab attack`) in it"); throw ExitCode(2) }
        }
        return out
    }
}
