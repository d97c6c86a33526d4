import XCTest
import Engine
@testable import Models

/// Parity with onnxruntime itself on models exported by `torch.onnx.export` (scripts/parity-fixtures: the real
/// EfficientNet-Lite0, torchvision-layout ResNet-50 and MobileNetV2 at opsets 11/13/17, ResNet-50 with external
/// data), and the Lite0 import against vizlab's native Lite0.
final class ONNXParityTests: XCTestCase {
    static let root = WeightStore.home.appendingPathComponent("parity/onnx-v1")

    func fixture(_ name: String) throws -> (dir: URL, meta: [String: Any], inputs: [Float], ort: [Float]) {
        guard FileManager.default.fileExists(atPath: Self.root.appendingPathComponent("DONE").path) else {
            let message = "ONNX parity fixtures missing at \(Self.root.path): run scripts/parity-fixtures (make test does)"
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail(message) }
            throw XCTSkip(message)
        }
        let dir = Self.root.appendingPathComponent(name)
        func floats(_ f: String) throws -> [Float] { try Data(contentsOf: dir.appendingPathComponent(f)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } }
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("meta.json"))) as! [String: Any]
        return (dir, meta, try floats("inputs.bin"), try floats("ort.bin"))
    }

    @discardableResult
    func check(_ name: String, preprocess: Preprocessing.Mode? = nil) throws -> (model: any VisionModel, input: Tensor, logits: Tensor) {
        let f = try fixture(name)
        let shape = f.meta["input_shape"] as! [Int]
        let model = try ModelStore.load(ModelRequest(model: f.dir.appendingPathComponent("model.onnx").path, preprocess: preprocess))
        XCTAssertTrue(model is ONNXModel)
        let x = Tensor(shape: shape, data: f.inputs)
        let logits = GradMode.withoutGrad { model(x) }
        let maxAbs = f.ort.map(abs).max()!
        let worst = zip(logits.data, f.ort).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(worst, 1e-4 * maxAbs, "\(name): max |Δ| \(worst) against onnxruntime, max |logit| \(maxAbs)")
        var tops: Set<[Int]> = []
        for i in 0..<shape[0] {
            let row = Array(logits.data[(i * 1000)..<((i + 1) * 1000)]), ref = Array(f.ort[(i * 1000)..<((i + 1) * 1000)])
            let top = Array(row.indices.sorted { row[$0] > row[$1] }.prefix(5))
            XCTAssertEqual(top, Array(ref.indices.sorted { ref[$0] > ref[$1] }.prefix(5)), "\(name) input \(i) top-5")
            tops.insert(top)
        }
        XCTAssertGreaterThan(tops.count, 1, "\(name): the logits depend on the input")
        print("onnx parity \(name): max |Δlogit| vs onnxruntime = \(worst) (max |logit| \(maxAbs)), \(model.layers.count) layers, top-5 distinct \(tops.count)")
        return (model, x, logits)
    }

    func testLite0AgainstOnnxRuntimeAndNative() throws {
        let (onnx, x, logits) = try check("lite0", preprocess: .lite)
        let native = try ModelStore.load(ModelRequest(model: "lite0"))
        let ref = GradMode.withoutGrad { native(x) }
        let worst = zip(logits.data, ref.data).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(worst, 1e-4 * ref.data.map(abs).max()!, "ONNX Lite0 vs native Lite0: max |Δ| \(worst)")
        // Input gradients agree with the native model's (the lab attacks and renders imported models).
        let one = Tensor(shape: [1, 3, 224, 224], data: Array(x.data[0..<(3 * 224 * 224)]), requiresGrad: true)
        sum(selectColumn(onnx(one), 282)).backward()
        let g1 = one.grad!
        let two = one.detached(requiresGrad: true)
        sum(selectColumn(native(two), 282)).backward()
        let g2 = two.grad!
        var dot = 0.0, a = 0.0, b = 0.0
        for (p, q) in zip(g1, g2) { dot += Double(p) * Double(q); a += Double(p * p); b += Double(q * q) }
        let cosine = dot / (a.squareRoot() * b.squareRoot())
        XCTAssertGreaterThanOrEqual(cosine, 0.9999, "input gradient cosine to the native Lite0")
        print("onnx parity lite0: max |Δlogit| vs native Lite0 = \(worst), input-gradient cosine \(cosine)")
    }

    func testResNet50() throws { try check("resnet50") }
    func testMobileNetV2Opsets() throws { for n in ["mobilenet_v2", "mobilenet_v2_op11", "mobilenet_v2_op13"] { try check(n) } }

    /// Keras' own ONNX export (Keras 3 on torch: NHWC input, BN unfolded, Shape/Gather/Transpose around it) of the
    /// random-weight keras.applications MobileNetV2 — against onnxruntime and against vizlab's import of the same
    /// weights from Keras' .keras file.
    func testKerasOwnExportOfMobileNetV2() throws {
        let f = try fixture("keras_mobilenet_v2")
        let shape = f.meta["input_shape"] as! [Int]  // NHWC
        let (n, h, w) = (shape[0], shape[1], shape[2])
        var nchw = [Float](repeating: 0, count: f.inputs.count)
        for i in 0..<n { for p in 0..<(h * w) { for c in 0..<3 { nchw[(i * 3 + c) * h * w + p] = f.inputs[(i * h * w + p) * 3 + c] } } }
        let model = try ModelStore.load(ModelRequest(model: f.dir.appendingPathComponent("model.onnx").path, preprocess: .tf))
        let x = Tensor(shape: [n, 3, h, w], data: nchw)
        let logits = GradMode.withoutGrad { model(x) }
        let maxAbs = f.ort.map(abs).max()!
        let worst = zip(logits.data, f.ort).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(worst, 1e-4 * maxAbs, "Keras' ONNX export: max |Δ| \(worst) against onnxruntime, max |logit| \(maxAbs)")
        let keras = try ModelStore.load(ModelRequest(model: WeightStore.home.appendingPathComponent("parity/keras-v1/mobilenet_v2/model.keras").path))
        let native = GradMode.withoutGrad { keras(x) }
        let apart = zip(logits.data, native.data).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(apart, 1e-4 * maxAbs, "the ONNX export and the .keras import of the same weights")
        print("onnx parity keras_mobilenet_v2: max |Δlogit| vs onnxruntime = \(worst) (max |logit| \(maxAbs)); vs the .keras import \(apart)")
    }

    func testExternalDataFromTheModelsFolder() throws {
        let (model, _, logits) = try check("resnet50_external")
        let plain = try check("resnet50").logits
        XCTAssertEqual(logits.data, plain.data, "external data reads the same weights")
        XCTAssertTrue(model.layers.contains { $0.name.hasPrefix("/layer1/") }, "layers keep the exporter's node names")
    }
}
