import Foundation
import XCTest
import TestSupport
@testable import Engine
import Models

/// `vizlab attack` as a user runs it: one-line errors that write nothing, a batch that keeps going past a bad
/// file, the saved PNG checked by `vizlab classify`, and byte-identical reruns for a seed.
final class AttackCLITests: VizlabCLITestCase {
    var out: URL { scratch.appendingPathComponent("out") }
    func files() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []).sorted() }

    struct Report: Decodable {
        struct Goal: Decodable { var kind: String; var classes: [Int] }
        struct Distances: Decodable { var linfLevels: Int; var l2: Double }
        var success: Bool; var goal: Goal; var distances: Distances; var adversarialImage: String; var steps: Int
    }
    struct Entry: Decodable { var top: [ClassScore]? }

    func testBadInputIsOneLineNonZeroAndWritesNothing() throws {
        let chicky = samples.appendingPathComponent("chicky_512.png").path
        let garbage = scratch.appendingPathComponent("broken.png")
        try Data("not a png".utf8).write(to: garbage)
        let cases: [([String], String)] = [
            ([garbage.path, "--target", "cat"], "broken.png"),
            (["/nonexistent/dog.png"], "/nonexistent/dog.png"),
            ([chicky, "--target", "catt"], "did you mean"),
            ([chicky, "--target", "cat", "--eps", "0"], "--eps must be positive"),
            ([chicky, "--target", "cat", "--eps", "1000"], "absurd"),
            ([chicky, "--target", "cat", "--eps", "0.5"], "below one 8-bit level"),
            ([chicky, "--target", "cat", "--eps", "4.5", "--min-eps"], "whole 8-bit levels"),
            ([chicky, "--attack", "pgd-l2", "--eps", "0.001"], "below one 8-bit level"),
            ([chicky, "--restarts", "3", "--no-random-start"], "--no-random-start"),
            ([chicky, "--target", "dog"], "already classified as Pekinese"),
            ([chicky, "--attack", "magic"], "unknown --attack"),
            ([chicky, "--attack", "deepfool", "--target", "cat"], "deepfool is untargeted"),
            ([chicky, "--confidence", "1.5"], "--confidence"),
        ]
        for (args, needle) in cases {
            let run = try vizlab(["attack"] + args + ["--steps", "2", "--out", out.path])
            XCTAssertNotEqual(run.status, 0, "\(args)")
            XCTAssertTrue(run.stderr.contains(needle), "\(args): \(run.stderr)")
            let lines = run.stderr.split(separator: "\n").map { $0.replacingOccurrences(of: "\r\u{1B}[K", with: "") }.filter { !$0.isEmpty }
            XCTAssertEqual(lines.count, 1, "\(args): \(run.stderr)")
            XCTAssertEqual(files(), [], "\(args) wrote files")
        }
        let asIs = try vizlab(["classify", "--as-is", chicky])
        XCTAssertNotEqual(asIs.status, 0)
        XCTAssertTrue(asIs.stderr.contains("224x224"), asIs.stderr)
    }

    /// A folder with two photos and a broken file: both photos are attacked (crop region, few steps), the broken
    /// one is reported and skipped, the summary is written, and the exit status says something was skipped.
    func testBatchKeepsGoingPastABadFileAndSavedResultsVerify() throws {
        let folder = scratch.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for name in ["chelsea.png", "coffee.png"] {
            try FileManager.default.copyItem(at: samples.appendingPathComponent(name), to: folder.appendingPathComponent(name))
        }
        try Data([0x89, 0x50, 0x4E, 0x47]).write(to: folder.appendingPathComponent("truncated.png"))
        // A second folder with a file of the same name: its outputs must not overwrite the first one's.
        let other = scratch.appendingPathComponent("other")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: samples.appendingPathComponent("chelsea.png"), to: other.appendingPathComponent("chelsea.png"))
        let run = try vizlab(["attack", folder.path, other.path, "--target", "random", "--region", "crop", "--eps", "8", "--steps", "20",
                              "--seed", "4", "--json", "--out", out.path])
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertTrue(run.stderr.contains("truncated.png"), run.stderr)
        struct Summary: Decodable {
            struct Row: Decodable { var input: String; var success: Bool; var report: String }
            struct Skip: Decodable { var input: String }
            var attacked: Int; var skipped: [Skip]; var results: [Row]; var successRate: Double
        }
        let summary = try JSONDecoder().decode(Summary.self, from: Data(run.stdout.utf8))
        XCTAssertEqual(summary.attacked, 3)
        XCTAssertEqual(Set(summary.results.map(\.report)).count, 3, "outputs of same-named inputs collide")
        XCTAssertGreaterThan(summary.successRate, 0, "at ε 8/255 and 20 steps some attack must work")
        XCTAssertEqual(summary.skipped.map { URL(fileURLWithPath: $0.input).lastPathComponent }, ["truncated.png"])
        XCTAssertTrue(files().contains("summary.json"))
        for row in summary.results {
            let report = try JSONDecoder().decode(Report.self, from: Data(contentsOf: URL(fileURLWithPath: row.report)))
            XCTAssertLessThanOrEqual(report.distances.linfLevels, 8)
            // The saved crop, fed as-is by `vizlab classify`, agrees with the report.
            let check = try vizlab(["classify", "--as-is", "--json", "--top", "1", report.adversarialImage])
            let top = try JSONDecoder().decode([Entry].self, from: Data(check.stdout.utf8))[0].top![0].index
            XCTAssertEqual(report.goal.classes.contains(top), report.success, "\(row.input)")
        }
    }

    /// Chicky (a Pekinese) to any domestic cat at ε = 4/255 on the full photo: `vizlab classify` of the saved file
    /// says cat; the same seed writes the same bytes.
    func testTargetedClassGroupOnFullPhotoVerifiesAndReproduces() throws {
        let chicky = samples.appendingPathComponent("chicky_512.png").path
        func attack(_ dir: String) throws -> Report {
            let run = try vizlab(["attack", chicky, "--target", "cat", "--seed", "7", "--json", "--out", dir])
            XCTAssertEqual(run.status, 0, run.stderr)
            return try JSONDecoder().decode(Report.self, from: Data(run.stdout.utf8))
        }
        let a = try attack(out.path), b = try attack(scratch.appendingPathComponent("again").path)
        XCTAssertTrue(a.success)
        XCTAssertLessThanOrEqual(a.distances.linfLevels, 4)
        let check = try vizlab(["classify", "--json", "--top", "1", a.adversarialImage])
        let top = try JSONDecoder().decode([Entry].self, from: Data(check.stdout.utf8))[0].top![0].index
        XCTAssertTrue((281...285).contains(top), "classify says \(top)")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: a.adversarialImage)), try Data(contentsOf: URL(fileURLWithPath: b.adversarialImage)))
        XCTAssertEqual(files(), ["chicky_512.adv.png", "chicky_512.json", "chicky_512.panel.png"])
    }
}
