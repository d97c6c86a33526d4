import Engine
import Foundation

/// What the user asked for on the command line: `--model NAME|PATH`, `--arch`, `--preprocess`.
public struct ModelRequest: Sendable, Equatable {
    public var model: String
    public var arch: String?
    public var preprocess: Preprocessing.Mode?

    public init(model: String? = nil, arch: String? = nil, preprocess: Preprocessing.Mode? = nil) {
        let env = ProcessInfo.processInfo.environment["VIZLAB_MODEL"]
        self.model = model ?? (env?.isEmpty == false ? env! : Zoo.defaultName)
        self.arch = arch; self.preprocess = preprocess
    }
}

/// A model that cannot be loaded, in one line.
public struct ModelLoadError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Finds weights where vizlab and the frameworks keep them, recognises the architecture of a weight file, and
/// loads any model by name or path.
public enum ModelStore {
    /// torchvision's cache: `$TORCH_HOME/hub/checkpoints`, else `$XDG_CACHE_HOME/torch/…`, else `~/.cache/torch/…`.
    public static var torchHub: URL {
        let env = ProcessInfo.processInfo.environment
        if let t = env["TORCH_HOME"], !t.isEmpty { return URL(fileURLWithPath: t).appendingPathComponent("hub/checkpoints") }
        let cache = env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return cache.appendingPathComponent("torch/hub/checkpoints")
    }

