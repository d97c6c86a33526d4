import XCTest
import TestSupport
@testable import Engine
@testable import Models

/// A built-in architecture with the given weights for every parameter (geometry and control flow only).
func model(_ arch: Architecture, fill: (String, [Int]) -> Tensor = { Tensor(zeros: $1) }) throws -> GraphModel {
    let shapes = try ShapeInference.expectedParameterShapes(of: arch.graph, height: arch.inputSize, width: arch.inputSize)
    return try GraphModel(spec: arch.spec(sha256: "0", file: "test"), graph: arch.graph,
                          weights: Dictionary(uniqueKeysWithValues: shapes.map { ($0.key, fill($0.key, $0.value)) }))
}

final class GraphTests: XCTestCase {
    func testLite0LayerTableReceptiveFields() throws {
        let model = try model(EfficientNetLite.lite0)
        // Today's user-facing names all exist: stem, 16 blocks with their inner layers, head, pool, logits.
        for name in ["stem", "head", "pool", "logits"] + (0..<16).flatMap({ ["blocks.\($0)", "blocks.\($0).depthwise", "blocks.\($0).project"] })
            + (1..<16).map({ "blocks.\($0).expand" }) {
            XCTAssertNotNil(model.layerInfo(named: name), name)
        }
        XCTAssertEqual(model.layers.filter { $0.kind == .conv }.count, 1 + 2 + 15 * 3 + 1)
        func rf(_ name: String) -> [Int] { let l = model.layerInfo(named: name)!; return [l.receptiveField, l.jump] + l.shape }
        // By hand: rf += (k-1)·jump, jump *= stride.
        XCTAssertEqual(rf("stem"), [3, 2, 32, 112, 112])
        XCTAssertEqual(rf("blocks.0.depthwise"), [7, 2, 32, 112, 112])
        XCTAssertEqual(rf("blocks.1.depthwise"), [11, 4, 96, 56, 56])
        XCTAssertEqual(rf("blocks.3"), [35, 8, 40, 28, 28])
        XCTAssertEqual(rf("blocks.11"), [403, 32, 192, 7, 7])
        XCTAssertEqual(rf("blocks.15"), [403 + 3 * 4 * 32 + 2 * 32, 32, 320, 7, 7])
        XCTAssertEqual(model.layerInfo(named: "logits")!.shape, [1000])
        // TF-SAME stride 2 pads only right/bottom at 224: the stem's first unit sees pixels 0…2.
        let box = model.layerInfo(named: "stem")!.receptiveBox(x: 0, y: 0)
        XCTAssertEqual([box.x0, box.y0, box.side], [0, 0, 3])
        XCTAssertEqual(model.multiplyAdds(), 385_187_552)  // the reference README's count
        XCTAssertThrowsError(try model.resolveLayer("block.5")) { error in
            XCTAssertTrue(String(describing: error).contains("blocks.5"), String(describing: error))
        }
    }

    func testForwardStopsAtTheRequestedLayer() throws {
        let model = try model(EfficientNetLite.lite0)
        let before = convForwardCount, fusedBefore = InvertedBottleneck.forwardCount
        let acts = GradMode.withoutGrad { model.forward(Tensor(zeros: [1, 3, 224, 224]), capture: ["blocks.3"]) }
        XCTAssertEqual(Array(acts.keys), ["blocks.3"])
        // Stem, block 0 (2 convs), blocks 1–3 (3 each, or one fused pass each on AVX-512).
        let fused = InvertedBottleneck.forwardCount - fusedBefore
        XCTAssertEqual(convForwardCount - before + 3 * fused, 1 + 2 + 3 * 3)
        XCTAssertEqual(fused, MicroKernel.avx512 ? 3 : 0)
        XCTAssertEqual(acts["blocks.3"]!.shape, [1, 40, 28, 28])
    }

    /// Multiply-adds of the torchvision architectures as torchvision documents them (GFLOPS = G multiply-adds).
    func testZooShapesAndMultiplyAdds() throws {
        let expected: [String: (Double, [Int])] = ["vgg16": (15.47, [512, 7, 7]), "vgg19": (19.63, [512, 7, 7]),
                                                   "resnet50": (4.09, [2048, 7, 7]), "mobilenet_v2": (0.30, [1280, 7, 7])]
        for (name, (gmacs, last)) in expected {
            let arch = try XCTUnwrap(Zoo.architecture(named: name))
            let shapes = try ShapeInference.expectedParameterShapes(of: arch.graph, height: 224, width: 224)
            let layers = try ShapeInference.layers(of: arch.graph, height: 224, width: 224, parameterShapes: shapes)
            let macs = Double(layers.filter { $0.kind == .conv || $0.kind == .linear }.map(\.multiplyAdds).reduce(0, +)) / 1e9
            XCTAssertEqual(macs, gmacs, accuracy: 0.01, name)
            XCTAssertEqual(layers.last?.shape, [1000], name)
            XCTAssertEqual(layers.last { $0.shape.count == 3 }?.shape, last, name)
            for n in arch.galleryLayers + arch.blocks + [arch.defaultLayer, arch.embedding] {
                XCTAssertTrue(layers.contains { $0.name == n }, "\(name): \(n)")
            }
        }
    }

