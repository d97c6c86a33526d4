import Foundation
import XCTest
import Engine
@testable import Models

/// Decoding + preprocessing of the real sample photos against the reference's preprocessed tensors
/// (PIL + torchvision), so `classify` on a file sees exactly what the reference model saw.
final class PreprocessParityTests: XCTestCase {
    func testSamplePhotosMatchReferenceTensors() throws {
        let samples = WeightStore.home.appendingPathComponent("samples")
        for (photo, bin) in [("chelsea.png", "skimage_chelsea.png.bin"), ("chicky_512.png", "opencv_chicky_512.png.bin"),
                             ("coffee.png", "skimage_coffee.png.bin")] {
            let url = samples.appendingPathComponent(photo)
            guard FileManager.default.fileExists(atPath: url.path) else {
                if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("\(url.path) missing under CI") }
                throw XCTSkip("sample photos not fetched: run `make setup`")
            }
            let refURL = ReferenceParityTests.referenceDir.appendingPathComponent(bin)
            let ref = try Data(contentsOf: refURL).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            let ours = EfficientNetLite.lite0.preprocessing.input(try ImageDecoder.decode(contentsOf: url))  // the spec's pipeline
            XCTAssertEqual(ours.shape, [1, 3, 224, 224])
            let diffs = zip(ours.data, ref).map { abs($0 - $1) }
            let worst = diffs.max()!, exact = Double(diffs.filter { $0 == 0 }.count) / Double(diffs.count)
            print("preprocess \(photo): max |Δ| = \(worst) (\(worst * 128) levels), exact \(String(format: "%.4f", exact * 100))%")
            XCTAssertEqual(worst, 0, "\(photo): our decode + resize + crop reproduce the reference bit for bit")
        }
    }
}
