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
            return try build(arch, weights: try readWeights(found.url), sha256: sha, file: found.url.path)
        }
        guard exists else {
            throw ModelLoadError("unknown model '\(request.model)': not a file, and not a built-in (\(Zoo.names.joined(separator: ", ")))")
        }
        let url = URL(fileURLWithPath: path)
        if isDir.boolValue || ModelBundle.isBundle(url) {
            if request.arch != nil { throw ModelLoadError("--arch does not apply to a bundle (\(url.lastPathComponent) carries its graph)") }
            return try ModelBundle.load(url, preprocess: request.preprocess)
        }
        let weights = try readWeights(url)
        let arch: Architecture
        if let name = request.arch {
            guard let a = Zoo.architecture(named: name) else {
                throw ModelLoadError("--arch: unknown architecture '\(name)' (built-in: \(Zoo.names.joined(separator: ", ")))")
            }
            arch = a
        } else {
            arch = try recognize(weights, file: url.lastPathComponent)
        }
        try checkPreprocess(request.preprocess, builtIn: arch)
        return try build(arch, weights: weights, sha256: try FileHash.sha256(url), file: url.path)
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

    /// A weight file's tensors: torch `.pth` (zip or legacy) or safetensors.
    public static func readWeights(_ url: URL) throws -> StateDict {
        if url.pathExtension.lowercased() == "safetensors" { return try SafeTensors.load(contentsOf: url) }
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
    struct Entry: Codable { var size: Int; var mtime: Double; var sha256: String }

    public static func sha256(_ url: URL) throws -> String {
        let attrs = try FileManager.default.attributesOfItem(atPath: url.path)
        let size = (attrs[.size] as? NSNumber)?.intValue ?? -1
        let mtime = (attrs[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let store = WeightStore.home.appendingPathComponent("hashes.json")
        var table = (try? JSONDecoder().decode([String: Entry].self, from: Data(contentsOf: store))) ?? [:]
        let key = url.standardizedFileURL.path
        if let e = table[key], e.size == size, e.mtime == mtime { return e.sha256 }
        let sha = try SHA256.hex(ofFile: url)
        table[key] = Entry(size: size, mtime: mtime, sha256: sha)
        if (try? FileManager.default.createDirectory(at: WeightStore.home, withIntermediateDirectories: true)) != nil,
           let data = try? JSONEncoder().encode(table) {
            try? AtomicFile.write(data, to: store)
        }
        return sha
    }
}