    /// Fusion (BN folded, ReLU in the conv) gives what the unfused graph gives.
    func testFusedAndUnfusedForwardAgree() throws {
        var rng = TestRNG(seed: 3)
        let net = try model(MobileNetV2.torchvision) { name, shape in
            let n = shape.reduce(1, *)
            if name.hasSuffix("running_var") || (name.hasSuffix(".weight") && shape.count == 1) {
                return Tensor(shape: shape, data: rng.uniform(n, in: 0.8...1.2))
            }
            let fanIn = shape.count > 1 ? shape.dropFirst().reduce(1, *) : 1
            return Tensor(shape: shape, data: rng.uniform(n, in: -1...1).map { $0 * (3 / Float(fanIn)).squareRoot() })
        }
        let x = rng.tensor([1, 3, 64, 64], grad: false)
        let fused = GradMode.withoutGrad { net(x) }
        net.setParametersRequireGrad(true)  // parameters needing gradients: the graph runs as written
        let unfused = net(x)
        net.setParametersRequireGrad(false)
        let scale = fused.data.map(abs).max()!
        XCTAssertGreaterThan(scale, 0)
        XCTAssertLessThan(zip(fused.data, unfused.data).map { abs($0 - $1) }.max()! / scale, 1e-4)
    }

    func testBadGraphsAndWeightsNameTheProblem() throws {
        var g = GraphBuilder()
        g.conv("c", filters: 4, kernel: 3, padding: .same)
        g.add("sum", .add, inputs: ["c", "nowhere"])
        XCTAssertThrowsError(try g.build().validate()) { XCTAssertTrue("\($0)".contains("nowhere"), "\($0)") }
        let arch = VGG.vgg16
        var shapes = try ShapeInference.expectedParameterShapes(of: arch.graph, height: 224, width: 224)
        shapes["features.10.weight"] = [256, 128, 3, 1]
        XCTAssertThrowsError(try ShapeInference.layers(of: arch.graph, height: 224, width: 224, parameterShapes: shapes)) {
            XCTAssertEqual("\($0)", "tensor 'features.10.weight' has shape [256, 128, 3, 1], expected [256, 128, 3, 3]")
        }
        shapes["features.10.weight"] = nil
        XCTAssertThrowsError(try ShapeInference.layers(of: arch.graph, height: 224, width: 224, parameterShapes: shapes)) {
            XCTAssertTrue("\($0)".contains("'features.10.weight'") && "\($0)".contains("missing"), "\($0)")
        }
    }

    /// What a bundle's model.json could declare, refused at load rather than trapping later.
    func testHostileGraphsAreRefusedAtLoad() throws {
        // Channels doubled by a chain of concats: far past any real network before Int could overflow.
        var g = GraphBuilder()
        var last = g.input
        for i in 0..<64 { last = g.add("c\(i)", .concat, inputs: [last, last]) }
        XCTAssertThrowsError(try ShapeInference.layers(of: g.build(), height: 32, width: 32, parameterShapes: [:])) {
            XCTAssertTrue("\($0)".contains("output shape"), "\($0)")
        }
        // Strides multiplied up through pools that 'same' padding never lets shrink to nothing.
        var p = GraphBuilder()
        for i in 0..<5 { p.add("p\(i)", .maxPool(kernel: 1, stride: 65536, padding: .same)) }
        XCTAssertThrowsError(try ShapeInference.layers(of: p.build(), height: 32, width: 32, parameterShapes: [:]))
        // Average pooling whose padding covers a whole window (a zero divisor).
        var a = GraphBuilder()
        a.add("avg", .avgPool(kernel: 2, stride: 1, padding: .symmetric(2), countPadding: false))
        XCTAssertThrowsError(try ShapeInference.layers(of: a.build(), height: 8, width: 8, parameterShapes: [:]))
        // A spec whose preprocessing does not produce the input size.
        var d = GraphBuilder()
        d.add("pool", .globalAveragePool)
        d.dense("fc", units: 2)
        var spec = ModelSpec(architecture: "graph", weightsSHA256: "", weightsFile: "", inputSize: 32, preprocessing: .lite(crop: 64),
                             labels: ["a", "b"], logits: "fc", embedding: "pool", defaultLayer: "pool", galleryLayers: [], blocks: [])
        let w = ["fc.weight": Tensor(zeros: [2, 3]), "fc.bias": Tensor(zeros: [2])]
        XCTAssertThrowsError(try GraphModel(spec: spec, graph: d.build(), weights: w)) { XCTAssertTrue("\($0)".contains("crops 64"), "\($0)") }
        spec.preprocessing = .lite(crop: 32)
        XCTAssertNoThrow(try GraphModel(spec: spec, graph: d.build(), weights: w))
    }

    /// A flatten → dense head takes only its own input size; other sizes are refused by name, not trapped.
    func testInputSizesTheGraphCannotTake() throws {
        let vgg = try model(VGG.vgg16)
        XCTAssertNoThrow(try vgg.checkInputSize(height: 64, width: 64))  // the adaptive pool makes any size 7×7
        var g = GraphBuilder()
        g.conv("conv", filters: 2, kernel: 3, stride: 2, padding: .same)
        g.add("flatten", .flatten(channelsLast: true))
        g.dense("fc", units: 2)
        let spec = ModelSpec(architecture: "graph", weightsSHA256: "", weightsFile: "", inputSize: 32, preprocessing: .lite(crop: 32),
                             labels: ["a", "b"], logits: "fc", embedding: "flatten", defaultLayer: "conv", galleryLayers: [], blocks: [])
        let m = try GraphModel(spec: spec, graph: g.build(), weights: ["conv.weight": Tensor(zeros: [2, 3, 3, 3]), "fc.weight": Tensor(zeros: [2, 512]), "fc.bias": Tensor(zeros: [2])])
        XCTAssertNoThrow(try m.checkInputSize(height: 32, width: 32))
        XCTAssertThrowsError(try m.checkInputSize(height: 64, width: 64)) { XCTAssertTrue("\($0)".contains("fc.weight"), "\($0)") }
    }
}
