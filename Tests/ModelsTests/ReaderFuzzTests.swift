import XCTest
import TestSupport
import Engine
@testable import Models

/// Mutation fuzzing of the weight readers and the bundle loader, seeded with real files: bit flips, byte runs,
/// truncations, inserted bytes and huge 8-byte length fields. Every input must be loaded or refused with an error
/// — no trap, no hang, no huge allocation. `VIZLAB_FUZZ_ITERATIONS` (default 1500 per seed) sets the count.
final class ReaderFuzzTests: XCTestCase {
    let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("checkpoint")
    var iterations: Int { Int(ProcessInfo.processInfo.environment["VIZLAB_FUZZ_ITERATIONS"] ?? "") ?? 1500 }

    /// Runs `load` on mutations of `seed`; returns (loaded, refused, slowest seconds).
    func fuzz(_ seed: [UInt8], name: String, _ load: (URL) throws -> Void) throws -> (Int, Int, Double) {
        var rng = TestRNG(seed: UInt64(seed.count))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vizlab-fuzz-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent(name)
        var loaded = 0, refused = 0, slowest = 0.0
        for _ in 0..<iterations {
            try Data(mutate(seed, &rng)).write(to: url)
            let t0 = Date()
            do { try load(url); loaded += 1 } catch { refused += 1 }
            slowest = max(slowest, Date().timeIntervalSince(t0))
        }
        XCTAssertLessThan(slowest, 5, "\(name): an input took \(slowest) s")
        return (loaded, refused, slowest)
    }

    func testTorchAndSafetensorsReaders() throws {
        for file in ["legacy.pth", "zip.pt", "eval_legacy.pth", "weights.safetensors"] {
            let seed = [UInt8](try Data(contentsOf: fixtures.appendingPathComponent(file)))
            let r = try fuzz(seed, name: file) { _ = try ModelStore.readWeights($0) }
            print("fuzz \(file): \(iterations) inputs, \(r.0) loaded, \(r.1) refused, slowest \(String(format: "%.4f", r.2)) s")
        }
    }

    func testBundleManifestAndWeights() throws {
        // A tiny model as a bundle; its model.json and weights.safetensors are fuzzed in turn.
        var g = GraphBuilder()
        g.conv("conv", filters: 4, kernel: 3, stride: 2, padding: .same, bias: true)
        g.activation("relu", .relu)
        g.add("pool", .globalAveragePool)
        g.dense("fc", units: 3)
        let graph = g.build()
        let spec = ModelSpec(architecture: "graph", weightsSHA256: "", weightsFile: "", inputSize: 32, preprocessing: .lite(crop: 32),
                             labels: ["a", "b", "c"], logits: "fc", embedding: "pool", defaultLayer: "relu", galleryLayers: ["relu"], blocks: ["relu"])
        var rng = TestRNG(seed: 5)
        let shapes = try ShapeInference.expectedParameterShapes(of: graph, height: 32, width: 32)
        let model = try GraphModel(spec: spec, graph: graph, weights: shapes.mapValues { rng.tensor($0, grad: false) })
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vizlab-fuzz-bundle-\(getpid()).vizlab")
        try ModelBundle.write(model, to: dir)
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertEqual(try ModelBundle.load(dir).layers.map(\.name), model.layers.map(\.name))
        for part in ["model.json", "weights.safetensors"] {
            let original = try Data(contentsOf: dir.appendingPathComponent(part))
            let r = try fuzz([UInt8](original), name: part) { mutated in
                try FileManager.default.removeItem(at: dir.appendingPathComponent(part))
                try FileManager.default.copyItem(at: mutated, to: dir.appendingPathComponent(part))
                _ = try ModelBundle.load(dir)
            }
            try original.write(to: dir.appendingPathComponent(part))
            print("fuzz bundle \(part): \(iterations) inputs, \(r.0) loaded, \(r.1) refused, slowest \(String(format: "%.4f", r.2)) s")
        }
    }
}
