import Foundation
import XCTest
@testable import Engine

/// Decoders against fixtures from scripts/make_image_fixtures.py: PNG pixels known by construction, JPEG pixels
/// as Pillow decodes them, WebP lossless; and every kind of bad file as a one-line error.
final class ImageIOTests: XCTestCase {
    let dir = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("images")

    func expected() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("expected.json"))) as! [String: Any]
    }

    func decode(_ name: String) throws -> RGBAImage { try ImageDecoder.decode(contentsOf: dir.appendingPathComponent(name)) }

    func testPNGKindsDecodeToExactRGBA() throws {
        let exp = try expected()
        for name in ["rgb8.png", "rgba8.png", "gray8.png", "gray_alpha.png", "rgb16.png", "palette_trns.png", "lossless.webp"] {
            let image = try decode(name)
            XCTAssertEqual([image.width, image.height], [5, 4], name)
            XCTAssertEqual(image.pixels, (exp[name] as! [Int]).map(UInt8.init), name)
        }
    }

    func testJPEGsMatchAnIndependentDecoder() throws {
        let exp = try expected()
        for name in ["rgb.jpg", "gray.jpg", "cmyk.jpg"] {
            let image = try decode(name)
            let ref = (exp[name] as! [Int]).map(UInt8.init)
            XCTAssertEqual(image.pixels.count, ref.count, name)
            let worst = zip(image.pixels, ref).map { abs(Int($0) - Int($1)) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, 2, "\(name): max difference to Pillow's decode")
        }
    }

    func testEXIFOrientationIsApplied() throws {
        let exp = try expected()["exif_rotate90.jpg"] as! [String: Any]
        let image = try decode("exif_rotate90.jpg")
        XCTAssertEqual([image.width, image.height], exp["size"] as! [Int])
        let ref = (exp["pixels"] as! [Int]).map(UInt8.init)
        XCTAssertLessThanOrEqual(zip(image.pixels, ref).map { abs(Int($0) - Int($1)) }.max() ?? 99, 2)
    }

    func testBadFilesGiveOneLineErrors() {
        let cases = [("corrupt.png", "corrupt PNG"), ("truncated.jpg", "truncated"), ("corrupt.jpg", "corrupt JPEG"),
                     ("corrupt.webp", "corrupt WebP"), ("empty.png", "empty file"), ("text.png", "not an image"),
                     ("huge_header.png", "20000x20000 pixels exceeds"), ("absent.png", "no such file")]
        for (name, needle) in cases {
            XCTAssertThrowsError(try decode(name), name) { error in
                let text = String(describing: error)
                XCTAssertTrue(text.hasPrefix(name + ": ") && text.contains(needle), "\(name): \(text)")
                XCTAssertFalse(text.contains("\n"), text)
            }
        }
    }

    func testPNGEncodeRoundTripAndAtomicWrite() throws {
        let rgb = RGBImage(width: 7, height: 3, pixels: (0..<63).map { UInt8(($0 * 37) % 256) })
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("vizlab-png-\(getpid())")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: out) }
        let file = out.appendingPathComponent("x.png")
        try PNGEncoder.write(rgb, to: file)
        let back = try ImageDecoder.decode(contentsOf: file)
        XCTAssertEqual(Preprocess.compositeOnWhite(back), rgb)
        let rgba = try decode("rgba8.png")
        XCTAssertEqual(try ImageDecoder.decode(data: try PNGEncoder.encode(rgba), name: "mem.png"), rgba)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path), ["x.png"], "no temp files left")
    }

    func testPreprocessingPieces() {
        // torchvision semantics: shorter side to 256, longer rounded; centre crop with round-half-to-even offsets.
        XCTAssertTrue(Preprocess.resizedSize(width: 451, height: 300, shorter: 256) == (385, 256))
        XCTAssertTrue(Preprocess.resizedSize(width: 300, height: 451, shorter: 256) == (256, 385))
        XCTAssertTrue(Preprocess.resizedSize(width: 512, height: 512, shorter: 256) == (256, 256))
        let rowBytes = 224 * 3
        let rows: [UInt8] = (0..<257).flatMap { (y: Int) -> [UInt8] in [UInt8](repeating: UInt8(y % 256), count: rowBytes) }
        let tall = RGBImage(width: 224, height: 257, pixels: rows)
        XCTAssertEqual(Preprocess.centerCrop(tall, size: 224)[0, 0, 0], 16)  // top = round(16.5) = 16
        // Half-transparent red over white.
        let px = Preprocess.compositeOnWhite(RGBAImage(width: 1, height: 1, pixels: [255, 0, 0, 128]))
        XCTAssertEqual(px.pixels, [255, 127, 127])
        // Bicubic keeps a constant image constant (weights sum to one in fixed point).
        let flat = RGBImage(width: 40, height: 30, pixels: [UInt8](repeating: 200, count: 40 * 30 * 3))
        XCTAssertEqual(Set(Preprocess.resizeBicubic(flat, width: 13, height: 11).pixels), [200])
    }
}
