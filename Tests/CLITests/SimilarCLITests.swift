import Engine
import Foundation
import TestSupport
import XCTest

/// `vizlab similar`, `duplicates`, `invert` and `interpolate` as a user runs them: exact and HNSW answers, the
/// graph file kept in step with the index, corrupt graphs refused, near-duplicate groups, bad input.
final class SimilarCLITests: VizlabCLITestCase {
    let originals = ["chelsea.png", "astronaut.png", "coffee.png"]
    let others = ["baboon.jpg", "fruits.jpg", "rocket.jpg", "starry_night.jpg", "smarties.png", "building.jpg", "apple.jpg"]

    /// The samples, plus for each of `originals` a half-size copy and a 90% centre crop.
    func makeFolder() throws -> URL {
        let dir = scratch.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for name in originals + others {
            try FileManager.default.copyItem(at: samples.appendingPathComponent(name), to: dir.appendingPathComponent(name))
        }
        for name in originals {
            let rgb = Preprocess.compositeOnWhite(try ImageDecoder.decode(contentsOf: samples.appendingPathComponent(name)))
            let stem = (name as NSString).deletingPathExtension
            try PNGEncoder.write(Preprocess.resize(rgb, width: rgb.width / 2, height: rgb.height / 2, filter: .bicubic), to: dir.appendingPathComponent("\(stem)_half.png"))
            let cw = rgb.width * 9 / 10, ch = rgb.height * 9 / 10, x0 = (rgb.width - cw) / 2, y0 = (rgb.height - ch) / 2
            var px: [UInt8] = []
            for y in y0..<(y0 + ch) { px += rgb.pixels[((y * rgb.width + x0) * 3)..<((y * rgb.width + x0 + cw) * 3)] }
            try PNGEncoder.write(RGBImage(width: cw, height: ch, pixels: px), to: dir.appendingPathComponent("\(stem)_crop90.png"))
        }
        return dir
    }

