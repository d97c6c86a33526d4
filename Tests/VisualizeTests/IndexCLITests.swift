import Foundation
import XCTest
import TestSupport
@testable import Visualize

/// `vizlab index` / `vizlab top` as a user runs them, including kill -9 in the middle of indexing.
final class IndexCLITests: VizlabCLITestCase {
    /// Index once without interruption; index again into another database, killing the process (SIGKILL) at a
    /// random moment and re-running: the database passes `PRAGMA integrity_check` after the kill, and the resumed
    /// index has exactly the lists of the uninterrupted one.
    func testKilledIndexResumesToTheSameLists() throws {
        let photos = scratch.appendingPathComponent("photos")
        try ExampleIndexTests.writeImages(photos, count: 40, seed: 7)
        let args = ["index", photos.path, "--layers", "blocks.3", "blocks.9", "logits", "--k", "5", "--batch", "2"]
        let clean = scratch.appendingPathComponent("clean.sqlite")
        let full = try vizlab(args + ["--db", clean.path])
        XCTAssertEqual(full.status, 0, full.stderr)

        // Kill twice, each time right after the progress line reports a random number of images done (the
        // batches before it are committed, the next one is in flight).
        var rng = TestRNG(seed: UInt64(Date().timeIntervalSince1970))
        let killed = scratch.appendingPathComponent("killed.sqlite")
        var stored: [Int] = []
        for _ in 0..<2 {
            // The progress line counts this run's images only: aim inside what is left, with a batch to spare.
            let remaining = 40 - (stored.last ?? 0)
            guard remaining >= 6 else { break }
            let target = Int.random(in: 2...min(30, remaining - 4), using: &rng)
            let p = Process()
            p.executableURL = Self.binary
            p.arguments = args + ["--db", killed.path]
            let err = Pipe()
            p.standardOutput = FileHandle.nullDevice; p.standardError = err
            try p.run()
            var text = ""
            while p.isRunning {
                let chunk = err.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
                // "\rindex: 12/38 new or changed images, …": the latest count.
                if let last = text.components(separatedBy: "index: ").last, let done = Int(last.prefix { $0.isNumber }), done >= target { break }
            }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationReason, .uncaughtSignal, "the run finished before it could be killed")
            let index = try ExampleIndex(url: killed)
            XCTAssertEqual(try index.integrityCheck(), "ok", "after a kill at \(target)")
            stored.append(try index.counts().images)
        }
        print("killed after ≥ \(stored) images were stored (of 40)")
        XCTAssertTrue(stored.contains { $0 > 0 && $0 < 40 }, "no kill landed mid-run: \(stored)")
        let resumed = try vizlab(args + ["--db", killed.path])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let a = try ExampleIndex(url: clean).allLists(), b = try ExampleIndex(url: killed).allLists()
        XCTAssertEqual(a.count, (40 + 112 + 1000) * 4)
        XCTAssertEqual(a, b, "resumed lists differ from the uninterrupted run's")
        XCTAssertEqual(try ExampleIndex(url: killed).counts().images, 40)
    }

    func testTopAnswersFromTheIndexWithGridAndListing() throws {
        let photos = scratch.appendingPathComponent("photos")
        try ExampleIndexTests.writeImages(photos, count: 6, seed: 8)
        let db = scratch.appendingPathComponent("i.sqlite").path
        XCTAssertEqual(try vizlab(["index", photos.path, "--db", db, "--layers", "blocks.5", "logits", "--k", "4"]).status, 0)
        let out = scratch.appendingPathComponent("top/unit.png").path
        let run = try vizlab(["top", "blocks.5:3", "--db", db, "--k", "3", "--patches", "--json", "--out", out])
        XCTAssertEqual(run.status, 0, run.stderr)
        struct Listing: Decodable { struct E: Decodable { var rank: Int; var path: String; var value: Float }; var examples: [E]; var receptiveField: Int }
        let listing = try JSONDecoder().decode(Listing.self, from: Data(run.stdout.utf8))
        XCTAssertEqual(listing.examples.map(\.rank), [1, 2, 3])
        XCTAssertEqual(listing.examples.map(\.value), listing.examples.map(\.value).sorted(by: >))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out))
        XCTAssertTrue(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("top/unit.json").path))
        for (args, needle) in [(["top", "blocks.7:3", "--db", db], "not in this index"), (["top", "blocks.5:999", "--db", db], "0…79"),
                               (["top", "blocks.5:1", "--db", "/nonexistent/x.sqlite"], "run `vizlab index"),
                               (["index", "/nonexistent/folder"], "no such folder")] {
            let r = try vizlab(args)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertTrue(r.stderr.contains(needle), "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(args): \(r.stderr)")
        }
    }
}
