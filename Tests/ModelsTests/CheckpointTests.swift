import Foundation
import XCTest
import Engine
@testable import Models

/// Checkpoint readers against fixtures written by scripts/make_checkpoint_fixtures.py (Python's pickle, mimicking
/// torch.save's layouts; expected values computed there) and against the real weight file.
final class CheckpointTests: XCTestCase {
    let dir = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("checkpoint")

    func expected() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("expected.json"))) as! [String: Any]
    }

    func assertMatchesExpected(_ dict: StateDict, file: StaticString = #filePath, line: UInt = #line) throws {
        let exp = try expected().filter { !$0.key.hasPrefix("__") }
        XCTAssertEqual(dict.keys, ["conv.weight", "fc.weight", "fc.bias", "bn.num_batches_tracked", "half"], file: file, line: line)
        for (name, value) in exp {
            let e = value as! [String: Any]
            let t = try XCTUnwrap(dict[name], name, file: file, line: line)
            XCTAssertEqual(t.shape, e["shape"] as! [Int], name, file: file, line: line)
            XCTAssertEqual(t.data, (e["values"] as! [NSNumber]).map { $0.floatValue }, name, file: file, line: line)
        }
    }

    func testLegacyFormatWithStridedAndSharedStorages() throws {
        try assertMatchesExpected(try TorchCheckpoint.load(contentsOf: dir.appendingPathComponent("legacy.pth")))
    }

    func testZipFormat() throws {
        try assertMatchesExpected(try TorchCheckpoint.load(contentsOf: dir.appendingPathComponent("zip.pt")))
    }

    func assertRefused(_ name: String, contains needle: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try TorchCheckpoint.load(contentsOf: dir.appendingPathComponent(name)), file: file, line: line) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.hasPrefix(name + ": ") && text.contains(needle), text, file: file, line: line)
            XCTAssertFalse(text.contains("\n"), "one line: \(text)", file: file, line: line)
        }
    }

    func testMaliciousPicklesAreRefusedNotRun() {
        assertRefused("malicious_legacy.pth", contains: "refused pickle global 'os.system'")
        assertRefused("malicious_zip.pt", contains: "refused pickle global 'os.system'")
        assertRefused("eval_legacy.pth", contains: "refused pickle global 'builtins.eval'")
    }

    func testTruncatedEmptyAndGarbageFiles() throws {
        assertRefused("truncated_legacy.pth", contains: "truncated")
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("vizlab-ckpt-\(getpid())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let cases: [(String, Data, String)] = [
            ("empty.pth", Data(), "empty file"),
            ("garbage.pth", Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }), "not a PyTorch checkpoint"),
            ("cut.pt", try Data(contentsOf: dir.appendingPathComponent("zip.pt")).prefix(600), "zip"),
        ]
        for (name, data, needle) in cases {
            try data.write(to: scratch.appendingPathComponent(name))
            XCTAssertThrowsError(try TorchCheckpoint.load(contentsOf: scratch.appendingPathComponent(name))) { error in
                XCTAssertTrue(String(describing: error).contains(needle), String(describing: error))
            }
        }
        // Every prefix of a valid file fails cleanly (never traps).
        let legacy = try Data(contentsOf: dir.appendingPathComponent("legacy.pth"))
        for cut in stride(from: 1, to: legacy.count, by: 7) {
            try legacy.prefix(cut).write(to: scratch.appendingPathComponent("prefix.pth"))
            XCTAssertThrowsError(try TorchCheckpoint.load(contentsOf: scratch.appendingPathComponent("prefix.pth")), "prefix \(cut)")
        }
    }

    func testSafetensorsFromPythonAndRoundTrip() throws {
        let st = try SafeTensors.load(contentsOf: dir.appendingPathComponent("weights.safetensors"))
        let exp = try expected()["__safetensors__"] as! [String: [NSNumber]]
        for (name, values) in exp { XCTAssertEqual(st[name]?.data, values.map { $0.floatValue }, name) }
        XCTAssertEqual(st["a"]?.shape, [2, 2])
        XCTAssertEqual(st["step"]?.shape, [])

        let legacy = try TorchCheckpoint.load(contentsOf: dir.appendingPathComponent("legacy.pth"))
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("vizlab-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: out) }
        try SafeTensors.save(legacy, to: out, metadata: ["source": "legacy.pth"])
        let back = try SafeTensors.load(contentsOf: out)
        XCTAssertEqual(Set(back.keys), Set(legacy.keys))
        for k in legacy.keys {
            XCTAssertEqual(back[k]?.shape, legacy[k]?.shape, k)
            XCTAssertEqual(back[k]?.data, legacy[k]?.data, k)
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: out.deletingLastPathComponent().path)
            .filter { $0.contains(out.lastPathComponent + ".tmp") }
        XCTAssertEqual(leftovers, [], "atomic write leaves no temp files")
    }

    func testRealWeightFile() throws {
        guard FileManager.default.fileExists(atPath: ModelStore.candidates(EfficientNetLite.lite0)[0].url.path) else {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("weights missing under CI") }
            throw XCTSkip("weights not fetched: run `make setup`")
        }
        let d = try TorchCheckpoint.load(contentsOf: ModelStore.candidates(EfficientNetLite.lite0)[0].url)
        XCTAssertEqual(d.keys.count, 296)
        XCTAssertEqual(d["_conv_stem.weight"]?.shape, [32, 3, 3, 3])
        XCTAssertEqual(d["_fc.weight"]?.shape, [1000, 1280])
        // Values read with Python's pickle + struct from the same file, applying the stored strides by hand
        // (_conv_stem.weight has stride (1, 32, 288, 96): TF's HWIO order).
        func at(_ name: String, _ index: [Int]) -> Float {
            let t = d[name]!
            var flat = 0
            for (i, n) in zip(index, t.shape) { flat = flat * n + i }
            return t.data[flat]
        }
        XCTAssertEqual(at("_conv_stem.weight", [0, 0, 0, 0]), -1.1103360652923584)
        XCTAssertEqual(at("_conv_stem.weight", [31, 2, 2, 1]), 1.4901161193847656e-08)
        XCTAssertEqual(at("_fc.weight", [999, 1279]), 0.04085797071456909)
        XCTAssertEqual(at("_fc.weight", [3, 17]), 0.07534729689359665)
        XCTAssertEqual(at("_fc.bias", [0]), 0.032053910195827484)
        XCTAssertEqual(at("_blocks.15._depthwise_conv.weight", [1151, 0, 2, 1]), 0.04846426844596863)
        XCTAssertEqual(at("_bn0.running_var", [5]), 0.5514333248138428)
    }
}
