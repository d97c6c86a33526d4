import Foundation
import XCTest
import TestSupport
@testable import Visualize

/// The dataset-examples index on the real model: incremental runs, removed and bad files, and lists that match
/// the model's own ranking.
final class ExampleIndexTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("vizlab-index-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch.appendingPathComponent("photos/sub"), withIntermediateDirectories: true)
    }

    override func tearDown() { if let s = scratch { try? FileManager.default.removeItem(at: s) } }

    static func crc32(_ data: Data) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in data { c ^= UInt32(b); for _ in 0..<8 { c = (c >> 1) ^ (c & 1 == 1 ? 0xEDB8_8320 : 0) } }
        return ~c
    }

    /// Writes `count` distinct smooth random images as PNG (some in a subfolder: the walk is recursive).
    static func writeImages(_ folder: URL, count: Int, seed: UInt64, prefix: String = "img") throws {
        var rng = TestRNG(seed: seed)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("sub"), withIntermediateDirectories: true)
        for i in 0..<count {
            let w = Int.random(in: 230...320, using: &rng), h = Int.random(in: 230...300, using: &rng)
            let p = rng.uniform(9, in: 0...6), f = rng.uniform(2, in: 5...40)
            var px = [UInt8](repeating: 0, count: w * h * 3)
            for y in 0..<h { for x in 0..<w { for c in 0..<3 {
                let v = 128 + 90 * sin(Float(x) / f[0] + p[c]) * cos(Float(y) / f[1] + p[3 + c]) + 30 * sin(Float(x + y) / 7 + p[6 + c])
                px[(y * w + x) * 3 + c] = UInt8(max(0, min(255, v)))
            } } }
            let dir = i % 3 == 0 ? folder.appendingPathComponent("sub") : folder
            try PNGEncoder.write(RGBImage(width: w, height: h, pixels: px), to: dir.appendingPathComponent("\(prefix)\(i).png"))
        }
    }

    func testIncrementalRunsTouchOnlyWhatChanged() throws {
        let model = try pretrainedModel()
        let photos = scratch.appendingPathComponent("photos")
        try Self.writeImages(photos, count: 10, seed: 1)
        let index = try ExampleIndex(url: scratch.appendingPathComponent("index.sqlite"))
        let indexer = Indexer(layers: ["blocks.5", "logits"], k: 4, batch: 4)
        let first = try indexer.run(root: photos, index: index, model: model)
        XCTAssertEqual([first.found, first.new, first.unchanged, first.failed.count], [10, 10, 0, 0])

        try Self.writeImages(photos, count: 3, seed: 2, prefix: "more")
        let second = try indexer.run(root: photos, index: index, model: model)
        XCTAssertEqual([second.found, second.new, second.unchanged, second.processed], [13, 3, 10, 3], "only the 3 new files are processed")

        // Same bytes, newer mtime → touched, not re-run; new bytes → changed; deleted → removed from the lists.
        let touched = photos.appendingPathComponent("img1.png"), changed = photos.appendingPathComponent("img2.png")
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(60)], ofItemAtPath: touched.path)
        try Self.writeImages(scratch, count: 1, seed: 9, prefix: "replacement")
        try FileManager.default.removeItem(at: changed)
        try FileManager.default.moveItem(at: scratch.appendingPathComponent("sub/replacement0.png"), to: changed)
        let gone = photos.appendingPathComponent("img4.png")
        try FileManager.default.removeItem(at: gone)
        let third = try indexer.run(root: photos, index: index, model: model)
        XCTAssertEqual([third.found, third.touched, third.changed, third.removed, third.new], [12, 1, 1, 1, 0])
        let lists = try index.allLists()
        XCTAssertEqual(lists.count, (80 + 1000) * 4)
        XCTAssertFalse(lists.values.contains { $0.contains(gone.standardizedFileURL.path) }, "a removed file is still listed")
        XCTAssertEqual(try index.integrityCheck(), "ok")
    }

    /// The stored top list of a logit is the model's own ranking of the images by that logit.
    func testListsMatchTheModelsRanking() throws {
        let model = try pretrainedModel()
        let photos = scratch.appendingPathComponent("photos")
        try Self.writeImages(photos, count: 9, seed: 3)
        let index = try ExampleIndex(url: scratch.appendingPathComponent("index.sqlite"))
        _ = try Indexer(layers: ["logits"], k: 5, batch: 3).run(root: photos, index: index, model: model)
        for unit in [281, 500, 954] {
            let direct = try Indexer.imageFiles(under: photos).map { url -> (String, Float) in
                let z = GradMode.withoutGrad { model(Preprocess.modelInput(try! ImageDecoder.decode(contentsOf: url))) }
                return (url.path, z.data[unit])
            }.sorted { $0.1 > $1.1 }
            let stored = try index.ranked(layer: "logits", channel: unit, by: .max, end: .top, limit: 5)
            XCTAssertEqual(stored.map(\.1), direct.prefix(5).map(\.0), "logit \(unit)")
            for (s, d) in zip(stored, direct) { XCTAssertEqual(s.0.value, d.1, accuracy: 1e-4) }
            let bottom = try index.ranked(layer: "logits", channel: unit, by: .mean, end: .bottom, limit: 2)
            XCTAssertEqual(bottom.map(\.1), direct.suffix(2).reversed().map(\.0))
        }
    }

    /// 0-byte, truncated JPEG, text named .png, a PNG header claiming 170 megapixels: each recorded with its error,
    /// the run completes, the good images are indexed.
    /// The one-pass k-best against a full sort by (value, position), with many ties (a dead channel, a clamp at 6),
    /// both ends, k above and below n, and k = 0.
    func testBestKEqualsAFullSortWithTiesByPosition() {
        var rng = TestRNG(seed: 41)
        for n in [0, 1, 5, 40, 847] {
            let values = (0..<n).map { _ -> Float in
                let u = rng.uniform(1)[0]
                return u < -0.5 ? 0 : u > 0.6 ? 6 : (u * 8).rounded() / 8
            }
            for end in RankEnd.allCases {
                let reference = values.indices.sorted { i, j in
                    if values[i] != values[j] { return end == .top ? values[i] > values[j] : values[i] < values[j] }
                    return i < j
                }
                for k in [0, 1, 3, 32, 2000] {
                    XCTAssertEqual(Ranking.best(values, k: k, end: end), Array(reference.prefix(k)), "n \(n), k \(k), \(end)")
                }
            }
        }
    }

    func testBadFilesAreRecordedAndSkipped() throws {
        let model = try pretrainedModel()
        let photos = scratch.appendingPathComponent("photos")
        try Self.writeImages(photos, count: 3, seed: 4)
        try Data().write(to: photos.appendingPathComponent("empty.jpg"))
        try Data("hello, I am text".utf8).write(to: photos.appendingPathComponent("text.png"))
        // A real JPEG cut in half.
        let jpeg = WeightStore.home.appendingPathComponent("samples/baboon.jpg")
        if let d = try? Data(contentsOf: jpeg) { try d.prefix(d.count / 2).write(to: photos.appendingPathComponent("truncated.jpg")) }
        // A PNG whose header says 13000 × 13100 (170 megapixels): refused before any pixel is decoded.
        var ihdr = Data([0x49, 0x48, 0x44, 0x52])
        for v in [UInt32(13000), UInt32(13100)] { withUnsafeBytes(of: v.bigEndian) { ihdr.append(contentsOf: $0) } }
        ihdr.append(contentsOf: [8, 2, 0, 0, 0])
        var huge = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]) + ihdr
        withUnsafeBytes(of: Self.crc32(ihdr).bigEndian) { huge.append(contentsOf: $0) }
        for chunk in [Data([0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]), Data([0x49, 0x45, 0x4E, 0x44])] {
            withUnsafeBytes(of: UInt32(chunk.count - 4).bigEndian) { huge.append(contentsOf: $0) }
            huge.append(chunk)
            withUnsafeBytes(of: Self.crc32(chunk).bigEndian) { huge.append(contentsOf: $0) }
        }
        try huge.write(to: photos.appendingPathComponent("huge.png"))
        let index = try ExampleIndex(url: scratch.appendingPathComponent("index.sqlite"))
        let summary = try Indexer(layers: ["logits"], k: 3, batch: 4).run(root: photos, index: index, model: model)
        let failed = Dictionary(uniqueKeysWithValues: summary.failed.map { (URL(fileURLWithPath: $0.path).lastPathComponent, $0.error) })
        let expected = FileManager.default.fileExists(atPath: jpeg.path) ? 4 : 3
        XCTAssertEqual(failed.count, expected, "\(failed)")
        XCTAssertTrue(failed["huge.png"]?.contains("megapixel") ?? false, failed["huge.png"] ?? "huge.png not reported")
        XCTAssertNotNil(failed["empty.jpg"]); XCTAssertNotNil(failed["text.png"])
        XCTAssertEqual(try index.counts().images, 3)
        XCTAssertEqual(try index.errors().count, expected)
        // Failed files are retried only when they change.
        let again = try Indexer(layers: ["logits"], k: 3, batch: 4).run(root: photos, index: index, model: model)
        XCTAssertEqual(again.processed, 0)
    }
}
