import XCTest
import Engine
@testable import Models

/// Parity with Keras itself: `scripts/parity-fixtures` has Keras 3 (torch backend) write VGG16, VGG19, ResNet50 and
/// MobileNetV2 with random input-sensitive weights in every layout (Keras 1's naming as in the official VGG16 file,
/// tf.keras 2's, Keras 3's legacy writer, a full-model file, `.weights.h5`, `.keras`; each proven a real Keras file
/// by Keras loading it back), three photos' pixels, Keras' own `predict` logits and its input gradient of one logit
/// (scripts/reference/README.md).
final class KerasParityTests: XCTestCase {
    static let root = WeightStore.home.appendingPathComponent("parity/keras-v1")
    static let files = ["keras1.h5", "tfkeras2.h5", "legacy.h5", "full.h5", "model.weights.h5", "model.keras"]

    struct Fixture {
        var dir: URL
        var meta: [String: Any]
        var pixels: [Float], logits: [Float], grad: [Float]
        var n: Int { meta["n"] as! Int }
    }

    func fixture(_ arch: String) throws -> Fixture {
        guard FileManager.default.fileExists(atPath: Self.root.appendingPathComponent("DONE").path) else {
            let message = "Keras parity fixtures missing at \(Self.root.path): run scripts/parity-fixtures (make test does)"
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail(message) }
            throw XCTSkip(message)
        }
        let dir = Self.root.appendingPathComponent(arch)
        func floats(_ name: String) throws -> [Float] {
            try Data(contentsOf: dir.appendingPathComponent(name)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("meta.json"))) as! [String: Any]
        return Fixture(dir: dir, meta: meta, pixels: try floats("pixels.bin"), logits: try floats("logits.bin"), grad: try floats("grad.bin"))
    }

    /// NHWC 0…255 pixels → the model's input, normalized as the file's framework does.
    static func input(_ pixels: ArraySlice<Float>, n: Int, size: Int, model: any VisionModel) -> Tensor {
        var nchw = [Float](repeating: 0, count: pixels.count)
        let plane = size * size, base = pixels.startIndex
        for i in 0..<n { for p in 0..<plane { for c in 0..<3 { nchw[i * 3 * plane + c * plane + p] = pixels[base + (i * plane + p) * 3 + c] } } }
        return model.spec.preprocessing.differentiableNormalize(Tensor(shape: [n, 3, size, size], data: nchw))
    }

    func check(_ arch: String) throws {
        let f = try fixture(arch)
        let size = 224, plane = 3 * size * size
        var tops: [[Int]] = []
        for file in Self.files {
            let model = try ModelStore.load(ModelRequest(model: f.dir.appendingPathComponent(file).path))
            XCTAssertEqual(model.spec.architecture, arch.replacingOccurrences(of: "_v2", with: "_v2") + "-keras", "\(file): recognised as the Keras form")
            let logits = GradMode.withoutGrad { model(Self.input(f.pixels[...], n: f.n, size: size, model: model)) }.data
            let maxAbs = f.logits.map(abs).max()!
            let worst = zip(logits, f.logits).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(worst, 1e-4 * maxAbs, "\(arch)/\(file): max |Δlogit| \(worst), max |logit| \(maxAbs)")
            tops = []
            for i in 0..<f.n {
                let row = Array(logits[(i * 1000)..<((i + 1) * 1000)]), ref = Array(f.logits[(i * 1000)..<((i + 1) * 1000)])
                let top = Array(row.indices.sorted { row[$0] > row[$1] }.prefix(5))
                XCTAssertEqual(top, Array(ref.indices.sorted { ref[$0] > ref[$1] }.prefix(5)), "\(arch)/\(file) input \(i) top-5")
                tops.append(top)
            }
            XCTAssertGreaterThan(Set(tops).count, 1, "\(arch): the logits must depend on the input")
            print("keras parity \(arch) \(file): max |Δlogit| = \(worst) (max |logit| \(maxAbs), bound \(1e-4 * maxAbs)), top-5 \(tops)")
        }
        // Keras' input gradient of one logit (NHWC, on the normalized input) against ours, through the .keras import.
        let model = try ModelStore.load(ModelRequest(model: f.dir.appendingPathComponent("model.keras").path))
        let grad = f.meta["grad"] as! [String: Any], cls = grad["class"] as! Int
        let x = Self.input(f.pixels[0..<(plane)], n: 1, size: size, model: model).detached(requiresGrad: true)
        sum(selectColumn(model(x), cls)).backward()
        let g = x.grad!
        var dot = 0.0, gg = 0.0, rr = 0.0
        for p in 0..<(size * size) { for c in 0..<3 {
            let a = Double(g[c * size * size + p]), b = Double(f.grad[p * 3 + c])
            dot += a * b; gg += a * a; rr += b * b
        } }
        let cosine = dot / (gg.squareRoot() * rr.squareRoot())
        XCTAssertGreaterThanOrEqual(cosine, 0.999, "\(arch): input gradient against Keras'")
        print("keras parity \(arch): gradient cosine \(cosine)")
    }

    func testVGG16() throws { try check("vgg16") }
    func testVGG19() throws { try check("vgg19") }
    func testResNet50() throws { try check("resnet50") }
    func testMobileNetV2() throws { try check("mobilenet_v2") }

    /// Keras 3's `model.layers` order (which a `.weights.h5` numbers by) as our builder computes it, against the
    /// order Keras itself listed.
    func testLayerOrderIsKeras() throws {
        for (arch, form) in [("vgg16", KerasApplications.vgg16), ("resnet50", KerasApplications.resnet50), ("mobilenet_v2", KerasApplications.mobilenetV2)] {
            let f = try fixture(arch)
            let keras = (f.meta["weight_layers"] as! [String])
            XCTAssertEqual(form.keras.filter { !$0.variables.isEmpty }.map(\.name), keras, arch)
        }
    }

    /// VGG16's block3_conv2 (after its ReLU) against Keras' layer output.
    func testVGG16LayerOutput() throws {
        let f = try fixture("vgg16")
        let ref = try Data(contentsOf: f.dir.appendingPathComponent("block3_conv2.bin")).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let model = try ModelStore.load(ModelRequest(model: f.dir.appendingPathComponent("keras1.h5").path))
        let out = GradMode.withoutGrad { model.forward(Self.input(f.pixels[...], n: f.n, size: 224, model: model), capture: ["block3_conv2"]) }["block3_conv2"]!
        let n = ref.count / (56 * 56 * 256)
        var worst: Float = 0
        for i in 0..<n { for p in 0..<(56 * 56) { for c in 0..<256 {
            worst = max(worst, abs(out.data[((i * 256 + c) * 56 * 56) + p] - ref[(i * 56 * 56 + p) * 256 + c]))
        } } }
        let scale = ref.map(abs).max()!
        XCTAssertLessThanOrEqual(worst, 1e-4 * scale, "block3_conv2 max |Δ| \(worst) of \(scale)")
        print("keras parity vgg16 block3_conv2: max |Δ| \(worst) (max \(scale))")
    }
}
