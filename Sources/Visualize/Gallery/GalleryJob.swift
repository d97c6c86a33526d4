import Engine
import Foundation

/// One render the gallery needs: a batch of pictures, each with its own objective, described completely so that
/// the hash of the description names the result (`renders/<id>/`). Workers render single-threaded, so the same
/// job gives the same bytes whatever `--jobs` is.
public struct GalleryJob: Codable, Sendable {
    public enum Kind: String, Codable, Sendable {
        /// Maximize each channel's spatial mean (the thumbnail), minimize it (negative), maximize the centre neuron.
        case channel, negative, neuron
        /// One channel, several pictures kept apart by Lucid's diversity term.
        case diversity
        /// Ideal images of classes (a class's logit; a group's log Σ exp of its logits).
        case classes
    }

    /// Bumped whenever rendering changes what a job produces, so old renders stop matching.
    public static let rendererVersion = 1

    public var kind: Kind
    /// The channels' layer (the model's logits node for classes).
    public var layer: String
    /// One entry per picture: [channel], or a class selection's indices.
    public var units: [[Int]]
    /// One display name per picture (class names; channel numbers otherwise).
    public var names: [String]
    public var settings: RenderSettings
    public var diversityWeight: Float = 0
    public var diversityLayer: String? = nil
    public var model: String
    public var renderer = GalleryJob.rendererVersion

    public init(kind: Kind, layer: String, units: [[Int]], names: [String], settings: RenderSettings, model: String,
                diversityWeight: Float = 0, diversityLayer: String? = nil) {
        self.kind = kind; self.layer = layer; self.units = units; self.names = names; self.model = model
        self.diversityWeight = diversityWeight; self.diversityLayer = diversityLayer
        self.settings = settings
        self.settings.batch = units.count
    }

    /// First 20 hex digits of the SHA-256 of the canonical (sorted-keys) JSON.
    public var id: String { String(SHA256.hex(of: canonicalJSON).prefix(20)) }

    public var canonicalJSON: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try! encoder.encode(self)
    }

    /// Work in image-steps, for progress and ETA.
    public var cost: Int { units.count * settings.steps }

    /// What each picture maximizes during the render.
    public func objectives() -> [Objective] {
        units.enumerated().map { i, unit in
            switch kind {
            case .channel, .diversity: .channel(layer, unit[0])
            case .negative: -Objective.channel(layer, unit[0])
            case .neuron: .neuron(layer, unit[0])
            case .classes: unit.count > 1 ? .classGroupLogit(unit, name: names[i], logits: layer)
                                          : Objective.classLogit(unit[0], logits: layer).named("logit \(names[i]) (\(unit[0]))")
            }
        }
    }

    /// What the page reports for each picture, measured on the saved PNG: the unit's own value (for a negative
    /// render the channel's mean, which it drove down), or the class logit.
    public func measures() -> [Objective] {
        units.enumerated().map { i, unit in
            switch kind {
            case .negative: .channel(layer, unit[0])
            default: objectives()[i]
            }
        }
    }

    /// Batch-wide terms: the diversity penalty.
    public func extraObjective() -> Objective? {
        guard kind == .diversity, let layer = diversityLayer, diversityWeight > 0 else { return nil }
        return diversityWeight * Objective.diversity(layer)
    }
}

/// A finished job as stored in `renders/<id>/job.json` beside its pictures `0.png`, `1.png`, ….
public struct GalleryJobResult: Codable, Sendable {
    public struct Picture: Codable, Sendable {
        public var file: String
        public var name: String
        /// The objective (see `GalleryJob.measures`) on the saved PNG, re-read.
        public var value: Float
        public var classProbability: Float?
        public var top1: ClassScore
        public var finalObjectiveDuringOptimization: Float
    }
    public var id: String
    public var job: GalleryJob
    public var objective: String
    public var pictures: [Picture]
    public var seconds: Double
    public var phaseSeconds: [String: Double]
}

