import XCTest
import Engine
@testable import Models

/// Malformed Keras and ONNX files (written by h5py, Keras and onnx themselves: scripts/reference/make_bad_fixtures.py,
/// and truncated / corrupted copies of the parity fixtures) are refused in one line naming the problem.
final class ImportRefusalTests: XCTestCase {
    static let bad = WeightStore.home.appendingPathComponent("parity/bad-v2")
    static let keras = WeightStore.home.appendingPathComponent("parity/keras-v1/mobilenet_v2")
    static let onnx = WeightStore.home.appendingPathComponent("parity/onnx-v1/mobilenet_v2")

    func requireFixtures() throws {
        for d in [Self.bad, Self.keras.deletingLastPathComponent(), Self.onnx.deletingLastPathComponent()]
        where !FileManager.default.fileExists(atPath: d.appendingPathComponent("DONE").path) && !FileManager.default.fileExists(atPath: d.appendingPathComponent("DONE").path) {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("fixtures missing at \(d.path)") }
            throw XCTSkip("fixtures missing at \(d.path): run scripts/parity-fixtures")
        }
    }

    func refusal(_ url: URL, arch: String? = nil) -> String {
        do {
            _ = try ModelStore.load(ModelRequest(model: url.path, arch: arch))
            return "loaded"
        } catch { return "\(error)" }
    }

    func expect(_ url: URL, _ fragments: [String], arch: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
        let message = refusal(url, arch: arch)
        XCTAssertFalse(message.contains("\n"), "one line: \(message)", file: file, line: line)
        for f in fragments { XCTAssertTrue(message.contains(f), "'\(message)' should mention '\(f)'", file: file, line: line) }
        print("refused \(url.lastPathComponent): \(message)")
    }

    /// A copy of `source` cut to `fraction` of its bytes, or with bytes overwritten.
    func damaged(_ source: URL, name: String, keep fraction: Double? = nil, overwrite: Range<Int>? = nil) throws -> URL {
        var data = try Data(contentsOf: source)
        if let fraction { data = data.prefix(Int(Double(data.count) * fraction)) }
        if let r = overwrite { for i in r where i < data.count { data[i] = UInt8(truncatingIfNeeded: i &* 131 &+ 7) } }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vizlab-refusals-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try data.write(to: url)
        return url
    }

    func testKeras() throws {
        try requireFixtures()
        expect(try damaged(Self.keras.appendingPathComponent("legacy.h5"), name: "truncated.h5", keep: 0.5), ["truncated.h5"])
        expect(try damaged(Self.keras.appendingPathComponent("legacy.h5"), name: "corrupt.h5", overwrite: 0..<4096), ["corrupt.h5"])
        expect(try damaged(Self.keras.appendingPathComponent("model.keras"), name: "truncated.keras", keep: 0.5), ["truncated.keras"])
        expect(Self.bad.appendingPathComponent("lambda.keras"), ["lambda.keras", "double", "Lambda", "Python"])
        expect(Self.bad.appendingPathComponent("huge_declared.h5"), ["huge_declared.h5", "block1_conv1", "exceeds 4 GiB"])
        expect(Self.bad.appendingPathComponent("declared_exceeds_file.h5"), ["declared_exceeds_file.h5", "block1_conv1", "exceeds what the file holds"])
        expect(Self.keras.appendingPathComponent("model.weights.h5"), ["--arch vgg16 is not a Keras form"], arch: "vgg16")
        expect(Self.keras.appendingPathComponent("model.weights.h5"), ["fits no Keras form", "vgg16-keras"], arch: "vgg16-keras")
    }

    func testONNX() throws {
        try requireFixtures()
        expect(Self.bad.appendingPathComponent("unknown_op.onnx"), ["unknown_op.onnx", "/features/erf/Erf", "Erf"])
        expect(Self.bad.appendingPathComponent("escape/model.onnx"), ["../outside.bin", "leaves the model's folder"])
        expect(Self.bad.appendingPathComponent("huge.onnx"), ["huge.onnx", "'h'", "exceeds 4 GiB"])
        expect(try damaged(Self.onnx.appendingPathComponent("model.onnx"), name: "truncated.onnx", keep: 0.5), ["truncated.onnx", "not an ONNX model"])
        expect(try damaged(Self.onnx.appendingPathComponent("model.onnx"), name: "corrupt.onnx", overwrite: 0..<64), ["corrupt.onnx"])
    }
}
