import Foundation
import XCTest
import TestSupport
@testable import Engine
import Models

/// `vizlab neuron | channel | layer | ideal | grid` as a user runs them (tiny renders: a few steps at 64²).
final class VisualizeCLITests: VizlabCLITestCase {
    var cli: VizlabCLITestCase { self }
    var out: URL { scratch.appendingPathComponent("out") }

    func files() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []).sorted() }

    func testBadInputIsOneLineNonZeroAndWritesNothing() throws {
        let cases: [([String], String)] = [
            (["channel", "blocks.99:1"], "unknown layer"),
            (["channel", "blocks.5:80"], "channels 0…79"),
            (["channel", "blocks.5:1 +* 3"], "LAYER:CHANNEL"),
            (["neuron", "blocks.5:1@99,0"], "outside blocks.5's 14×14 grid"),
            (["ideal", "--class", "catt"], "did you mean: tabby"),
            (["ideal", "--class", "crane"], "134 crane"),
            (["layer", "blocks.8", "--direction", "/nonexistent/v.txt"], "--direction"),
            (["channel", "blocks.5:1", "--tv", "-1"], "--tv"),
            (["channel", "blocks.5:1", "--size", "8"], "--size"),
        ]
        for (args, needle) in cases {
            let run = try cli.vizlab(args + ["--steps", "2", "--out", out.path])
            XCTAssertNotEqual(run.status, 0, "\(args)")
            XCTAssertTrue(run.stderr.contains(needle), "\(args): \(run.stderr)")
            if !args.contains("--tv") && !args.contains("--size") {  // ArgumentParser adds a usage line to validation errors
                XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, "\(args): \(run.stderr)")
            }
            XCTAssertEqual(files(), [], "\(args) wrote files")
        }
    }

    func testBatchOfChannelsWritesImagesSidecarsGridPlotAndReproduces() throws {
        let args = ["channel", "blocks.3:1,2", "--steps", "3", "--size", "64", "--seed", "5", "--plot", "--json", "--out", out.path]
        let run = try cli.vizlab(args)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(files(), ["blocks.3_1.json", "blocks.3_1.png", "blocks.3_2.json", "blocks.3_2.png", "channels_grid.png", "channels_loss.png"])
        let summary = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [[String: Any]]
        XCTAssertEqual(summary.count, 2)
        XCTAssertEqual((summary[0]["objectiveHistory"] as! [Any]).count, 3)
        XCTAssertEqual((summary[0]["settings"] as! [String: Any])["seed"] as? Int, 5)
        XCTAssertTrue(run.stderr.contains("ETA"), run.stderr)
        // Same command and seed → byte-identical PNG.
        let first = try Data(contentsOf: out.appendingPathComponent("blocks.3_1.png"))
        XCTAssertEqual(try cli.vizlab(args).status, 0)
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("blocks.3_1.png")), first)
        let grid = try cli.vizlab(["grid", out.appendingPathComponent("blocks.3_1.png").path, "--out", out.appendingPathComponent("g.png").path])
        XCTAssertEqual(grid.status, 0, grid.stderr)
    }

    func testIdealClassGroupAndExpression() throws {
        let run = try cli.vizlab(["ideal", "--class", "cat", "--steps", "2", "--size", "64", "--out", out.path])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("domestic cat: 5 classes"), run.stderr)
        let sidecar = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("class_domestic_cat.json"))) as! [String: Any]
        XCTAssertEqual((sidecar["classes"] as! [String: Any])["indices"] as! [Int], [281, 282, 283, 284, 285])
        XCTAssertNotNil(sidecar["classProbabilityOnSavedImage"])
        let expr = try cli.vizlab(["neuron", "blocks.5:17 - 0.5*blocks.5:3@2,2", "--steps", "2", "--size", "64", "--out", out.path])
        XCTAssertEqual(expr.status, 0, expr.stderr)
        XCTAssertTrue(files().contains("neuron_blocks.5_17_-blocks.5_3_2_2.png"), "\(files())")
    }
}