public enum GalleryRenderer {
    /// Renders `job` and stores it as `store/<id>/` — written under a temporary name and renamed, so a killed
    /// worker leaves only a `.partial-` folder that the next run removes. `progress(step)` after every step.
    @discardableResult
    public static func run(_ job: GalleryJob, model: any VisionModel, store: URL,
                           progress: (Int) -> Void = { _ in }) throws -> GalleryJobResult {
        let id = job.id
        let final = store.appendingPathComponent(id, isDirectory: true)
        let temp = store.appendingPathComponent(".partial-\(id)-\(getpid())", isDirectory: true)
        try? FileManager.default.removeItem(at: temp)
        try FileManager.default.createDirectory(at: temp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: temp) }

        var objective = Objective.perImage(job.objectives())
        if let extra = job.extraObjective() { objective = objective + extra }
        let start = Date()
        let rendered = render(model, objective, job.settings) { step, _ in progress(step + 1) }
        let seconds = Date().timeIntervalSince(start)
        let measures = job.measures()
        var pictures: [GalleryJobResult.Picture] = []
        for i in 0..<job.units.count {
            let url = temp.appendingPathComponent("\(i).png")
            try PNGEncoder.write(rgbImage(fromUnitImage: rendered.image, index: i), to: url)
            let m = try measureSavedImage(model, at: url, objective: measures[i], classes: job.kind == .classes ? job.units[i] : nil)
            pictures.append(.init(file: "\(i).png", name: job.names[i], value: m.value, classProbability: m.classProbability,
                                  top1: m.top5[0], finalObjectiveDuringOptimization: rendered.history.last ?? 0))
        }
        let result = GalleryJobResult(id: id, job: job, objective: objective.description, pictures: pictures,
                                      seconds: seconds, phaseSeconds: rendered.phaseSeconds)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try AtomicFile.write(encoder.encode(result), to: temp.appendingPathComponent("job.json"))
        try AtomicFile.flush(temp)
        if FileManager.default.fileExists(atPath: final.path) && Self.stored(id, store: store) == nil {
            try? FileManager.default.removeItem(at: final)  // an incomplete copy (a picture was deleted)
        }
        if rename(temp.path, final.path) != 0 {
            // Another worker finished the same job first (or a stale copy is there): keep the one in place.
            guard FileManager.default.fileExists(atPath: final.appendingPathComponent("job.json").path) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: final.path])
            }
        }
        return result
    }

    /// The stored result of `id`, or nil when it is missing, is not the job asked for, or any of its pictures is gone
    /// or is not a whole PNG (then it is rendered again).
    public static func stored(_ id: String, store: URL) -> GalleryJobResult? {
        let dir = store.appendingPathComponent(id)
        guard let data = try? Data(contentsOf: dir.appendingPathComponent("job.json")) else { return nil }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        guard let result = try? decoder.decode(GalleryJobResult.self, from: data), result.job.id == id,
              result.pictures.allSatisfy({ isWholePNG(dir.appendingPathComponent($0.file)) }) else { return nil }
        return result
    }

    /// The PNG signature at the start and the IEND chunk at the end: a truncated or overwritten file fails.
    static func isWholePNG(_ url: URL) -> Bool {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return false }
        defer { try? handle.close() }
        guard let size = try? handle.seekToEnd(), size >= 8 + 12 + 12,
              (try? handle.seek(toOffset: 0)) != nil, let head = try? handle.read(upToCount: 8),
              (try? handle.seek(toOffset: size - 12)) != nil, let tail = try? handle.read(upToCount: 12) else { return false }
        return ImageDecoder.sniff(head) == .png
            && Array(tail) == [0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82]  // IEND: length 0, type, CRC
    }

    /// Removes what killed workers left behind (`.partial-<id>-<pid>` of a process that is gone), never the
    /// folder of a worker that is still writing — another `vizlab gallery` may be running on the same site.
    public static func removePartials(store: URL) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: store.path)) ?? []
        for n in names where n.hasPrefix(".partial-") {
            if let pid = n.split(separator: "-").last.flatMap({ pid_t($0) }), pid > 0, kill(pid, 0) == 0 || errno == EPERM { continue }
            try? FileManager.default.removeItem(at: store.appendingPathComponent(n))
        }
    }
}
