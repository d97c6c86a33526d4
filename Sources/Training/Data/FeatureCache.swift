import Engine
import Foundation
import Models

/// The frozen base's output per image, on disk: one file per image named by the image's SHA-256, in a folder per
/// (model id, layer, preprocessing) — so a later run, or another mode on the same data, reuses them. Entries are
/// written by rename (a killed run leaves none half-written) and checked for length when read.
public struct FeatureCache: Sendable {
    public let folder: URL
    public let dimension: Int

    public init(root: URL, modelID: String, layer: String, preprocessing: Preprocessing, dimension: Int) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        struct Key: Codable { var model: String; var layer: String; var preprocessing: Preprocessing; var dimension: Int }
        let key = Key(model: modelID, layer: layer, preprocessing: preprocessing, dimension: dimension)
        let keyData = try encoder.encode(key)
        let name = "\(modelID.replacingOccurrences(of: "@", with: "-"))-\(layer)-\(SHA256.hex(of: keyData).prefix(12))"
            .replacingOccurrences(of: "/", with: "_")
        folder = root.appendingPathComponent(name)
        self.dimension = dimension
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let keyFile = folder.appendingPathComponent("key.json")
        if !FileManager.default.fileExists(atPath: keyFile.path) { try AtomicFile.write(keyData, to: keyFile) }
    }

    private func file(_ sha: String) -> URL { folder.appendingPathComponent("\(sha).f32") }

    public func get(_ sha: String) -> [Float]? {
        guard let data = try? Data(contentsOf: file(sha)), data.count == dimension * 4 else { return nil }
        return data.withUnsafeBytes { raw in (0..<dimension).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) } }
    }

    public func put(_ sha: String, _ values: ArraySlice<Float>) throws {
        precondition(values.count == dimension)
        var data = Data(capacity: dimension * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        let temp = folder.appendingPathComponent(".\(sha).tmp-\(getpid())")
        try data.write(to: temp)
        guard rename(temp.path, file(sha).path) == 0 else {
            try? FileManager.default.removeItem(at: temp)
            throw TrainingError("\(folder.path): cannot write the feature cache")
        }
    }
}
