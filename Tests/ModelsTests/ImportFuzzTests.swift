import XCTest
import TestSupport
import Engine
@testable import Models

/// Mutation fuzzing of the Keras (libhdf5 through the shim, `.keras` zip + config.json) and ONNX (protobuf, tensors,
/// the op table via a traced forward) importers, seeded with small real files Keras, h5py and onnx wrote
/// (scripts/reference/make_bad_fixtures.py). Every input must import or be refused — no trap, no hang over 5 s.
/// `VIZLAB_FUZZ_ITERATIONS` (default 1500 per seed) sets the count; scripts/fuzz-importers runs 100,000 each and
/// reports peak memory.
final class ImportFuzzTests: XCTestCase {
    static let seeds = WeightStore.home.appendingPathComponent("parity/bad-v2")
    var iterations: Int { Int(ProcessInfo.processInfo.environment["VIZLAB_FUZZ_ITERATIONS"] ?? "") ?? 1500 }

    func seed(_ name: String) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: Self.seeds.appendingPathComponent("DONE").path) else {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("fuzz seeds missing at \(Self.seeds.path)") }
            throw XCTSkip("fuzz seeds missing at \(Self.seeds.path): run scripts/parity-fixtures")
        }
        return [UInt8](try Data(contentsOf: Self.seeds.appendingPathComponent(name)))
    }

    func fuzz(_ name: String, _ load: ([UInt8]) throws -> Void) throws {
        let seed = try self.seed(name)
        try load(seed)  // the seed itself imports
        var rng = TestRNG(seed: UInt64(seed.count) &* 2654435761)
        var loaded = 0, refused = 0, slowest = 0.0, childCrashes = 0, childKills = 0
        let start = Date()
        for _ in 0..<iterations {
            let input = mutate(seed, &rng)
            if let last = ProcessInfo.processInfo.environment["VIZLAB_FUZZ_LAST"] { try Data(input).write(to: URL(fileURLWithPath: last)) }
            let t0 = Date()
            do { try GradMode.withoutGrad { try load(input) }; loaded += 1 } catch {
                refused += 1
                let m = "\(error)"
                if m.contains("libhdf5 crashed") { childCrashes += 1 }
                if m.contains("libhdf5 took over") { childKills += 1 }
            }
            slowest = max(slowest, Date().timeIntervalSince(t0))
        }
        XCTAssertLessThan(slowest, 5, "\(name): an input took \(slowest) s")
        print("fuzz \(name): \(iterations) inputs, \(loaded) imported, \(refused) refused (libhdf5 crashed in its child process on \(childCrashes), hung and was stopped on \(childKills)), 0 crashes of vizlab, slowest \(String(format: "%.4f", slowest)) s, \(String(format: "%.0f", Date().timeIntervalSince(start))) s in all")
    }

    func testKerasHDF5() throws {
        for name in ["tiny.h5", "tiny.weights.h5"] {
            try fuzz(name) { bytes in
                let file = try KerasHDF5.read(image: bytes, name: name)
                let layers = KerasApplications.mobilenetV2.keras
                _ = try? (file.layout == .keras3 ? KerasHDF5.stateDict(keras3: file, layers: layers) : KerasHDF5.stateDict(named: file, layers: layers))
            }
        }
    }

    func testKerasArchive() throws {
        try fuzz("tiny.keras") { bytes in
            _ = try KerasArchive.load(bytes: bytes, name: "tiny.keras", sha256: "fuzz", path: "tiny.keras", preprocess: nil)
        }
    }

    func testONNX() throws {
        try fuzz("tiny.onnx") { bytes in
            let g = try ONNXGraph(data: Data(bytes), folder: nil)
            _ = try ONNXModel(graph: g, file: URL(fileURLWithPath: "tiny.onnx"), sha256: "fuzz", preprocess: nil)
        }
    }
}
