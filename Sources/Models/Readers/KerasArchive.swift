import Engine
import Foundation

/// A Keras 3 `.keras` file: a zip of `config.json` (the layer graph, built by `KerasConfig`), `metadata.json` and
/// `model.weights.h5` (read in memory through libhdf5). A graph equal to a built-in Keras form's takes that form's
/// name and defaults; any other gets defaults from its own layers.
public enum KerasArchive {
    /// Largest archive read into memory.
    static let maxBytes = 8 << 30

    public static func load(_ url: URL, preprocess: Preprocessing.Mode?) throws -> GraphModel {
        let file = url.lastPathComponent
        func fail(_ why: Any) -> ModelLoadError { ModelLoadError("\(file): \(why)") }
        let size = ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? NSNumber)?.intValue ?? 0
        guard size <= maxBytes else { throw fail("\(size) bytes is more than a .keras file vizlab reads (\(maxBytes))") }
        return try load(bytes: [UInt8](try Data(contentsOf: url, options: .alwaysMapped)), name: file, sha256: try FileHash.sha256(url),
                        path: url.path, preprocess: preprocess)
    }

    static func load(bytes: [UInt8], name file: String, sha256 sha: String, path: String, preprocess: Preprocessing.Mode?) throws -> GraphModel {
        func fail(_ why: Any) -> ModelLoadError { ModelLoadError("\(file): \(why)") }
        let zip: ZipArchive
        do { zip = try ZipArchive(bytes) } catch let e as ZipArchive.Malformed {
            throw fail("not a .keras archive (\(e.reason))")
        } catch { throw fail("not a .keras archive (\(error))") }
        let imported: KerasConfig.Imported, weights: KerasHDF5.File
        do {
            imported = try KerasConfig.build(json: Data(try zip.data("config.json", maxBytes: KerasConfig.maxBytes)))
            weights = try KerasHDF5.read(image: Array(try zip.data("model.weights.h5")), name: "model.weights.h5")
        } catch let e as ZipArchive.Malformed { throw fail(e.reason) } catch { throw fail(error) }
        guard weights.layout == .keras3 else { throw fail("model.weights.h5 is not in Keras 3's layout") }
        let state: StateDict
        do { state = try KerasHDF5.stateDict(keras3: weights, layers: imported.layers) } catch { throw fail("model.weights.h5: \(error)") }
        var spec: ModelSpec
        // The same layers (Keras lists them in its own order) as a built-in form: that form, with its defaults.
        let sorted = imported.graph.nodes.sorted { $0.name < $1.name }
        let forms = Zoo.all.filter { !$0.keras.isEmpty }
        if let arch = forms.first(where: { $0.graph.nodes.sorted { $0.name < $1.name } == sorted && $0.inputSize == imported.inputSize }) {
            spec = arch.spec(sha256: sha, file: path)
        } else {
            let spatial = imported.graph.nodes.filter { n in
                if case .activation = n.op { return true }
                if case .add = n.op { return true }
                return false
            }.map(\.name)
            let gallery = spatial.isEmpty ? [] : stride(from: spatial.count - 1, through: 0, by: -max(spatial.count / 5, 1)).prefix(5).reversed().map { spatial[$0] }
            var units = 0
            if let n = imported.graph.node(named: imported.logits), case let .dense(u) = n.op { units = u }
            let labels = units == 1000 || units == 0 ? ImageNetLabels.shared.lines : (0..<units).map { "class \($0)" }
            spec = ModelSpec(architecture: "keras:" + imported.name, weightsSHA256: sha, weightsFile: path, inputSize: imported.inputSize,
                             preprocessing: .keras(preprocess ?? base(imported, forms)?.preprocessing.mode ?? .tf, size: imported.inputSize), labels: labels,
                             logits: imported.logits, embedding: imported.embedding,
                             defaultLayer: gallery.last ?? imported.output, galleryLayers: Array(gallery), blocks: spatial)
        }
        if let p = preprocess, p != spec.preprocessing.mode, spec.architecture.hasPrefix("keras:") == false {
            spec.preprocessing = spec.preprocessing.with(mode: p)
            spec.architecture += "+\(p.rawValue)"
        }
        do {
            return try GraphModel(spec: spec, graph: imported.graph, weights: state.tensors)
        } catch let e as ModelError { throw fail("model.weights.h5 does not fit config.json: \(e)") } catch let e as GraphError { throw fail("config.json: \(e)") }
    }

    /// The built-in Keras form a model was made from (a new head on a `keras.applications` base keeps the base's
    /// layer names): its preprocessing is the model's. Nine in ten of the form's weighted layers must be there.
    static func base(_ imported: KerasConfig.Imported, _ forms: [Architecture]) -> Architecture? {
        let names = Set(imported.layers.map(\.name))
        return forms.max { a, b in
            a.keras.filter { names.contains($0.name) }.count < b.keras.filter { names.contains($0.name) }.count
        }.flatMap { f in
            let weighted = f.keras.filter { !$0.variables.isEmpty }
            return weighted.filter { names.contains($0.name) }.count * 10 >= weighted.count * 9 ? f : nil
        }
    }
}
