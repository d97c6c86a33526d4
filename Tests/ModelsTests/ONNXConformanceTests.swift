import XCTest
import Engine
import ONNXProto
@testable import Models

/// The ONNX backend node tests (Debian `libonnx-testdata` 1.12: `data/node/test_*/model.onnx` with
/// `test_data_set_*/input_*.pb` and `output_*.pb`) of every op vizlab's importer runs, compared as ONNX's own runner
/// compares them (numpy `assert_allclose`, rtol 1e-3, atol 1e-7). A test using something vizlab does not implement
/// (another dtype, 3-D windows, training mode, a second output…) is skipped with its reason; every test in
/// `Fixtures/onnx-allowlist.txt` must pass.
final class ONNXConformanceTests: XCTestCase {
    static let root = URL(fileURLWithPath: ProcessInfo.processInfo.environment["ONNX_TESTDATA"] ?? "/usr/share/libonnx-testdata/data/node")

    /// The test-name prefixes of each op (ONNX names its node tests after the op).
    static let prefixes: [String: [String]] = [
        "Conv": ["test_conv_", "test_basic_conv_"], "BatchNormalization": ["test_batchnorm_"], "Relu": ["test_relu"],
        "Clip": ["test_clip"], "LeakyRelu": ["test_leakyrelu"], "Sigmoid": ["test_sigmoid"], "HardSigmoid": ["test_hardsigmoid"],
        "HardSwish": ["test_hardswish"], "Mul": ["test_mul"], "Add": ["test_add"], "Sub": ["test_sub"], "Div": ["test_div"],
        "Concat": ["test_concat_"], "MaxPool": ["test_maxpool_"], "AveragePool": ["test_averagepool_"],
        "GlobalAveragePool": ["test_globalaveragepool"], "Flatten": ["test_flatten_"], "Reshape": ["test_reshape_"],
        "Transpose": ["test_transpose_"], "Gemm": ["test_gemm_"], "MatMul": ["test_matmul_"], "Softmax": ["test_softmax_"],
        "Pad": ["test_constant_pad", "test_edge_pad", "test_reflect_pad"], "ReduceMean": ["test_reduce_mean_"],
        "Squeeze": ["test_squeeze"], "Unsqueeze": ["test_unsqueeze"], "Constant": ["test_constant"], "Identity": ["test_identity"],
        "Dropout": ["test_dropout_"], "Shape": ["test_shape"], "Gather": ["test_gather_"], "Slice": ["test_slice"],
        "Cast": ["test_cast_"], "ConstantOfShape": ["test_constantofshape_"],
    ]
    /// Other ops whose test names start like one of ours.
    static let otherOps = ["test_softmax_cross_entropy", "test_gather_elements", "test_gathernd", "test_convtranspose", "test_convinteger",
                           "test_matmulinteger", "test_hardsigmoid_expanded"]

    enum Outcome { case passed, failed(String), skipped(String) }

    static func tests() -> [String] {
        let all = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return all.filter { name in
            prefixes.values.joined().contains { name.hasPrefix($0) } && !otherOps.contains { name.hasPrefix($0) }
        }.sorted()
    }

    static func run(_ name: String) -> Outcome {
        let dir = root.appendingPathComponent(name)
        do {
            let model = try Data(contentsOf: dir.appendingPathComponent("model.onnx"))
            let sets = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("test_data_set_") }.sorted()
            guard !sets.isEmpty else { return .skipped("no test data") }
            for set in sets {
                let sd = dir.appendingPathComponent(set)
                let files = try FileManager.default.contentsOfDirectory(atPath: sd.path)
                func protos(_ prefix: String) throws -> [Onnx_TensorProto] {
                    try (0..<files.filter { $0.hasPrefix(prefix) }.count).map {
                        try Onnx_TensorProto(serializedBytes: Data(contentsOf: sd.appendingPathComponent("\(prefix)\($0).pb")))
                    }
                }
                let inputs = try protos("input_"), expected = try protos("output_")
                let (_, outs) = try GradMode.withoutGrad { try ONNXGraph.runTest(data: model, inputs: inputs, outputs: expected.count) }
                for (i, (got, want)) in zip(outs, expected).enumerated() {
                    let w: Tensor
                    switch try ONNXTensorReader.decode(want, folder: nil, what: "output") {
                    case .float(let t): w = t
                    case .ints(let v, let shape):  // shapes and indices: exact
                        guard got.shape == shape, got.data.map({ $0.isFinite && abs($0) < 9e15 ? Int($0) : Int.min }) == v else { return .failed("\(set) output \(i): \(got.data.prefix(8)) vs \(v.prefix(8))") }
                        continue
                    }
                    guard got.shape == w.shape else { return .failed("\(set) output \(i): shape \(got.shape), expected \(w.shape)") }
                    for (a, b) in zip(got.data, w.data) where !(abs(a - b) <= 1e-7 + 1e-3 * abs(b)) && !(a.isNaN && b.isNaN) && a != b {
                        return .failed("\(set) output \(i): \(a) vs \(b)")
                    }
                }
            }
            return .passed
        } catch let e as ONNXError where e.unsupported {
            return .skipped(e.message)
        } catch {
            return .failed("\(error)")
        }
    }

    func testNodeConformance() throws {
        guard FileManager.default.fileExists(atPath: Self.root.path) else {
            let message = "ONNX test data missing at \(Self.root.path): apt-get install libonnx-testdata (make setup does)"
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail(message) }
            throw XCTSkip(message)
        }
        let allow = Set(try String(contentsOf: Bundle.module.url(forResource: "Fixtures/onnx-allowlist", withExtension: "txt")!, encoding: .utf8)
            .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") })
        var passed: [String] = [], failed: [(String, String)] = [], skipped: [(String, String)] = []
        for name in Self.tests() {
            switch Self.run(name) {
            case .passed: passed.append(name)
            case .failed(let why): failed.append((name, why))
            case .skipped(let why): skipped.append((name, why))
            }
        }
        if let out = ProcessInfo.processInfo.environment["VIZLAB_WRITE_ONNX_ALLOWLIST"] {
            let header = "# ONNX backend node tests (libonnx-testdata 1.12) that must pass: every passing test of the ops vizlab imports.\n# Regenerate: VIZLAB_WRITE_ONNX_ALLOWLIST=$PWD/Tests/ModelsTests/Fixtures/onnx-allowlist.txt swift test … --filter ONNXConformanceTests\n"
            try (header + passed.joined(separator: "\n") + "\n").write(toFile: out, atomically: true, encoding: .utf8)
        }
        for (n, why) in failed { print("onnx conformance FAILED \(n): \(why)") }
        for (n, why) in skipped { print("onnx conformance skipped \(n): \(why)") }
        print("onnx conformance: \(passed.count) passed, \(failed.count) failed, \(skipped.count) skipped (of \(Self.tests().count) node tests of \(Self.prefixes.count) ops)")
        XCTAssertTrue(failed.isEmpty, "failed: \(failed.map(\.0))")
        let missing = allow.subtracting(passed)
        XCTAssertTrue(missing.isEmpty, "allowlisted but not passing: \(missing.sorted())")
        XCTAssertGreaterThan(allow.count, 100, "the allowlist covers the ops' tests")
    }
}
