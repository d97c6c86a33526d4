import Foundation
import XCTest
@testable import Engine

final class SupportTests: XCTestCase {
    func testSHA256KnownVectors() {
        // FIPS 180-4 examples.
        XCTAssertEqual(SHA256.hex(of: Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(of: Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(of: Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Streaming in odd pieces gives the same digest as one call.
        var h = SHA256()
        let million = Data(repeating: UInt8(ascii: "a"), count: 1_000_000)
        var offset = 0
        for piece in [1, 63, 64, 65, 999_807] { h.update(million[offset..<(offset + piece)]); offset += piece }
        XCTAssertEqual(h.finalize().map { String(format: "%02x", $0) }.joined(),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testMissingAndTamperedWeightsExplainTheFix() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vizlab-weights-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("absent.pth")
        XCTAssertThrowsError(try WeightStore.verify(missing)) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains("not found") && text.contains(WeightStore.fixCommand), text)
        }
        let tampered = dir.appendingPathComponent("tampered.pth")
        try Data("not the weights".utf8).write(to: tampered)
        XCTAssertThrowsError(try WeightStore.loadLite0(from: tampered)) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains("sha256") && text.contains(WeightStore.fixCommand), text)
        }
    }

    func testClassLookupByIndexNameAndSynonym() {
        let labels = ImageNetLabels.shared
        XCTAssertEqual(labels.count, 1000)
        XCTAssertEqual(labels.lookup("281"), .found(281))
        XCTAssertEqual(labels.lookup("tabby"), .found(281))
        XCTAssertEqual(labels.lookup("Tabby Cat"), .found(281))       // synonym, any case
        XCTAssertEqual(labels.lookup("Pekingese"), .found(154))
        XCTAssertEqual(labels.lookup("tiger cat"), .found(282))
        XCTAssertEqual(labels.lookup("1000"), .notFound(suggestions: []))
        if case .ambiguous(let candidates) = labels.lookup("crane") {  // the bird (134) and the machine (517)
            XCTAssertEqual(candidates, [134, 517])
        } else { XCTFail("'crane' should be ambiguous") }
        if case .notFound(let suggestions) = labels.lookup("pekinees") {
            XCTAssertEqual(suggestions.first, "Pekinese")
        } else { XCTFail("'pekinees' should not resolve") }
    }

    func testLayerTableReceptiveFields() throws {
        // Geometry only: a model with random weights has the same layer table as the real one.
        let model = try EfficientNetLite.lite0 { _, shape in Tensor(zeros: shape) }
        XCTAssertEqual(model.layers.count, 1 + 15 * 4 + 3 + 3)  // stem, 16 blocks (block 0 has no expand), head, pool, logits
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
        let model = try EfficientNetLite.lite0 { _, shape in Tensor(zeros: shape) }
        let before = convForwardCount
        let acts = GradMode.withoutGrad { model.forward(Tensor(zeros: [1, 3, 224, 224]), capture: ["blocks.3"]) }
        XCTAssertEqual(Array(acts.keys), ["blocks.3"])
        XCTAssertEqual(convForwardCount - before, 1 + 2 + 3 * 3)  // stem, block 0 (2 convs), blocks 1–3 (3 each)
        XCTAssertEqual(acts["blocks.3"]!.shape, [1, 40, 28, 28])
    }
}
