import XCTest
import Engine
import Models
@testable import Training
import TestSupport

final class OptimizerTests: XCTestCase {
    /// Each optimizer's first steps against its formula written out (PyTorch's, with Keras' RMSprop constants).
    func testUpdatesFollowTheFormulas() {
        for kind in OptimizerKind.allCases {
            let p = Tensor(shape: [3], data: [1, -2, 0.5], requiresGrad: true)
            var opt = Optimizer(kind: kind, weightDecay: 0.01, momentum: 0.9)
            var w: [Double] = [1, -2, 0.5], m = [0.0, 0, 0], v = [0.0, 0, 0]
            let grads: [[Float]] = [[0.3, -0.1, 2], [0.2, 0.4, -1], [-0.5, 0.1, 0.05]]
            for (t, g) in grads.enumerated() {
                p.grad = g
                opt.step([("p", p)], lr: 0.1)
                XCTAssertNil(p.grad)
                for i in 0..<3 {
                    let gi = Double(g[i]) + 0.01 * w[i]
                    switch kind {
                    case .sgd: m[i] = t == 0 ? gi : 0.9 * m[i] + gi; w[i] -= 0.1 * m[i]
                    case .rmsprop: v[i] = 0.9 * v[i] + 0.1 * gi * gi; w[i] -= 0.1 * gi / (v[i].squareRoot() + 1e-7)
                    case .adam:
                        m[i] = 0.9 * m[i] + 0.1 * gi; v[i] = 0.999 * v[i] + 0.001 * gi * gi
                        let mh = m[i] / (1 - pow(0.9, Double(t + 1))), vh = v[i] / (1 - pow(0.999, Double(t + 1)))
                        w[i] -= 0.1 * mh / (vh.squareRoot() + 1e-8)
                    }
                    XCTAssertEqual(Double(p.data[i]), w[i], accuracy: 1e-5, "\(kind) step \(t) value \(i)")
                }
            }
            // State round trip gives the same next step.
            var copy = Optimizer(kind: kind, weightDecay: 0.01, momentum: 0.9)
            copy.restore(opt.state())
            let a = Tensor(shape: [3], data: p.data, requiresGrad: true), b = Tensor(shape: [3], data: p.data, requiresGrad: true)
            a.grad = [0.1, 0.2, 0.3]; b.grad = [0.1, 0.2, 0.3]
            opt.step([("p", a)], lr: 0.1); copy.step([("p", b)], lr: 0.1)
            XCTAssertEqual(a.data, b.data, "\(kind)")
        }
    }

    func testSchedules() {
        XCTAssertEqual(Schedule.constant.rate(0.1, step: 50, total: 100), 0.1)
        XCTAssertEqual(Schedule.cosine.rate(0.1, step: 0, total: 100), 0.1, accuracy: 1e-7)
        XCTAssertEqual(Schedule.cosine.rate(0.1, step: 50, total: 100), 0.05, accuracy: 1e-6)
        XCTAssertEqual(Schedule.onecycle.rate(0.1, step: 0, total: 100), 0.004, accuracy: 1e-6)
        XCTAssertEqual(Schedule.onecycle.rate(0.1, step: 30, total: 100), 0.1, accuracy: 1e-6)
        XCTAssertLessThan(Schedule.onecycle.rate(0.1, step: 100, total: 100), 1e-6)
    }
}

final class AugmentationTests: XCTestCase {
    func image(_ w: Int, _ h: Int) -> RGBImage {
        var px = [UInt8](repeating: 0, count: w * h * 3)
        for i in 0..<px.count { let v: Int = i * 37 + (i / 3) * 11; px[i] = UInt8(v % 256) }
        return RGBImage(width: w, height: h, pixels: px)
    }

    func testIdentityIsExactAndFlipMirrors() {
        let img = image(9, 9)
        var rng = SeededGenerator(seed: 1)
        XCTAssertEqual(Augmentation.none.apply(img, using: &rng), img.pixels.map(Float.init))
        // A flip-only transform either leaves the image or mirrors it.
        let flip = Augmentation(horizontalFlip: true)
        var flips = 0
        for s in 0..<20 {
            var r = SeededGenerator(seed: UInt64(s))
            let out = flip.apply(img, using: &r)
            if out != img.pixels.map(Float.init) {
                flips += 1
                for y in 0..<9 { for x in 0..<9 { for c in 0..<3 { XCTAssertEqual(out[(y * 9 + x) * 3 + c], Float(img.pixels[(y * 9 + 8 - x) * 3 + c])) } } }
            }
        }
        XCTAssert((4...16).contains(flips), "\(flips) flips in 20")
    }