    /// Keras' cache: `$KERAS_HOME/models`, else `~/.keras/models`.
    public static var kerasModels: URL {
        if let k = ProcessInfo.processInfo.environment["KERAS_HOME"], !k.isEmpty { return URL(fileURLWithPath: k).appendingPathComponent("models") }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".keras/models")
    }

    public static func directory(_ cache: KnownFile.Cache) -> URL {
        switch cache {
        case .vizlab: return WeightStore.home
        case .torchHub: return torchHub
        case .keras: return kerasModels
        }
    }

    /// Every place an architecture's official files may be, and whether each is there.
    public static func candidates(_ arch: Architecture) -> [(file: KnownFile, url: URL, present: Bool)] {
        arch.files.flatMap { f -> [(KnownFile, URL, Bool)] in
            var dirs = [directory(f.cache)]
            if f.cache != .vizlab { dirs.append(WeightStore.home) }
            return dirs.map { d in
                let u = d.appendingPathComponent(f.fileName)
                return (f, u, FileManager.default.fileExists(atPath: u.path))
            }
        }
    }

    /// Loads `--model` (a built-in name, a weight file or a bundle), checking everything before it returns.
    public static func load(_ request: ModelRequest) throws -> any VisionModel {
        let fm = FileManager.default
        let path = (request.model as NSString).expandingTildeInPath
        var isDir: ObjCBool = false
        let exists = fm.fileExists(atPath: path, isDirectory: &isDir)
        if let arch = Zoo.architecture(named: request.model), !exists {
            if let a = request.arch, a.lowercased() != arch.name {
                throw ModelLoadError("--arch \(a) conflicts with --model \(arch.name) (give --arch with a weight file)")
            }
            try checkPreprocess(request.preprocess, builtIn: arch)
            let places = candidates(arch)
            guard let found = places.first(where: \.present) else {
                let fetch = arch.files[0].cache == .vizlab ? "run `\(WeightStore.fixCommand)`"
                    : "put torchvision's \(arch.files[0].fileName) there (or pass a weight file's path to --model)"
                throw ModelLoadError("no weights for \(arch.name): looked for \(places.map(\.url.path).joined(separator: ", ")) — \(fetch)")
            }
            let sha = try FileHash.sha256(found.url)
            guard sha.hasPrefix(found.file.sha256) else {
                throw ModelLoadError("weights at \(found.url.path) fail the sha256 check (got \(sha.prefix(16))…, expected \(found.file.sha256.prefix(16))…) — delete the file and fetch it again, or pass another file's path to --model")
            }
            if let md5 = found.file.md5 {
                let got = try FileHash.md5(found.url)
                guard got == md5 else {
                    throw ModelLoadError("weights at \(found.url.path) fail \(found.file.source)'s md5 check (got \(got), expected \(md5)) — delete the file and run `vizlab models fetch \(arch.name)`, or pass another file's path to --model")
                }
            }
            return try build(arch, weights: try readWeights(found.url, arch: arch), sha256: sha, file: found.url.path)
        }
        guard exists else {
            throw ModelLoadError("unknown model '\(request.model)': not a file, and not a built-in (\(Zoo.names.joined(separator: ", ")))")
        }
        let url = URL(fileURLWithPath: path)
        if isDir.boolValue || ModelBundle.isBundle(url) {
            if request.arch != nil { throw ModelLoadError("--arch does not apply to a bundle (\(url.lastPathComponent) carries its graph)") }
            return try ModelBundle.load(url, preprocess: request.preprocess)
        }
        var named: Architecture?
        if let name = request.arch {
            guard let a = Zoo.architecture(named: name) else {
                throw ModelLoadError("--arch: unknown architecture '\(name)' (built-in: \(Zoo.names.joined(separator: ", ")))")
            }
            named = a
        }
        switch url.pathExtension.lowercased() {
        case "keras":
            if request.arch != nil { throw ModelLoadError("--arch does not apply to a .keras file (\(url.lastPathComponent) carries its graph)") }
            return try KerasArchive.load(url, preprocess: request.preprocess)
        case "onnx":
            if request.arch != nil { throw ModelLoadError("--arch does not apply to an ONNX file (\(url.lastPathComponent) carries its graph)") }
            return try ONNXImport.load(url, preprocess: request.preprocess)
        default: break
        }
        let (arch, weights) = try readAndRecognize(url, arch: named)
        try checkPreprocess(request.preprocess, builtIn: arch)
        return try build(arch, weights: weights, sha256: try FileHash.sha256(url), file: url.path)
    }

    static func isKerasHDF5(_ url: URL) -> Bool { ["h5", "hdf5"].contains(url.pathExtension.lowercased()) }

    /// A weight file's tensors and the architecture they fit (`arch` when given, else recognised). A Keras 3
    /// `.weights.h5` holds no names: it is matched against the Keras forms' layer lists.
    static func readAndRecognize(_ url: URL, arch: Architecture?) throws -> (Architecture, StateDict) {
        guard isKerasHDF5(url) else {
            let w = try readWeights(url)
            return (try arch ?? recognize(w, file: url.lastPathComponent), w)
        }
        let file = try readKeras(url)
        let kind = file.layout == .keras3 ? "Keras 3 .weights.h5: layers by number, no names" : "\(file.layout.rawValue) weights"
        let candidates = arch.map { [$0] } ?? Zoo.all.filter { !$0.keras.isEmpty }
        // The error worth showing is the closest form's: the most layer names (or, unnamed, layer counts) in common.
        let fileNames = Set(file.layers.filter { !$0.weights.isEmpty }.map(\.name))
        func closeness(_ a: Architecture) -> Int {
            let weighted = a.keras.filter { !$0.variables.isEmpty }
            return file.layout == .keras3 ? -abs(weighted.count - fileNames.count) : weighted.filter { fileNames.contains($0.name) }.count
        }
        var first: (score: Int, error: Error)?
        for a in candidates {
            guard !a.keras.isEmpty else {
                throw ModelLoadError("\(url.lastPathComponent) holds Keras weights: --arch \(a.name) is not a Keras form (\(Zoo.all.filter { !$0.keras.isEmpty }.map(\.name).joined(separator: ", ")))")
            }
            do {
                let w = try file.layout == .keras3 ? KerasHDF5.stateDict(keras3: file, layers: a.keras) : KerasHDF5.stateDict(named: file, layers: a.keras)
                _ = try ShapeInference.layers(of: a.graph, height: a.inputSize, width: a.inputSize, parameterShapes: w.tensors.mapValues(\.shape))
                return (a, w)
            } catch {
                if first == nil || closeness(a) > first!.score { first = (closeness(a), error) }
            }
        }
        throw ModelLoadError("\(url.lastPathComponent) (\(kind)) fits no Keras form (\(candidates.map(\.name).joined(separator: ", "))): \(first.map { "\($0.error)" } ?? "") — give its architecture with --arch, or use the .keras file")
    }

    static func readKeras(_ url: URL) throws -> KerasHDF5.File {
        do { return try KerasHDF5.read(path: url.path) } catch { throw ModelLoadError("\(url.lastPathComponent): \(error)") }
    }



    /// `--preprocess` applies to imported graphs; a built-in is fed as its framework feeds it.
    static func checkPreprocess(_ mode: Preprocessing.Mode?, builtIn arch: Architecture) throws {
        if let m = mode, m != arch.preprocessing.mode {
            throw ModelLoadError("--preprocess \(m.rawValue) conflicts with \(arch.name), which its framework preprocesses as '\(arch.preprocessing.mode.rawValue)' (--preprocess is for imported graphs)")
        }
    }

    static func build(_ arch: Architecture, weights: StateDict, sha256: String, file: String) throws -> GraphModel {
        do {
            return try GraphModel(spec: arch.spec(sha256: sha256, file: file), graph: arch.graph, weights: weights.tensors)
        } catch let e as ModelError {
            throw ModelLoadError("\((file as NSString).lastPathComponent) does not fit \(arch.name): \(e)")
        }
    }

    /// A weight file's tensors: torch `.pth` (zip or legacy), safetensors, or a named Keras HDF5 file (a Keras 3
    /// `.weights.h5` needs `arch`).
    public static func readWeights(_ url: URL, arch: Architecture? = nil) throws -> StateDict {
        if url.pathExtension.lowercased() == "safetensors" { return try SafeTensors.load(contentsOf: url) }
        if isKerasHDF5(url) { return try readAndRecognize(url, arch: arch).1 }
        return try TorchCheckpoint.load(contentsOf: url)
    }

    /// The built-in architecture whose every parameter the file has with the right shape; otherwise the error of
    /// the closest one (the most of its tensors present), naming the tensor that failed.
    public static func recognize(_ weights: StateDict, file: String) throws -> Architecture {
        let shapes = weights.tensors.mapValues(\.shape)
        var closest: (arch: Architecture, present: Int, error: Error)?
        for arch in Zoo.all {
            do {
                _ = try ShapeInference.layers(of: arch.graph, height: arch.inputSize, width: arch.inputSize, parameterShapes: shapes)
                // Every tensor of the file is used (BN's step counter aside): a larger network is not this one.
                let used = Set(arch.graph.parameterNames)
                if let extra = weights.keys.first(where: { !used.contains($0) && !$0.hasSuffix("num_batches_tracked") }) {
                    throw ModelLoadError("tensor '\(extra)' is not part of \(arch.name)")
                }
                return arch
            } catch {
                let present = arch.graph.parameterNames.filter { shapes[$0] != nil }.count
                if closest == nil || present > closest!.present { closest = (arch, present, error) }
            }
        }
        let detail = closest.map { c in
            "closest is \(c.arch.name) (\(c.present) of \(c.arch.graph.parameterNames.count) tensors present): \(c.error)"
        } ?? ""
        throw ModelLoadError("\(file) fits no built-in architecture (\(Zoo.names.joined(separator: ", "))); \(detail) — name one with --arch")
    }
}

