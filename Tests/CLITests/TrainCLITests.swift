import Foundation
import XCTest
import Engine
import Models
import TestSupport

/// `vizlab train` through the binary on a small synthetic folder set (three classes a head can tell apart: stripes,
/// rings, blobs, in random colours and positions), with the real Lite0 base at 64²: reports, bad files, the
/// bundle in every command, same seed → same bytes, kill -9 and --resume → the same bytes.
final class TrainCLITests: VizlabCLITestCase {
    func ok(_ args: [String], _ what: String = "") throws -> String {
        let r = try vizlab(args)
        XCTAssertEqual(r.status, 0, "\(args.first ?? "") \(what): \(r.stderr.suffix(2000))")
        return r.stdout
    }

    /// 3 classes × (train 12, validation 6, test 6) PNGs of 40×40.
    func makeSet(_ root: URL) throws {
        var rng = TestRNG(seed: 11)
        for (split, n) in [("train", 12), ("validation", 6), ("test", 6)] {
            for (c, name) in ["blobs", "rings", "wide_stripes"].enumerated() {
                let dir = root.appendingPathComponent("\(split)/\(name)")
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                for i in 0..<n {
                    var px = [UInt8](repeating: 0, count: 40 * 40 * 3)
                    let hue = (0..<3).map { _ in Float.random(in: 0.3...1, using: &rng) }
                    let cx = Float.random(in: 12...28, using: &rng), cy = Float.random(in: 12...28, using: &rng)
                    let period = Float.random(in: 5...9, using: &rng)
                    for y in 0..<40 { for x in 0..<40 {
                        let dx = Float(x) - cx, dy = Float(y) - cy, r = (dx * dx + dy * dy).squareRoot()
                        let v: Float
                        switch c {
                        case 0: v = r < 10 ? 1 : 0
                        case 1: v = sinf(r / period * 2 * .pi) > 0 ? 1 : 0
                        default: v = sinf(Float(x + y) / period * 2 * .pi) > 0 ? 1 : 0
                        }
                        for k in 0..<3 { px[(y * 40 + x) * 3 + k] = UInt8(min(255, v * hue[k] * 255)) }
                    } }
                    try PNGEncoder.encode(RGBImage(width: 40, height: 40, pixels: px)).write(to: dir.appendingPathComponent("\(i).png"))
                }
            }
        }
    }