    /// A 90° rotation (drawn as exactly 90 by a range of 90 and a generator that returns its top) maps pixels like
    /// Keras' matrix does, and every transform of the tutorial's set is seeded.
    func testTutorialSetIsSeededAndMovesPixels() {
        let img = image(16, 16)
        var a = SeededGenerator(seed: 5), b = SeededGenerator(seed: 5), c = SeededGenerator(seed: 6)
        let x = Augmentation.tutorial.apply(img, using: &a), y = Augmentation.tutorial.apply(img, using: &b), z = Augmentation.tutorial.apply(img, using: &c)
        XCTAssertEqual(x, y)
        XCTAssertNotEqual(x, z)
        XCTAssert(x.allSatisfy { (0...255).contains($0) })
    }
}

final class ImageFolderTests: XCTestCase {
    var root: URL!
    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("vizlab-folder-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(at: root) }

    func png(_ value: UInt8) throws -> Data { try PNGEncoder.encode(RGBImage(width: 8, height: 8, pixels: [UInt8](repeating: value, count: 192))) }

    func write(_ rel: String, _ data: Data) throws {
        let url = root.appendingPathComponent(rel)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
    }

    /// The bad files are listed and skipped; the rest load; an empty class is an error naming it.
    func testBadFilesAreSkippedAndListedAndAnEmptyClassIsAnError() throws {
        for split in ["train", "validation"] {
            for c in ["cat", "dog"] { for i in 0..<3 { try write("\(split)/\(c)/\(i).png", try png(UInt8(i * 40))) } }
        }
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../EngineTests/Fixtures/images/rgb.jpg"))
        try write("train/cat/empty.png", Data())
        try write("train/cat/truncated.jpg", jpeg.prefix(jpeg.count / 2))
        try write("train/dog/text.png", Data("not a picture\n".utf8))
        try write("train/dog/really-a-png.jpg", try png(9))
        try write("train/dog/notes.txt", Data("x".utf8))
        let d = try ImageFolderDataset.load(root)
        XCTAssertEqual(d.classes, ["cat", "dog"])
        XCTAssertEqual(d.train.count, 6)
        XCTAssertEqual(d.validation.count, 6)
        let reasons = Dictionary(uniqueKeysWithValues: d.skipped.map { (URL(fileURLWithPath: $0.path).lastPathComponent, $0.reason) })
        XCTAssertEqual(Set(reasons.keys), ["empty.png", "truncated.jpg", "text.png", "really-a-png.jpg", "notes.txt"], "\(reasons)")
        XCTAssertEqual(reasons["empty.png"], "empty file")
        XCTAssert(reasons["truncated.jpg"]!.contains("JPEG"), reasons["truncated.jpg"]!)
        XCTAssert(reasons["really-a-png.jpg"]!.contains("is PNG"), reasons["really-a-png.jpg"]!)
        // An empty class folder (or one with only bad files) is an error naming it.
        try FileManager.default.createDirectory(at: root.appendingPathComponent("train/bird"), withIntermediateDirectories: true)
        try write("train/bird/zero.png", Data())
        XCTAssertThrowsError(try ImageFolderDataset.load(root)) { XCTAssert("\($0)".contains("'bird' has no usable image"), "\($0)") }
    }

    func testValidationSplitIsSeededAndPerClass() throws {
        for c in ["a", "b", "c"] { for i in 0..<10 { try write("\(c)/\(i).png", try png(UInt8(i))) } }
        let d1 = try ImageFolderDataset.load(root, validationSplit: 0.2, seed: 1)
        let d2 = try ImageFolderDataset.load(root, validationSplit: 0.2, seed: 1)
        let d3 = try ImageFolderDataset.load(root, validationSplit: 0.2, seed: 2)
        XCTAssertEqual(d1.counts(d1.validation), [2, 2, 2])
        XCTAssertEqual(d1.counts(d1.train), [8, 8, 8])
        XCTAssertEqual(d1.validation, d2.validation)
        XCTAssertNotEqual(d1.validation.map(\.path), d3.validation.map(\.path))
        XCTAssertThrowsError(try ImageFolderDataset.load(root)) { XCTAssert("\($0)".contains("--validation-split"), "\($0)") }
    }
}

/// The interpreter's training path: parameter gradients through a small graph (conv → BN → ReLU6 → pool → dense)
/// against finite differences with BN frozen and with batch statistics; running averages as PyTorch updates them.
final class TrainingPathTests: XCTestCase {
    func model(_ rng: inout TestRNG) throws -> GraphModel {
        var g = GraphBuilder()
        g.conv("conv", filters: 4, kernel: 3, padding: .same, bias: true)
        g.batchNorm("bn", eps: 1e-5)
        g.activation("act", .swish)
        g.add("pool", .globalAveragePool)
        g.add("drop", .dropout(rate: 0.5))
        g.dense("fc", units: 3)
        var w: [String: Tensor] = [:]
        w["conv.weight"] = rng.tensor([4, 3, 3, 3], grad: false); w["conv.bias"] = rng.tensor([4], grad: false)
        w["bn.weight"] = rng.tensor([4], in: 0.5...1.5, grad: false); w["bn.bias"] = rng.tensor([4], grad: false)
        w["bn.running_mean"] = rng.tensor([4], grad: false); w["bn.running_var"] = rng.tensor([4], in: 0.5...2, grad: false)
        w["fc.weight"] = rng.tensor([3, 4], grad: false); w["fc.bias"] = rng.tensor([3], grad: false)
        let spec = ModelSpec(architecture: "tiny", weightsSHA256: "", weightsFile: "", inputSize: 16,
                             preprocessing: Preprocessing.lite(crop: 16), labels: ["a", "b", "c"], logits: "fc", embedding: "pool",
                             defaultLayer: "act", galleryLayers: [], blocks: ["act"])
        return try GraphModel(spec: spec, graph: g.build(), weights: w)
    }