/// SHA-256 of weight files, remembered by path, size and modification time in `$VIZLAB_HOME/hashes.json`
/// (hashing VGG's 528 MB on every command would cost seconds).
public enum FileHash {
    struct Entry: Codable { var size: Int; var mtime: Double; var sha256: String; var md5: String? }

    public static func sha256(_ url: URL) throws -> String { try hashes(url, md5: false).sha256 }

    /// Keras publishes MD5s; computed on first use and remembered beside the SHA-256.
    public static func md5(_ url: URL) throws -> String { try hashes(url, md5: true).md5! }

    static func hashes(_ url: URL, md5 wantMD5: Bool) throws -> Entry {
        // Keyed by what the path points at: a symlink's own size and time say nothing of its target.
        let attrs = try FileManager.default.attributesOfItem(atPath: url.resolvingSymlinksInPath().path)
        let size = (attrs[.size] as? NSNumber)?.intValue ?? -1
        let mtime = (attrs[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let store = WeightStore.home.appendingPathComponent("hashes.json")
        var table = (try? JSONDecoder().decode([String: Entry].self, from: Data(contentsOf: store))) ?? [:]
        let key = url.standardizedFileURL.path
        var entry: Entry
        if let e = table[key], e.size == size, e.mtime == mtime {
            if !wantMD5 || e.md5 != nil { return e }
            entry = e
        } else {
            entry = Entry(size: size, mtime: mtime, sha256: try SHA256.hex(ofFile: url), md5: nil)
        }
        if wantMD5 { entry.md5 = try MD5.hex(ofFile: url) }
        table[key] = entry
        if (try? FileManager.default.createDirectory(at: WeightStore.home, withIntermediateDirectories: true)) != nil,
           let data = try? JSONEncoder().encode(table) {
            try? AtomicFile.write(data, to: store)
        }
        return entry
    }
}