    func testFeaturesModeReportsSkipsBadFilesAndTheBundleWorksInEveryCommand() throws {
        let data = scratch.appendingPathComponent("shapes"), out = scratch.appendingPathComponent("run")
        try makeSet(data)
        // The issue's bad files: 0 bytes, a truncated JPEG, a text file named .png.
        try Data().write(to: data.appendingPathComponent("train/blobs/zero.png"))
        let jpeg = try Data(contentsOf: samples.appendingPathComponent("messi5.jpg"))
        try jpeg.prefix(jpeg.count / 3).write(to: data.appendingPathComponent("train/rings/truncated.jpg"))
        try Data("hello\n".utf8).write(to: data.appendingPathComponent("train/wide_stripes/notes.png"))
        let cache = scratch.appendingPathComponent("home")
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        let env = ["VIZLAB_HOME": cache.path]
        for f in try FileManager.default.contentsOfDirectory(atPath: WeightStore.home.path) where f.hasSuffix(".pth") || f == "samples" || f == "wordnet" {
            try FileManager.default.createSymbolicLink(at: cache.appendingPathComponent(f), withDestinationURL: WeightStore.home.appendingPathComponent(f))
        }
        let args = ["train", data.path, "--size", "64", "--epochs", "8", "--lr", "1e-3", "--batch", "8", "--out", out.path, "--json"]
        let r = try vizlab(args, environment: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        for name in ["zero.png", "truncated.jpg", "notes.png"] { XCTAssert(r.stderr.contains(name), "stderr lists \(name): \(r.stderr)") }
        XCTAssert(r.stderr.contains("features of 36 images"), r.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual((report["skipped"] as! [Any]).count, 3)
        XCTAssertEqual(report["classes"] as! [String], ["blobs", "rings", "wide_stripes"])
        XCTAssertEqual((report["epochs"] as! [Any]).count, 8)
        let accuracy = report["accuracy"] as! Double
        XCTAssertGreaterThan(accuracy, 0.6, "a head on Lite0 features tells blobs, rings and stripes apart (test accuracy \(accuracy))")
        for f in ["model.vizlab/model.json", "model.vizlab/weights.safetensors", "model.vizlab/labels.txt", "log.json", "log.csv",
                  "loss.png", "accuracy.png", "confusion.png", "top_losses.png", "train.json"] {
            XCTAssert(FileManager.default.fileExists(atPath: out.appendingPathComponent(f).path), f)
        }
        let csv = try String(contentsOf: out.appendingPathComponent("log.csv"), encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n").count, 9)
        // A second run reuses the cached features (none computed) and gives the same bytes.
        let out2 = scratch.appendingPathComponent("run2")
        let r2 = try vizlab(args.dropLast(3) + ["--out", out2.path], environment: env)
        XCTAssertEqual(r2.status, 0, r2.stderr)
        XCTAssert(r2.stderr.contains("36 features from the cache"), r2.stderr)
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("model.vizlab/weights.safetensors")),
                       try Data(contentsOf: out2.appendingPathComponent("model.vizlab/weights.safetensors")))

        // The bundle in every command.
        let bundle = out.appendingPathComponent("model.vizlab").path, m = ["--model", bundle]
        let ring = data.appendingPathComponent("test/rings/0.png").path
        let classified = try JSONSerialization.jsonObject(with: Data(try ok(["classify", "--json", ring] + m).utf8)) as! [[String: Any]]
        let top = classified[0]["top"] as! [[String: Any]]
        XCTAssertEqual(top.count, 3)
        XCTAssert(["blobs", "rings", "wide_stripes"].contains(top[0]["name"] as! String))
        let layers = try ok(["layers"] + m)
        XCTAssert(layers.contains("head.logits") && layers.contains("blocks.15"), layers)
        let work = scratch.appendingPathComponent("work").path
        _ = try ok(["ideal", "--class", "rings", "--steps", "4", "--out", work] + m, "ideal")
        let attack = try vizlab(["attack", ring, "--target", "wide stripes", "--eps", "8", "--steps", "3", "--out", work + "/attack"] + m)
        XCTAssert(attack.status == 0 || attack.status == 3, attack.stderr)
        XCTAssert(FileManager.default.fileExists(atPath: work + "/attack/0.json"))
        let db = work + "/index.sqlite"
        _ = try ok(["index", data.appendingPathComponent("test").path, "--db", db] + m, "index")
        let best = try JSONSerialization.jsonObject(with: Data(try ok(["top", "head.logits:1", "--db", db, "--k", "3", "--json", "--out", work + "/top.png"] + m).utf8)) as! [String: Any]
        XCTAssertEqual((best["examples"] as! [Any]).count, 3)
        _ = try ok(["gallery", "--out", work + "/site", "--layers", "blocks.10", "--channels", "1", "--steps", "2", "--size", "64", "--diversity", "0",
                    "--no-neuron", "--no-negative", "--class", "rings", "--class-steps", "2", "--class-size", "64", "--jobs", "1"] + m, "gallery")
        let classes = try String(contentsOf: URL(fileURLWithPath: work + "/site/classes.html"), encoding: .utf8)
        XCTAssert(classes.contains("rings"), "the gallery's classes page shows the new classes")
    }

    /// Fine-tuning on plain images starts each step from the frozen part's output, computed once per image; the
    /// losses, accuracies and weights are those of running every step through the whole model (`--end-to-end`).
    func testFinetuneFromTheFrozenPartsOutputEqualsEndToEnd() throws {
        let data = scratch.appendingPathComponent("shapes-frontier")
        try makeSet(data)
        func args(_ out: URL) -> [String] {
            ["train", data.path, "--mode", "finetune", "--unfreeze-from", "blocks.13", "--size", "64", "--epochs", "1", "--finetune-epochs", "2",
             "--no-augment", "--lr", "1e-3", "--finetune-lr", "1e-3", "--optimizer", "adam", "--batch", "6", "--seed", "5", "--out", out.path]
        }
        let a = scratch.appendingPathComponent("frontier"), b = scratch.appendingPathComponent("end-to-end")
        let ra = try vizlab(args(a)), rb = try vizlab(args(b) + ["--end-to-end"])
        XCTAssertEqual(ra.status, 0, ra.stderr.suffix(2000).description)
        XCTAssertEqual(rb.status, 0, rb.stderr.suffix(2000).description)
        XCTAssert(ra.stderr.contains("train: frozen part over 36 images"), "the default run computes the frozen part once")
        XCTAssertFalse(rb.stderr.contains("train: frozen part over"), "--end-to-end does not")
        func log(_ u: URL) throws -> [[String: Any]] {
            try JSONSerialization.jsonObject(with: Data(contentsOf: u.appendingPathComponent("log.json"))) as! [[String: Any]]
        }
        let la = try log(a), lb = try log(b)
        XCTAssertEqual(la.count, 3)
        XCTAssertEqual(la.count, lb.count)
        for (x, y) in zip(la, lb) {
            for key in ["trainLoss", "validationLoss"] {
                let u = x[key] as! Double, v = y[key] as! Double
                XCTAssertEqual(u, v, accuracy: 1e-5 * max(1, abs(v)), "\(key) of \(x["stage"]!) epoch \(x["epoch"]!)")
            }
            XCTAssertEqual(x["trainAccuracy"] as! Double, y["trainAccuracy"] as! Double)
        }
        // Fine-tuning moved the weights (the comparison is not between two runs that did nothing).
        XCTAssertNotEqual(la[1]["trainLoss"] as! Double, la[2]["trainLoss"] as! Double)
    }

    /// Same seed → same weight bytes; kill -9 during epoch 3 and --resume → the same bytes as the uninterrupted run.
    func testSameSeedSameBytesAndResumeAfterKill() throws {
        let data = scratch.appendingPathComponent("shapes")
        try makeSet(data)
        func args(_ out: URL) -> [String] {
            ["train", data.path, "--mode", "finetune", "--unfreeze-from", "blocks.14", "--size", "64", "--epochs", "2", "--finetune-epochs", "4",
             "--lr", "1e-3", "--finetune-lr", "1e-4", "--optimizer", "adam", "--batch", "6", "--seed", "3", "--out", out.path]
        }
        let a = scratch.appendingPathComponent("a"), b = scratch.appendingPathComponent("b"), c = scratch.appendingPathComponent("c")
        _ = try ok(args(a), "a")
        _ = try ok(args(b), "b")
        let weights = { (u: URL) in try Data(contentsOf: u.appendingPathComponent("model.vizlab/weights.safetensors")) }
        XCTAssertEqual(try weights(a), try weights(b), "same seed, same bytes")
        let log = try JSONSerialization.jsonObject(with: Data(contentsOf: a.appendingPathComponent("log.json"))) as! [[String: Any]]
        XCTAssertEqual(log.map { $0["stage"] as! String }, ["head", "head", "finetune", "finetune", "finetune", "finetune"])

        // Kill -9 once the third epoch (the first of fine-tuning) has started, then resume.
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = args(c)
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run()
        let state = c.appendingPathComponent("state/state.json")
        let deadline = Date().addingTimeInterval(300)
        var killedAt = -1
        while Date() < deadline && p.isRunning {
            if let d = try? Data(contentsOf: state), let j = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
               let s = j["state"] as? [String: Any], let log = s["log"] as? [Any], log.count >= 2 {
                kill(p.processIdentifier, SIGKILL)
                killedAt = log.count
                break
            }
            usleep(2000)
        }
        p.waitUntilExit()
        XCTAssertEqual(killedAt, 2, "killed after two finished epochs")
        XCTAssertEqual(p.terminationReason, .uncaughtSignal)
        XCTAssertFalse(FileManager.default.fileExists(atPath: c.appendingPathComponent("model.vizlab").path))
        let resumed = try vizlab(args(c) + ["--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssert(resumed.stderr.contains("resuming after head epoch 2"), resumed.stderr)
        XCTAssertEqual(try weights(a), try weights(c), "resumed run, same bytes")
        // Another seed, other bytes; resume with other options is refused, naming them.
        let other = try vizlab(args(c).map { $0 == "3" ? "4" : $0 } + ["--resume"])
        XCTAssertNotEqual(other.status, 0)
        XCTAssert(other.stderr.contains("seed"), other.stderr)
    }

    func testBadTrainingInputIsOneLine() throws {
        let data = scratch.appendingPathComponent("shapes")
        try makeSet(data)
        try FileManager.default.createDirectory(at: data.appendingPathComponent("train/empty"), withIntermediateDirectories: true)
        for (args, expect) in [
            (["train", data.path, "--size", "64"], "class 'empty' has no usable image"),
            (["train", scratch.appendingPathComponent("nope").path], "no such folder"),
            (["train", data.path, "--mode", "finetune"], "--unfreeze-from"),
            (["train", data.path, "--head", "dense:x"], "--head"),
        ] {
            let r = try vizlab(args)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            let lines = r.stderr.split(separator: "\n").filter { !$0.hasPrefix("data:") }
            XCTAssertEqual(lines.count, 1, "\(args): \(r.stderr)")
            XCTAssert(r.stderr.contains(expect), "\(args): \(r.stderr)")
        }
        try FileManager.default.removeItem(at: data.appendingPathComponent("train/empty"))
        let r = try vizlab(["train", data.path, "--mode", "finetune", "--unfreeze-from", "blocks.99", "--size", "64"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssert(r.stderr.contains("blocks.99"), r.stderr)
    }
}