    func testParameterGradientsFrozenAndBatchStatisticsBN() throws {
        var rng = TestRNG(seed: 9)
        let m = try model(&rng)
        let x = rng.tensor([3, 3, 8, 8], grad: false)
        let labels = [0, 2, 1]
        let learnable = m.namedParameters.filter { !$0.name.contains("running") }
        for p in learnable { p.tensor.requiresGrad = true }
        for batchStatistics in [false, true] {
            let params = learnable.map(\.tensor)
            checkGradients(params, tolerance: 3e-2) { _ in
                let mode = RunMode.training(seed: 5, batchStatistics: batchStatistics)
                return softmaxCrossEntropy(m.forward([m.graph.input: x], capture: ["fc"], mode: mode)["fc"]!, labels: labels).loss
            }
        }
        // Dropout drops in training mode only; inference is deterministic and without it.
        for p in learnable { p.tensor.requiresGrad = false }
        m.parametersChanged()
        let a = m.forward([m.graph.input: x], capture: ["fc"], mode: .training(seed: 1, batchStatistics: false))["fc"]!
        let b = m.forward([m.graph.input: x], capture: ["fc"], mode: .training(seed: 2, batchStatistics: false))["fc"]!
        let c = m(x), d = m.forward([m.graph.input: x], capture: ["fc"], mode: .inference)["fc"]!
        XCTAssertNotEqual(a.data, b.data)
        XCTAssertEqual(c.data, d.data)
    }

    func testRunningStatisticsUpdateLikePyTorch() throws {
        var rng = TestRNG(seed: 10)
        let m = try model(&rng)
        for p in m.namedParameters where p.name.hasPrefix("bn.weight") || p.name.hasPrefix("bn.bias") { p.tensor.requiresGrad = true }
        let x = rng.tensor([2, 3, 8, 8], grad: false)
        let before = (m.parameter(named: "bn.running_mean")!.data, m.parameter(named: "bn.running_var")!.data)
        let conv = m.forward([m.graph.input: x], capture: ["conv"], mode: .inference)["conv"]!
        _ = m.forward([m.graph.input: x], capture: ["fc"], mode: .training(seed: 0, batchStatistics: true))
        let after = (m.parameter(named: "bn.running_mean")!.data, m.parameter(named: "bn.running_var")!.data)
        let plane = 64, n = 2 * plane
        for c in 0..<4 {
            var vals: [Double] = []
            for b in 0..<2 { for i in 0..<plane { vals.append(Double(conv.data[(b * 4 + c) * plane + i])) } }
            let mean = vals.reduce(0, +) / Double(n)
            let unbiased = vals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n - 1)
            XCTAssertEqual(Double(after.0[c]), 0.9 * Double(before.0[c]) + 0.1 * mean, accuracy: 1e-5)
            XCTAssertEqual(Double(after.1[c]), 0.9 * Double(before.1[c]) + 0.1 * unbiased, accuracy: 1e-4)
        }
        // Frozen BN (batchStatistics false) leaves them alone.
        _ = m.forward([m.graph.input: x], capture: ["fc"], mode: .training(seed: 0, batchStatistics: false))
        XCTAssertEqual(m.parameter(named: "bn.running_mean")!.data, after.0)
    }
}