    func json(_ run: Run) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], run.stdout + run.stderr)
    }

    func neighbours(_ summary: [String: Any]) -> [[String]] {
        (summary["answers"] as! [[String: Any]]).map { ($0["neighbours"] as! [[String: Any]]).map { $0["path"] as! String } }
    }

    func testSearchDuplicatesAndTheGraphKeptInStep() throws {
        let dir = try makeFolder()
        let db = scratch.appendingPathComponent("x.sqlite").path
        let index = try vizlab(["index", dir.path, "--db", db, "--layers", "blocks.10"])
        XCTAssertEqual(index.status, 0, index.stderr)
        let query = dir.appendingPathComponent("chelsea.png").path
        let out = scratch.appendingPathComponent("out").path

        // Exact and HNSW agree on a small set; the query is not its own neighbour; its copies come first.
        let exact = try vizlab(["similar", query, "--db", db, "--k", "4", "--exact", "--json", "--out", out])
        XCTAssertEqual(exact.status, 0, exact.stderr)
        let e = try json(exact)
        let first = neighbours(e)[0]
        XCTAssertFalse(first.contains(query))
        XCTAssertEqual(Set(first.prefix(2)), [dir.appendingPathComponent("chelsea_half.png").path, dir.appendingPathComponent("chelsea_crop90.png").path])
        let hnsw = try vizlab(["similar", query, "--db", db, "--k", "4", "--json", "--out", out])
        XCTAssertEqual(hnsw.status, 0, hnsw.stderr)
        let h = try json(hnsw)
        XCTAssertEqual(neighbours(h), neighbours(e))
        XCTAssertEqual((h["graph"] as! [String: Any])["action"] as? String, "built")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/similar_chelsea.png"))
        // The earlier layer's space, and a file that is not indexed (embedded on the fly) — the same picture.
        let layer = try vizlab(["similar", query, "--db", db, "--k", "2", "--layer", "blocks.10", "--exact", "--json", "--out", out])
        XCTAssertEqual(layer.status, 0, layer.stderr)
        XCTAssertEqual((try json(layer))["dimension"] as? Int, 112)
        let loose = scratch.appendingPathComponent("loose.png")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: query), to: loose)
        let onTheFly = try json(try vizlab(["similar", loose.path, "--db", db, "--k", "1", "--exact", "--json", "--out", out]))
        XCTAssertEqual(neighbours(onTheFly)[0], [query])
        let sim = ((onTheFly["answers"] as! [[String: Any]])[0]["neighbours"] as! [[String: Any]])[0]["similarity"] as! Double
        XCTAssertGreaterThan(sim, 0.9999)

        // Duplicates: from the index and from the folder, the three groups exactly.
        let want: Set<Set<String>> = Set(originals.map { name in
            let stem = (name as NSString).deletingPathExtension
            return [name, "\(stem)_half.png", "\(stem)_crop90.png"].map { dir.appendingPathComponent($0).path }.reduce(into: Set<String>()) { $0.insert($1) }
        })
        for args in [["--db", db], [dir.path]] {
            let d = try vizlab(["duplicates"] + args + ["--json", "--out", out + "/dup"])
            XCTAssertEqual(d.status, 0, d.stderr)
            let groups = ((try json(d))["groups"] as! [[String: Any]]).map { Set($0["images"] as! [String]) }
            XCTAssertEqual(Set(groups), want, "\(args)")
        }

        // +2 images: the graph is updated with exactly those; removing them: they are never returned.
        for name in ["orange.jpg", "home.jpg"] { try FileManager.default.copyItem(at: samples.appendingPathComponent(name), to: dir.appendingPathComponent(name)) }
        XCTAssertEqual(try vizlab(["index", dir.path, "--db", db, "--layers", "blocks.10"]).status, 0)
        let added = try json(try vizlab(["similar", query, "--db", db, "--k", "16", "--json", "--out", out]))
        let graph = added["graph"] as! [String: Any]
        XCTAssertEqual(graph["action"] as? String, "updated"); XCTAssertEqual(graph["added"] as? Int, 2)
        XCTAssertTrue(neighbours(added)[0].contains(dir.appendingPathComponent("home.jpg").path))
        for name in ["orange.jpg", "home.jpg"] { try FileManager.default.removeItem(at: dir.appendingPathComponent(name)) }
        XCTAssertEqual(try vizlab(["index", dir.path, "--db", db, "--layers", "blocks.10"]).status, 0)
        let removed = try json(try vizlab(["similar", query, "--db", db, "--k", "16", "--json", "--out", out]))
        XCTAssertFalse(neighbours(removed)[0].contains { $0.hasSuffix("/home.jpg") || $0.hasSuffix("/orange.jpg") })
        XCTAssertEqual(neighbours(removed)[0].count, 15, "every other image, once")

        // A corrupt graph file: one line naming it, non-zero, nothing written; --rebuild gets past it.
        let hnswDir = db + ".hnsw"
        let bin = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: hnswDir).first { $0.hasPrefix("pool-cosine-") && $0.hasSuffix(".bin") })
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: hnswDir + "/" + bin)))
        bytes[bytes.count / 3] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: hnswDir + "/" + bin))
        let fresh = scratch.appendingPathComponent("fresh").path
        let corrupt = try vizlab(["similar", query, "--db", db, "--out", fresh])
        XCTAssertEqual(corrupt.status, 1)
        XCTAssertEqual(corrupt.stderr.split(separator: "\n").count, 1, corrupt.stderr)
        XCTAssertTrue(corrupt.stderr.contains(bin) && corrupt.stderr.contains("--rebuild"), corrupt.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fresh))
        let rebuilt = try json(try vizlab(["similar", query, "--db", db, "--rebuild", "--json", "--out", out]))
        XCTAssertEqual((rebuilt["graph"] as! [String: Any])["action"] as? String, "rebuilt")
    }

    func testBadInputIsOneLineAndWritesNothing() throws {
        let dir = try makeFolder()
        let db = scratch.appendingPathComponent("x.sqlite").path
        XCTAssertEqual(try vizlab(["index", dir.path, "--db", db, "--layers", "blocks.10"]).status, 0)
        let out = scratch.appendingPathComponent("never").path
        let query = dir.appendingPathComponent("chelsea.png").path
        let notImage = scratch.appendingPathComponent("notes.png")
        try Data("not an image".utf8).write(to: notImage)
        let empty = scratch.appendingPathComponent("emptydir")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let emptyDB = scratch.appendingPathComponent("empty.sqlite").path
        XCTAssertEqual(try vizlab(["index", empty.path, "--db", emptyDB]).status, 0)
        let cases: [([String], String)] = [
            (["similar", query, "--db", db, "--k", "0"], "--k"),
            (["similar", notImage.path, "--db", db], notImage.path),
            (["similar", query, "--db", emptyDB], "no embeddings"),
            (["similar", query, "--db", scratch.appendingPathComponent("missing.sqlite").path], "missing.sqlite"),
            (["similar", query, "--db", db, "--layer", "blocks.3"], "blocks.3"),
            (["similar", query, "--db", db, "--ef", "0"], "--ef"),
            (["duplicates", "--db", db, "--threshold", "1.5"], "--threshold"),
            (["duplicates", dir.path, "--db", db], "one of them"),
            (["invert", notImage.path, "--steps", "2", "--out", out], notImage.path),
            (["interpolate", query, query, "--steps", "1"], "--steps"),
            (["interpolate", query, query, "--order-margin", "0.9"], "--order-margin"),
        ]
        for (args, mention) in cases {
            let r = try vizlab(args + (args.contains("--out") ? [] : ["--out", out]))
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(mention), "\(args): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/similar.json"), "\(args)")
        }
    }

    func testInvertAndInterpolateMeasureTheSavedRenders() throws {
        let a = samples.appendingPathComponent("chelsea.png").path, b = samples.appendingPathComponent("rocket.jpg").path
        let out = scratch.appendingPathComponent("inv").path
        let r0 = try vizlab(["invert", a, "--steps", "1", "--size", "128", "--out", out + "/0"])
        let r = try vizlab(["invert", a, "--steps", "48", "--size", "128", "--out", out + "/48"])
        XCTAssertEqual(r.status, 0, r.stderr); XCTAssertEqual(r0.status, 0, r0.stderr)
        func cos(_ dir: String) throws -> Double {
            let list = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: dir + "/invert.json"))) as! [[String: Any]]
            return list[0]["cosineOfSavedImage"] as! Double
        }
        let before = try cos(out + "/0"), after = try cos(out + "/48")
        XCTAssertGreaterThan(after, before + 0.1, "optimization raised the saved render's cosine from \(before) to \(after)")
        let i = try vizlab(["interpolate", a, b, "--steps", "3", "--render-steps", "24", "--size", "128", "--out", out + "/walk"])
        XCTAssertEqual(i.status, 0, i.stderr)
        let summary = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: out + "/walk/interpolate_chelsea_rocket.json"))) as! [String: Any]
        let frames = summary["frames"] as! [[String: Any]]
        XCTAssertEqual(frames.count, 3)
        XCTAssertEqual(summary["orderMargin"] as? Double ?? 0, 0.02, accuracy: 1e-6)
        XCTAssertGreaterThan(frames[0]["cosineToA"] as! Double, frames[2]["cosineToA"] as! Double)
        XCTAssertLessThan(frames[0]["cosineToB"] as! Double, frames[2]["cosineToB"] as! Double)
        XCTAssertTrue(FileManager.default.fileExists(atPath: summary["strip"] as! String))
    }
}
