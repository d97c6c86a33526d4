import Foundation
import XCTest
import TestSupport
@testable import Engine
@testable import Visualize

/// `vizlab gallery` as a user runs it: a small gallery with dataset examples, classes and an attack; its links;
/// a rerun that renders nothing; a deleted picture rendered again; --jobs not changing a byte; bad arguments;
/// and the pages opened in headless Chromium.
final class GalleryCLITests: VizlabCLITestCase {
    /// A tiny but complete gallery (2 channels of blocks.2, 3 steps), built once for the tests of this class.
    nonisolated(unsafe) static var built: (site: URL, arguments: [String])?
    static let shared = FileManager.default.temporaryDirectory.appendingPathComponent("vizlab-gallery-\(UUID().uuidString)")

    override class func tearDown() { try? FileManager.default.removeItem(at: shared) }

    func gallery() throws -> (site: URL, arguments: [String]) {
        if let b = Self.built { return b }
        let root = Self.shared
        let photos = root.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        for name in ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg"] {
            try FileManager.default.copyItem(at: samples.appendingPathComponent(name), to: photos.appendingPathComponent(name))
        }
        let db = root.appendingPathComponent("examples.sqlite").path
        let index = try vizlab(["index", photos.path, "--db", db, "--layers", "blocks.2", "logits", "--k", "4"])
        guard index.status == 0 else { throw Failure("vizlab index: \(index.stderr)") }
        let attacks = root.appendingPathComponent("attacks").path
        let attack = try vizlab(["attack", samples.appendingPathComponent("chicky_512.png").path, "--target", "cat", "--eps", "4", "--out", attacks])
        guard attack.status == 0 else { throw Failure("vizlab attack: \(attack.stderr)") }
        let site = root.appendingPathComponent("site")
        let arguments = ["gallery", "--out", site.path, "--layers", "blocks.2", "--channels", "0,1", "--steps", "3", "--size", "48",
                         "--class", "tabby", "--class-steps", "3", "--class-size", "64", "--diversity", "2", "--examples", "3",
                         "--dataset", db, "--attacks", attacks, "--jobs", "2"]
        let run = try vizlab(arguments)
        guard run.status == 0 else { throw Failure("vizlab gallery: \(run.stderr)") }
        XCTAssertEqual(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines), site.appendingPathComponent("index.html").path)
        Self.built = (site, arguments)
        return (site, arguments)
    }

    struct Failure: Error, CustomStringConvertible { var description: String; init(_ d: String) { description = d } }

    func summary(_ site: URL) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: site.appendingPathComponent("gallery.json"))) as? [String: Any])
    }

    func testGalleryPagesLinksRerunAndRepair() throws {
        let (site, arguments) = try gallery()
        var s = try summary(site)
        let jobs = try XCTUnwrap(s["jobs"] as? Int)
        XCTAssertEqual(jobs, 3 + 2 + 1, "channel/negative/neuron for the two channels, two diversity sets, one class job")
        XCTAssertEqual(s["cached"] as? Int, 0)
        XCTAssertEqual((s["failed"] as? [Any])?.count, 0)
        for page in ["index.html", "classes.html", "attacks.html", "layers/blocks.2/index.html", "layers/blocks.2/0.html", "layers/blocks.2/1.html"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: site.appendingPathComponent(page).path), page)
        }
        let links = LinkChecker.check(site: site)
        XCTAssertEqual(links.problems, [])
        XCTAssertEqual(links.pages, 6 + 4 + 1, "the 6 pages, a similar page per indexed photo and their listing")
        XCTAssertGreaterThan(links.links, 40)
        XCTAssertEqual(s["similarPages"] as? Int, 5)
        // Each photo's similar page shows the other three, nearest first; channel examples link to them.
        let similarDir = site.appendingPathComponent("similar")
        let similarPages = try FileManager.default.contentsOfDirectory(atPath: similarDir.path).filter { $0 != "index.html" && $0.hasSuffix(".html") }
        XCTAssertEqual(similarPages.count, 4)
        for name in similarPages {
            let html = try String(contentsOf: similarDir.appendingPathComponent(name), encoding: .utf8)
            XCTAssertTrue(html.contains("Its 3 nearest images"), name)
            XCTAssertEqual(html.components(separatedBy: "<span class=value>").count - 1, 3, name)
        }

        let channel = try String(contentsOf: site.appendingPathComponent("layers/blocks.2/1.html"), encoding: .utf8)
        for expected in ["channel objective", "neuron objective", "negative channel objective", "Diversity", "Top 3 by", "Bottom 3 by",
                         "rel=prev href=\"0.html\"", "chelsea.png"] {
            XCTAssertTrue(channel.contains(expected), "channel page lacks \(expected)")
        }
        XCTAssertEqual(channel.components(separatedBy: "src=\"../../examples/").count - 1, 6, "3 top + 3 bottom examples")
        XCTAssertEqual(channel.components(separatedBy: "href=\"../../similar/").count - 1, 6, "each example links to its neighbours")
        XCTAssertEqual(channel.components(separatedBy: "src=\"../../renders/").count - 1, 3 + 2)
        let attacksPage = try String(contentsOf: site.appendingPathComponent("attacks.html"), encoding: .utf8)
        XCTAssertTrue(attacksPage.contains("src=\"attacks/") && attacksPage.contains("chicky_512.png"), attacksPage)
        let classes = try String(contentsOf: site.appendingPathComponent("classes.html"), encoding: .utf8)
        XCTAssertTrue(classes.contains("tabby (281)") && classes.contains("p = "), classes)

        // Nothing changed: nothing rendered, no page rewritten.
        let index = site.appendingPathComponent("index.html")
        let before = try FileManager.default.attributesOfItem(atPath: index.path)[.modificationDate] as? Date
        let again = try vizlab(arguments)
        XCTAssertEqual(again.status, 0, again.stderr)
        s = try summary(site)
        XCTAssertEqual(s["rendered"] as? Int, 0)
        XCTAssertEqual(s["cached"] as? Int, jobs)
        XCTAssertEqual(s["pagesWritten"] as? Int, 0)
        XCTAssertEqual(s["examplePicturesMade"] as? Int, 0)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: index.path)[.modificationDate] as? Date, before)

        // A deleted picture: the checker sees the hole, the next run renders that one job again.
        let renders = site.appendingPathComponent("renders")
        let victim = try XCTUnwrap(FileManager.default.contentsOfDirectory(atPath: renders.path).sorted().first)
        try FileManager.default.removeItem(at: renders.appendingPathComponent(victim).appendingPathComponent("0.png"))
        XCTAssertFalse(LinkChecker.check(site: site).problems.isEmpty, "a missing render is a broken link")
        let repair = try vizlab(arguments)
        XCTAssertEqual(repair.status, 0, repair.stderr)
        XCTAssertEqual(try summary(site)["rendered"] as? Int, 1)
        XCTAssertEqual(LinkChecker.check(site: site).problems, [])

        // A truncated picture is not a stored render either.
        let png = renders.appendingPathComponent(victim).appendingPathComponent("0.png")
        let bytes = try Data(contentsOf: png)
        try bytes.prefix(bytes.count - 20).write(to: png)
        XCTAssertNil(GalleryRenderer.stored(victim, store: renders))
        let again2 = try vizlab(arguments)
        XCTAssertEqual(again2.status, 0, again2.stderr)
        XCTAssertEqual(try summary(site)["rendered"] as? Int, 1)
        XCTAssertEqual(try Data(contentsOf: png), bytes, "rendered again, the same bytes")
    }

    /// One worker or two, or the job rendered in this (multi-threaded) process: the same bytes. Another seed
    /// gives other bytes, so the comparison is not of constants.
    func testJobsDoNotChangeTheRenders() throws {
        let (site, arguments) = try gallery()
        let other = scratch.appendingPathComponent("one-worker")
        var args = arguments
        args[args.firstIndex(of: "--out")! + 1] = other.path
        args[args.firstIndex(of: "--jobs")! + 1] = "1"
        let run = try vizlab(args)
        XCTAssertEqual(run.status, 0, run.stderr)
        let a = site.appendingPathComponent("renders"), b = other.appendingPathComponent("renders")
        let ids = try FileManager.default.contentsOfDirectory(atPath: a.path).filter { !$0.hasPrefix(".") }.sorted()
        XCTAssertEqual(ids, try FileManager.default.contentsOfDirectory(atPath: b.path).filter { !$0.hasPrefix(".") }.sorted())
        var compared = 0
        for id in ids {
            for file in try FileManager.default.contentsOfDirectory(atPath: a.appendingPathComponent(id).path) where file.hasSuffix(".png") {
                XCTAssertEqual(try Data(contentsOf: a.appendingPathComponent(id).appendingPathComponent(file)),
                               try Data(contentsOf: b.appendingPathComponent(id).appendingPathComponent(file)), "\(id)/\(file)")
                compared += 1
            }
        }
        XCTAssertEqual(compared, 2 * 3 + 2 * 2 + 1)

        // The channel job again, here, on every core of this process.
        let stored = try XCTUnwrap(ids.compactMap { GalleryRenderer.stored($0, store: a) }.first { $0.job.kind == .channel })
        let here = scratch.appendingPathComponent("in-process")
        let model = try ModelStore.load(ModelRequest(model: "lite0"))
        XCTAssertGreaterThan(Parallel.threads, 1, "the in-process render should be multi-threaded")
        try GalleryRenderer.run(stored.job, model: model, store: here)
        for p in stored.pictures {
            XCTAssertEqual(try Data(contentsOf: here.appendingPathComponent(stored.id).appendingPathComponent(p.file)),
                           try Data(contentsOf: a.appendingPathComponent(stored.id).appendingPathComponent(p.file)), "in-process \(p.file)")
        }
        var reseeded = stored.job
        reseeded.settings.seed += 1
        try GalleryRenderer.run(reseeded, model: model, store: here)
        XCTAssertNotEqual(try Data(contentsOf: here.appendingPathComponent(reseeded.id).appendingPathComponent("0.png")),
                          try Data(contentsOf: a.appendingPathComponent(stored.id).appendingPathComponent("0.png")), "another seed, another picture")
    }

    func testBadArgumentsAreOneLineAndWriteNothing() throws {
        let out = scratch.appendingPathComponent("site")
        let notADatabase = scratch.appendingPathComponent("notes.sqlite")
        let notes = Data("not a database\n".utf8)
        try notes.write(to: notADatabase)
        let cases: [([String], String)] = [
            (["--layers", "logits"], "no spatial extent"),
            (["--layers", "blocks.99"], "no layer 'blocks.99'"),
            (["--layers", "blocks.2", "--channels", "3,99"], "99 is out of range for blocks.2"),
            (["--channels", "many"], "--channels must be"),
            (["--class", "notaclass"], "--class"),
            (["--attacks", scratch.appendingPathComponent("nowhere").path], "not a readable folder"),
            (["--attacks", scratch.path], "no attack reports"),
            (["--dataset", scratch.appendingPathComponent("none.sqlite").path], "no such file"),
            (["--steps", "0"], "--steps must be"),
            (["--layers", "blocks.2,blocks.5,blocks.2"], "blocks.2 is listed twice"),
            (["--layers", "blocks.2", "--channels", "3,4,3"], "3 is listed twice"),
            (["--diversity", "1"], "--diversity must be 0 (none) or 2"),
            (["--jobs", "0"], "--jobs must be 1…64"),
            (["--dataset", notADatabase.path], "--dataset \(notADatabase.path)"),
            (["--no-such-option"], "Unknown option '--no-such-option'"),
            (["--steps", "many"], "'many' is invalid for '--steps"),
        ]
        for (args, message) in cases {
            let run = try vizlab(["gallery", "--out", out.path] + args)
            XCTAssertNotEqual(run.status, 0, args.joined(separator: " "))
            let lines = run.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(args): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains(message), "\(args): \(run.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "\(args) wrote \(out.path)")
        }
        XCTAssertEqual(try Data(contentsOf: notADatabase), notes, "--dataset is opened read-only")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted(), ["notes.sqlite"], "no -wal/-journal beside it")
    }

    /// Headless Chromium opens the index, a layer page and a channel page: every picture loads (the page's own
    /// check sets data-broken-images), nothing is logged to the console; screenshots are kept for a person to
    /// look at. A page with a picture removed must fail the same check.
    func testPagesLoadInHeadlessChromium() throws {
        guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            XCTFail("headless Chromium is needed for this test: `make setup` installs Debian's chromium"); return
        }
        let (site, _) = try gallery()
        let shots = Self.binary.deletingLastPathComponent().appendingPathComponent("gallery-screenshots")
        try FileManager.default.createDirectory(at: shots, withIntermediateDirectories: true)
        for page in ["index.html", "layers/blocks.2/index.html", "layers/blocks.2/1.html"] {
            let (dom, console) = try load(chromium, site.appendingPathComponent(page))
            XCTAssertTrue(dom.contains("data-broken-images=\"0\""), "\(page): pictures failed to load or the check did not run: \(console)")
            XCTAssertEqual(console, [], page)
            let shot = shots.appendingPathComponent(page.replacingOccurrences(of: "/", with: "_") + ".png")
            _ = try run(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,1400",
                                   "--screenshot=\(shot.path)", site.appendingPathComponent(page).absoluteString])
            XCTAssertGreaterThan((try? Data(contentsOf: shot))?.count ?? 0, 10_000, "screenshot \(shot.path)")
        }
        print("gallery screenshots: \(shots.path)")

        // The negative control: a copy of the site with one thumbnail gone.
        let copy = scratch.appendingPathComponent("copy")
        try FileManager.default.copyItem(at: site, to: copy)
        let layerPage = try String(contentsOf: copy.appendingPathComponent("layers/blocks.2/index.html"), encoding: .utf8)
        let src = try XCTUnwrap(layerPage.components(separatedBy: "src=\"../../").dropFirst().first?.components(separatedBy: "\"").first)
        try FileManager.default.removeItem(at: copy.appendingPathComponent(src))
        let (dom, console) = try load(chromium, copy.appendingPathComponent("layers/blocks.2/index.html"))
        XCTAssertTrue(dom.contains("data-broken-images=\"1\""), "the missing picture was not noticed")
        XCTAssertEqual(console.count, 1, "\(console)")
    }

    /// The DOM after load and the console lines Chromium logged.
    func load(_ chromium: String, _ page: URL) throws -> (dom: String, console: [String]) {
        let r = try run(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                                   "--virtual-time-budget=5000", "--dump-dom", page.absoluteString])
        let console = r.stderr.split(separator: "\n").filter { $0.contains(":CONSOLE") || $0.contains("Uncaught") }.map(String.init)
        return (r.stdout, console)
    }

    func run(_ tool: String, _ args: [String]) throws -> (stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        // stderr to a file: Chromium can fill a pipe there before it closes stdout.
        let errURL = scratch.appendingPathComponent("chromium-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let errFile = try FileHandle(forWritingTo: errURL)
        let out = Pipe()
        p.standardOutput = out; p.standardError = errFile
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        try errFile.close()
        return (String(decoding: o, as: UTF8.self), (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }
}
