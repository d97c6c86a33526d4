import Foundation
import XCTest
import TestSupport
@testable import Engine
import Models

/// The `vizlab` binary as a user runs it: exit codes, one-line errors, JSON, and end-to-end classification
/// of real photos (decode → preprocess → model).
final class CLITests: VizlabCLITestCase {
    struct Entry: Decodable { var path: String; var top: [ClassScore]?; var error: String? }

    func testClassifiesSamplePhotosEndToEnd() throws {
        let cat = samples.appendingPathComponent("chelsea.png").path, dog = samples.appendingPathComponent("chicky_512.png").path
        let run = try vizlab(["classify", "--json", cat, dog])
        XCTAssertEqual(run.status, 0, run.stderr)
        let entries = try JSONDecoder().decode([Entry].self, from: Data(run.stdout.utf8))
        XCTAssertEqual(entries.count, 2)
        XCTAssertTrue([281, 282, 285].contains(entries[0].top?.first?.index ?? -1), "chelsea.png: \(entries[0].top ?? [])")
        XCTAssertEqual(entries[1].top?.first?.name, "Pekinese", "chicky_512.png: \(entries[1].top ?? [])")
        XCTAssertEqual(entries[0].top?.count, 5)
    }

    func testBadFilesAreReportedOneLineEachAndTheBatchGoesOn() throws {
        let empty = scratch.appendingPathComponent("empty.png"), text = scratch.appendingPathComponent("notes.png")
        let truncated = scratch.appendingPathComponent("truncated.jpg"), missing = scratch.appendingPathComponent("missing.jpg")
        try Data().write(to: empty)
        try Data("just some text\n".utf8).write(to: text)
        let jpeg = try Data(contentsOf: samples.appendingPathComponent("fruits.jpg"))
        try jpeg.prefix(jpeg.count / 3).write(to: truncated)
        let good = samples.appendingPathComponent("coffee.png").path
        let run = try vizlab(["classify", empty.path, good, text.path, truncated.path, missing.path])
        XCTAssertNotEqual(run.status, 0)
        let errorLines = run.stderr.split(separator: "\n")
        for bad in [empty, text, truncated, missing] {
            XCTAssertEqual(errorLines.filter { $0.contains(bad.lastPathComponent) }.count, 1,
                           "exactly one line for \(bad.lastPathComponent) in:\n\(run.stderr)")
        }
        XCTAssertEqual(errorLines.count, 4, run.stderr)
        XCTAssertTrue(run.stdout.contains("espresso"), "the good file is still classified:\n\(run.stdout)")
    }

    func testUnknownLayerSuggestsNearestNames() throws {
        let run = try vizlab(["layers", "block.5"])
        XCTAssertEqual(run.status, 2)
        XCTAssertTrue(run.stderr.contains("unknown layer 'block.5'") && run.stderr.contains("blocks.5"), run.stderr)
        let ok = try vizlab(["layers", "--json", "blocks.5.expand"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains("\"receptiveField\""), ok.stdout)
    }

    func testMissingWeightsNameTheFix() throws {
        let run = try vizlab(["classify", samples.appendingPathComponent("chelsea.png").path],
                             environment: ["VIZLAB_HOME": scratch.path])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, run.stderr)
        XCTAssertTrue(run.stderr.contains("make setup"), run.stderr)
    }

    func testBadArgumentsAreRejected() throws {
        let run = try vizlab(["classify", "--top", "0", "x.png"])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.stderr.contains("--top"), run.stderr)
    }
}
