import Engine
import Foundation
import Models

/// A run's state after its last finished epoch, in `OUT/state/`: `state.json` (config, data digest, position, log,
/// best epoch) naming the epoch's three safetensors files (current weights, best weights, optimizer moments).
/// The tensors are written first under the epoch's own names, then `state.json` by rename, then older files are
/// removed — a kill at any point leaves the previous epoch's state or this one, whole.
struct StateStore {
    let folder: URL
    let config: TrainConfig
    let dataDigest: String

    struct State: Codable {
        var stage: Int
        var epochsDone: Int
        var log: [EpochLog]
        var bestLoss: Double
        var bestStage: String
        var bestEpoch: Int
        var sinceBest: Int
    }

    struct File: Codable {
        var format = "vizlab-train-state"
        var config: TrainConfig
        var data: String
        var state: State
        var files: [String]
    }

    struct Loaded {
        var state: State
        var current: [String: [Float]]
        var best: [String: [Float]]
        var optimizer: [String: [Float]]
    }

    func save(_ state: State, current: [(name: String, tensor: Tensor)], best: [String: [Float]], optimizer: [String: [Float]]) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: folder, withIntermediateDirectories: true)
        let tag = String(format: "%d-%04d", state.stage, state.epochsDone)
        func write(_ name: String, _ values: [String: [Float]], shapes: [String: [Int]] = [:]) throws -> String {
            var dict = StateDict()
            for k in values.keys.sorted() { dict.set(k, Tensor(shape: shapes[k] ?? [values[k]!.count], data: values[k]!)) }
            let file = "\(name)-\(tag).safetensors"
            try SafeTensors.save(dict, to: folder.appendingPathComponent(file))
            try AtomicFile.flush(folder.appendingPathComponent(file))
            return file
        }
        let shapes = Dictionary(uniqueKeysWithValues: current.map { ($0.name, $0.tensor.shape) })
        let files = [try write("current", Dictionary(uniqueKeysWithValues: current.map { ($0.name, $0.tensor.data) }), shapes: shapes),
                     try write("best", best, shapes: shapes),
                     try write("optimizer", optimizer)]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(File(config: config, data: dataDigest, state: state, files: files)),
                             to: folder.appendingPathComponent("state.json"))
        for f in (try? fm.contentsOfDirectory(atPath: folder.path)) ?? [] where f.hasSuffix(".safetensors") && !files.contains(f) {
            try? fm.removeItem(at: folder.appendingPathComponent(f))
        }
    }

    func load() throws -> Loaded? {
        let url = folder.appendingPathComponent("state.json")
        guard let data = try? Data(contentsOf: url) else { return nil }
        let file: File
        do { file = try JSONDecoder().decode(File.self, from: data) } catch { throw TrainingError("\(url.path): not a vizlab training state (\(error))") }
        guard file.config == config else {
            throw TrainingError("--resume: \(url.path) was made with other options (\(Self.differences(file.config, config))); rerun without --resume to start over")
        }
        guard file.data == dataDigest else { throw TrainingError("--resume: the data folder changed since \(url.path) was written") }
        func read(_ name: String) throws -> [String: [Float]] {
            do { return try SafeTensors.load(contentsOf: folder.appendingPathComponent(name)).tensors.mapValues(\.data) } catch {
                throw TrainingError("\(folder.appendingPathComponent(name).path): \(error)")
            }
        }
        return Loaded(state: file.state, current: try read(file.files[0]), best: try read(file.files[1]), optimizer: try read(file.files[2]))
    }

    static func differences(_ a: TrainConfig, _ b: TrainConfig) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        guard let da = try? JSONSerialization.jsonObject(with: enc.encode(a)) as? [String: Any],
              let db = try? JSONSerialization.jsonObject(with: enc.encode(b)) as? [String: Any] else { return "?" }
        let keys = Set(da.keys).union(db.keys).sorted().filter { k in
            !(NSDictionary(dictionary: [k: da[k] ?? NSNull()]).isEqual(to: [k: db[k] ?? NSNull()]))
        }
        return keys.joined(separator: ", ")
    }
}
