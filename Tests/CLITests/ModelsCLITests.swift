import Foundation
import XCTest
import TestSupport
@testable import Engine
import Models

/// Every command on every built-in architecture, end to end through the binary: the torchvision architectures with
/// the random-weight state dicts PyTorch wrote (scripts/parity-fixtures), Lite1/Lite2 with their real weights.
/// Tiny settings (a few steps at 64²): this checks that each command works on each model, not how well.
final class ModelsCLITests: VizlabCLITestCase {
    var parity: URL { WeightStore.home.appendingPathComponent("parity/v1") }

    func fixtures() throws {
        guard FileManager.default.fileExists(atPath: parity.appendingPathComponent("DONE").path) else {
            let message = "parity fixtures missing: run scripts/parity-fixtures (make test does)"
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail(message) }
            throw XCTSkip(message)
        }
    }

    func ok(_ args: [String], _ environment: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        let run = try vizlab(args, environment: environment)
        XCTAssertEqual(run.status, 0, "\(args.joined(separator: " ")): \(run.stderr)", file: file, line: line)
        return run
    }

    func json(_ run: Run) throws -> Any { try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) }

    /// The torchvision-named file a user has in their torch cache (random weights here), passed by path.
    func torchFile(_ arch: String) throws -> String {
        try fixtures()
        let name = try XCTUnwrap(Zoo.architecture(named: arch)).files[0].fileName
        let dir = scratch.appendingPathComponent("torch/hub/checkpoints")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let link = dir.appendingPathComponent(name)
        if !FileManager.default.fileExists(atPath: link.path) {
            try FileManager.default.createSymbolicLink(at: link, withDestinationURL: parity.appendingPathComponent("\(arch)/weights.pth"))
        }
        return link.path
    }

    func everyCommand(_ model: String, arch: String) throws {
        let info = try XCTUnwrap(Zoo.architecture(named: arch))
        let out = scratch.appendingPathComponent(arch)
        let chelsea = samples.appendingPathComponent("chelsea.png").path, chicky = samples.appendingPathComponent("chicky_512.png").path
        let m = ["--model", model]

        // layers: exactly the graph's nodes and aliases, in the framework's names.
        let layers = try json(try ok(["layers", "--json"] + m)) as! [[String: Any]]
        XCTAssertEqual(layers.count, info.graph.nodes.count + info.graph.aliases.count, arch)
        XCTAssertEqual(Set(layers.map { $0["name"] as! String }), Set(info.graph.nodes.map(\.name) + info.graph.aliases.keys), arch)

        // classify, with the full logit vector.
        let classified = try json(try ok(["classify", "--json", "--logits", chelsea, chicky] + m)) as! [[String: Any]]
        XCTAssertEqual((classified[0]["logits"] as! [Double]).count, 1000, arch)
        XCTAssertNotEqual((classified[0]["top"] as! [[String: Any]])[0]["index"] as? Int == nil, true)

        // A render of a channel of the default layer; its sidecar records the model.
        let layer = info.defaultLayer
        let neuron = try ok(["neuron", "\(layer):3", "--steps", "3", "--size", "64", "--out", out.path, "--json"] + m)
        let sidecar = try XCTUnwrap((try json(neuron) as? [[String: Any]])?.first)
        XCTAssertTrue((sidecar["model"] as! String).hasPrefix("\(arch)@"), "\(sidecar["model"] ?? "")")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("neuron_\(layer)_3.png").path), arch)

        // ideal (a class), attack (saved-PNG-checked), index + top, a two-channel gallery, bench.
        _ = try ok(["ideal", "--class", "tabby", "--steps", "3", "--size", "64", "--out", out.path] + m)
        // Exit 0 when fooled, 3 when not (two steps may not fool a random-weight network); the report is written either way.
        let attack = try vizlab(["attack", chelsea, "--target", "goldfish", "--eps", "4", "--steps", "2", "--out", out.appendingPathComponent("attack").path] + m)
        XCTAssertTrue(attack.status == 0 || attack.status == 3, "\(arch) attack: \(attack.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("attack/chelsea.json"))) as! [String: Any]
        XCTAssertTrue("\(report["model"] ?? "")".hasPrefix("\(arch)@"), "attack report names the model: \(report["model"] ?? "none")")
        let photos = scratch.appendingPathComponent("photos-\(arch)")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        for p in [chelsea, chicky] { try FileManager.default.copyItem(atPath: p, toPath: photos.appendingPathComponent((p as NSString).lastPathComponent).path) }
        let db = out.appendingPathComponent("index.sqlite").path
        let block = info.blocks[info.blocks.count / 2]
        _ = try ok(["index", photos.path, "--db", db, "--layers", block, info.logits] + m)
        let top = try json(try ok(["top", "\(block):1", "--db", db, "--k", "2", "--json", "--out", out.appendingPathComponent("top.png").path] + m)) as! [String: Any]
        XCTAssertEqual((top["examples"] as! [Any]).count, 2, arch)
        let site = out.appendingPathComponent("gallery")
        _ = try ok(["gallery", "--out", site.path, "--layers", block, "--channels", "2", "--steps", "2", "--size", "64", "--diversity", "0",
                    "--no-neuron", "--no-negative", "--class", "tabby", "--class-steps", "2", "--class-size", "64", "--dataset", db, "--jobs", "1"] + m)
        XCTAssertTrue(FileManager.default.fileExists(atPath: site.appendingPathComponent("layers/\(block)/1.html").path), arch)
        let benchRun = try ok(["bench", "--runs", "1", "--batch", "1", "--attack-steps", "0", "--json", "--profile"] + m)
        let bench = try json(benchRun) as! [[String: Any]]
        XCTAssertEqual(bench.count, 2, arch)
        // --profile: inference (fused inverted bottlenecks, on AVX-512, only in the networks that have them), then
        // forward+backward (every layer on its own).
        XCTAssertTrue(benchRun.stderr.contains("profile: forward (inference)") && benchRun.stderr.contains("profile: forward+backward"), benchRun.stderr)
        let bottlenecks = ["mobilenet_v2", "lite1", "lite2"].contains(arch)
        let avx512 = MicroKernel.avx512
        XCTAssertEqual(benchRun.stderr.contains("(fused bottleneck)"), bottlenecks && avx512, "\(arch): fused steps in the profile")
        let inference = benchRun.stderr.components(separatedBy: "profile: forward+backward")[0]
        XCTAssertEqual(inference.contains("(fused bottleneck)"), bottlenecks && avx512, arch)
    }

    func testVGG16() throws { try everyCommand(try torchFile("vgg16"), arch: "vgg16") }
    func testVGG19() throws { try everyCommand(try torchFile("vgg19"), arch: "vgg19") }
    func testResNet50() throws { try everyCommand(try torchFile("resnet50"), arch: "resnet50") }
    func testMobileNetV2() throws { try everyCommand(try torchFile("mobilenet_v2"), arch: "mobilenet_v2") }
    func testLite1() throws { try everyCommand("lite1", arch: "lite1") }
    func testLite2() throws { try everyCommand("lite2", arch: "lite2") }

    /// The lab's own example: a torchvision VGG16 layer by its torchvision name, from the file in the torch cache.
    func testNeuronOfAVGG16LayerByItsTorchvisionName() throws {
        let file = try torchFile("vgg16")
        let out = scratch.appendingPathComponent("vgg")
        let run = try ok(["neuron", "features.12:17", "--model", file, "--steps", "4", "--size", "96", "--out", out.path])
        XCTAssertTrue(run.stdout.contains("neuron_features.12_17.png"), run.stdout)
        let sidecar = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("neuron_features.12_17.json"))) as! [String: Any]
        XCTAssertTrue((sidecar["objective"] as! String).contains("features.12"), "\(sidecar["objective"] ?? "")")
        // By name, vizlab finds the same file in the torch cache — and refuses it: these random weights fail the
        // sha256 prefix torchvision's file name carries.
        let byName = try vizlab(["classify", "--model", "vgg16", samples.appendingPathComponent("chelsea.png").path],
                                environment: ["TORCH_HOME": scratch.appendingPathComponent("torch").path])
        XCTAssertEqual(byName.status, 2)
        XCTAssertTrue(byName.stderr.contains("sha256") && byName.stderr.contains("vgg16-397923af.pth"), byName.stderr)
    }

    func testBundleExportLoadsAndClassifiesTheSame() throws {
        let bundle = scratch.appendingPathComponent("lite0.vizlab").path
        _ = try ok(["models", "export", "--model", "lite0", "--out", bundle])
        let photo = samples.appendingPathComponent("chelsea.png").path
        let a = try json(try ok(["classify", "--json", "--logits", photo])) as! [[String: Any]]
        let b = try json(try ok(["classify", "--json", "--logits", photo, "--model", bundle])) as! [[String: Any]]
        XCTAssertEqual(a[0]["logits"] as! [Double], b[0]["logits"] as! [Double], "the bundle is the same model, bit for bit")
        let models = try json(try ok(["models", "--json"])) as! [[String: Any]]
        XCTAssertEqual(models.map { $0["name"] as! String }, Zoo.names)
    }

    func testBadModelInputIsOneLineNonZeroAndWritesNothing() throws {
        try fixtures()
        let photo = samples.appendingPathComponent("chelsea.png").path
        // A state dict of something else, and Lite0 with one tensor of the wrong shape.
        let odd = scratch.appendingPathComponent("odd.safetensors")
        try SafeTensors.save(StateDict(keys: ["encoder.weight"], tensors: ["encoder.weight": Tensor(zeros: [4, 4])]), to: odd)
        var lite0 = try ModelStore.readWeights(ModelStore.candidates(EfficientNetLite.lite0)[0].url)
        lite0.set("_fc.weight", Tensor(zeros: [999, 1280]))
        let bent = scratch.appendingPathComponent("bent.safetensors")
        try SafeTensors.save(lite0, to: bent)
        let mobilenet = parity.appendingPathComponent("mobilenet_v2/weights.pth").path
        let db = scratch.appendingPathComponent("lite0.sqlite").path
        let photos = scratch.appendingPathComponent("one")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: photo, toPath: photos.appendingPathComponent("chelsea.png").path)
        _ = try ok(["index", photos.path, "--db", db, "--layers", "blocks.3"])
        let out = scratch.appendingPathComponent("out")
        let cases: [([String], [String])] = [
            (["classify", photo, "--model", "vgg17"], ["unknown model 'vgg17'", "vgg16", "mobilenet_v2"]),
            (["classify", photo, "--model", odd.path], ["fits no built-in architecture", "closest", "tensor '"]),
            (["classify", photo, "--model", bent.path, "--arch", "lite0"], ["tensor '_fc.weight' has shape [999, 1280], expected [1000, 1280]"]),
            (["classify", photo, "--model", mobilenet, "--preprocess", "caffe"], ["--preprocess caffe conflicts with mobilenet_v2"]),
            (["classify", photo, "--model", mobilenet, "--arch", "resnet50"], ["does not fit resnet50", "conv1.weight"]),
            (["top", "blocks.3:1", "--db", db, "--model", mobilenet, "--out", out.appendingPathComponent("t.png").path], ["made with model lite0@", "not mobilenet_v2@"]),
            (["index", photos.path, "--db", db, "--layers", "features.3", "--model", mobilenet], ["made with model lite0@", "not mobilenet_v2@"]),
            (["neuron", "blocks.5:1", "--model", mobilenet, "--out", out.path], ["unknown layer 'blocks.5'", "features."]),
        ]
        for (args, needles) in cases {
            let run = try vizlab(args)
            XCTAssertNotEqual(run.status, 0, "\(args)")
            XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, "\(args): \(run.stderr)")
            for n in needles { XCTAssertTrue(run.stderr.contains(n), "\(args): '\(n)' not in \(run.stderr)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "\(args) wrote output")
        }
    }
}
