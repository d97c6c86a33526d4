import Engine
import Foundation

/// vizlab's own model format: a folder `NAME.vizlab/` holding `model.json` (format, spec, graph), `weights.safetensors`
/// and `labels.txt` (one class per line). It carries its graph, so it needs no built-in architecture: what
/// `vizlab models export` and a later `vizlab train` write, and what `--model` reads.
public enum ModelBundle {
    public static let format = "vizlab-model"
    public static let version = 1
    /// model.json larger than this is refused before it is read.
    static let maxManifestBytes = 64 << 20

    struct Manifest: Codable {
        var format: String
        var version: Int
        var spec: ModelSpec
        var graph: Graph
    }

    public static func isBundle(_ url: URL) -> Bool {
        url.pathExtension == "vizlab" || FileManager.default.fileExists(atPath: url.appendingPathComponent("model.json").path)
    }

    public static func load(_ url: URL, preprocess: Preprocessing.Mode? = nil) throws -> GraphModel {
        let name = url.lastPathComponent
        func fail(_ reason: String) -> ModelLoadError { ModelLoadError("\(name): \(reason)") }
        let manifestURL = url.appendingPathComponent("model.json")
        let weightsURL = url.appendingPathComponent("weights.safetensors")
        let labelsURL = url.appendingPathComponent("labels.txt")
        for f in [manifestURL, weightsURL, labelsURL] where !FileManager.default.fileExists(atPath: f.path) {
            throw fail("not a vizlab model bundle (no \(f.lastPathComponent))")
        }
        let size = ((try? FileManager.default.attributesOfItem(atPath: manifestURL.path))?[.size] as? NSNumber)?.intValue ?? 0
        guard size <= maxManifestBytes else { throw fail("model.json is \(size) bytes (more than \(maxManifestBytes))") }
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: manifestURL)) } catch {
            throw fail("model.json is not a vizlab model manifest (\(error))")
        }
        guard manifest.format == format, manifest.version == version else {
            throw fail("model.json is format '\(manifest.format)' version \(manifest.version); this vizlab reads '\(format)' version \(version)")
        }
        let labels = try String(contentsOf: labelsURL, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        var spec = manifest.spec
        spec.labels = labels
        spec.weightsSHA256 = try FileHash.sha256(weightsURL)
        spec.weightsFile = url.path
        if let p = preprocess, p != spec.preprocessing.mode {
            // Another normalization is another model as far as renders, indexes and galleries are concerned.
            spec.preprocessing = spec.preprocessing.with(mode: p)
            spec.architecture += "+\(p.rawValue)"
        }
        do {
            return try GraphModel(spec: spec, graph: manifest.graph, weights: try SafeTensors.load(contentsOf: weightsURL).tensors)
        } catch let e as ModelError {
            throw fail("weights.safetensors does not fit its graph: \(e)")
        } catch let e as GraphError {
            throw fail("model.json: \(e)")
        }
    }

    /// Writes `model` as a bundle: into a temporary folder beside `url`, renamed into place when complete.
    public static func write(_ model: GraphModel, to url: URL) throws {
        let fm = FileManager.default
        let parent = url.deletingLastPathComponent()
        try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        let temp = parent.appendingPathComponent(".\(url.lastPathComponent).partial-\(getpid())")
        try? fm.removeItem(at: temp)
        try fm.createDirectory(at: temp, withIntermediateDirectories: true)
        do {
            var dict = StateDict()
            for (name, t) in model.namedParameters { dict.set(name, t) }
            try SafeTensors.save(dict, to: temp.appendingPathComponent("weights.safetensors"))
            var spec = model.spec
            spec.labels = []
            spec.weightsFile = ""
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try AtomicFile.write(try encoder.encode(Manifest(format: format, version: version, spec: spec, graph: model.graph)),
                                 to: temp.appendingPathComponent("model.json"))
            try AtomicFile.write(Data((model.spec.labels.joined(separator: "\n") + "\n").utf8), to: temp.appendingPathComponent("labels.txt"))
            try AtomicFile.flush(temp)
            if fm.fileExists(atPath: url.path) { try fm.removeItem(at: url) }
            try fm.moveItem(at: temp, to: url)
        } catch {
            try? fm.removeItem(at: temp)
            throw error
        }
    }
}
