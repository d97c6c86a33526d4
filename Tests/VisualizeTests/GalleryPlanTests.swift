import Foundation
import XCTest
@testable import Engine
@testable import Visualize

/// The gallery's job plan (what is cached under which hash) and its link checker.
final class GalleryPlanTests: XCTestCase {
    static func layer(_ name: String, channels: Int) -> LayerInfo {
        LayerInfo(name: name, kind: .add, shape: [channels, 14, 14], receptiveField: 83, jump: 16, start: 7.5, multiplyAdds: 0)
    }

    func plan(channels: Int, steps: Int = 256, diversity: Int = 4) -> GalleryPlan {
        var o = GalleryPlan.Options()
        o.layers = [(Self.layer("blocks.5", channels: 80), Array(0..<channels))]
        o.unitSettings.steps = steps
        o.classes = [("tabby", [281]), ("domestic cat", [281, 282, 283, 284, 285])]
        o.diversity = diversity
        return GalleryPlan(o)
    }

    /// Asking for more channels keeps every chunk already planned (so its renders are reused); any setting that
    /// changes the pictures changes the hash.
    func testGrowingAGalleryReusesItsRenders() {
        let small = plan(channels: 8), large = plan(channels: 20)
        let smallIDs = Set(small.jobs.map(\.id)), largeIDs = Set(large.jobs.map(\.id))
        XCTAssertTrue(smallIDs.isSubset(of: largeIDs), "the 8-channel plan's jobs reappear in the 20-channel plan")
        XCTAssertEqual(plan(channels: 8).jobs.map(\.id), small.jobs.map(\.id), "ids are stable")
        let unitIDs = Set(small.jobs.filter { $0.kind != .classes }.map(\.id))
        XCTAssertTrue(Set(plan(channels: 8, steps: 255).jobs.map(\.id)).isDisjoint(with: unitIDs), "steps are part of every unit job's id")
        XCTAssertTrue(Set(plan(channels: 8, steps: 255).jobs.map(\.id)).contains(small.jobs.first { $0.kind == .classes }!.id),
                      "the class renders have their own settings")
        // channel + negative + neuron jobs of 8 channels, 8 diversity jobs, 1 class job.
        XCTAssertEqual(small.jobs.count, 3 + 8 + 1)
        XCTAssertEqual(large.jobs.count, 3 * 3 + 20 + 1)
        XCTAssertEqual(Set(large.jobs.map(\.id)).count, large.jobs.count, "no two jobs share an id")
    }

    /// Every picture a page asks for is in a job, at its own index; the objectives say what they maximize.
    func testEveryPictureHasAPlace() throws {
        let p = plan(channels: 10)
        for c in 0..<10 {
            for kind in [GalleryJob.Kind.channel, .negative, .neuron] {
                let ref = try XCTUnwrap(p.ref(kind, layer: "blocks.5", channel: c))
                let job = try XCTUnwrap(p.jobs.first { $0.id == ref.job })
                XCTAssertEqual(job.kind, kind)
                XCTAssertEqual(job.units[ref.index], [c])
            }
            for copy in 0..<4 {
                let ref = try XCTUnwrap(p.ref(.diversity, layer: "blocks.5", channel: c, copy: copy))
                XCTAssertEqual(ref.index, copy)
            }
            XCTAssertNil(p.ref(.diversity, layer: "blocks.5", channel: c, copy: 4))
        }
        XCTAssertNil(p.ref(.channel, layer: "blocks.5", channel: 10))
        let classJob = try XCTUnwrap(p.jobs.first { $0.kind == .classes })
        XCTAssertEqual(classJob.units, [[281], [281, 282, 283, 284, 285]])
        XCTAssertEqual(classJob.settings.batch, 2)
        let negative = try XCTUnwrap(p.jobs.first { $0.kind == .negative })
        XCTAssertTrue(negative.objectives()[0].description.hasPrefix("-"), negative.objectives()[0].description)
        XCTAssertFalse(negative.measures()[0].description.hasPrefix("-"), "a negative render reports the channel's own mean")
        XCTAssertNotNil(p.jobs.first { $0.kind == .diversity }?.extraObjective())
        XCTAssertNil(plan(channels: 2, diversity: 0).jobs.first { $0.kind == .diversity })
    }

    /// The checker finds a missing picture, a missing page, a link above the site and a link off the machine, and
    /// passes what resolves.
    func testLinkCheckerFindsWhatIsBroken() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("links-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("a/b"), withIntermediateDirectories: true)
        try Data("x".utf8).write(to: root.appendingPathComponent("a/pic.png"))
        try Data("""
        <a href="a/b/page.html#top">ok</a> <img src="a/pic.png"> <a href="#here">anchor</a>
        """.utf8).write(to: root.appendingPathComponent("index.html"))
        try Data("""
        <a href="../../index.html">up</a><img src="../pic.png"><img src="../missing.png"><a href="gone.html">x</a>
        <a href="../../../outside.html">out</a><img src="https://example.com/x.png">
        """.utf8).write(to: root.appendingPathComponent("a/b/page.html"))
        let report = LinkChecker.check(site: root)
        XCTAssertEqual(report.pages, 2)
        XCTAssertEqual(report.links, 9)
        XCTAssertEqual(report.problems.map(\.target).sorted(), ["../../../outside.html", "../missing.png", "gone.html", "https://example.com/x.png"])
        XCTAssertTrue(report.problems.allSatisfy { $0.page == "a/b/page.html" })
    }

    func testEscapesHTML() {
        XCTAssertEqual(escapeHTML("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;")
    }

    /// A killed worker's `.partial-<id>-<pid>` goes; a live process's (another gallery run on the same site) stays.
    func testOnlyDeadWorkersPartialsAreRemoved() throws {
        let store = FileManager.default.temporaryDirectory.appendingPathComponent("vizlab-partials-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: store) }
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let live = ".partial-0123456789abcdef0123-\(getpid())", dead = ".partial-0123456789abcdef0123-\(finished.processIdentifier)"
        for name in [live, dead, "0123456789abcdef0123"] {
            try FileManager.default.createDirectory(at: store.appendingPathComponent(name), withIntermediateDirectories: true)
        }
        GalleryRenderer.removePartials(store: store)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: store.path).sorted(), [live, "0123456789abcdef0123"].sorted())
    }
}
