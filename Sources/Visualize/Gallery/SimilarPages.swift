import Engine
import Foundation
import Similarity

/// "Similar" pages: for every indexed image, its nearest images by cosine on the pooled embedding (exact search:
/// a gallery's index is small enough, and exact needs no graph file), plus `similar/index.html` listing them all.
extension GallerySite {
    struct SimilarPage { var path: String; var html: String }

    static let similarNeighbours = 12

    func prepareSimilar(_ index: ExampleIndex, made: inout Int) throws -> (pages: [SimilarPage], count: Int) {
        guard let layer = try index.meta("embedding") else { return ([], 0) }
        let vectors: VectorSet
        do { vectors = try index.vectors(layer: layer).prepared(for: .cosine) } catch { return ([], 0) }
        let k = min(Self.similarNeighbours, max(vectors.count - 1, 1))
        let lists = ExactSearch.search(vectors, in: vectors, k: k, metric: .cosine, exclude: vectors.ids)
        let images = try index.images()
        var byID: [Int64: ExampleIndex.ImageRecord] = [:]
        for r in images.values { byID[r.id] = r }
        // Each image's thumbnail, named by its content (computed once: every page refers to a dozen of them).
        var thumbs: [Int64: String] = [:]
        for id in vectors.ids {
            thumbs[id] = "examples/\(String(SHA256.hex(of: Data("\(Self.examplePictureVersion) \(byID[id]?.sha256 ?? "\(id)") similar-view 112".utf8)).prefix(20))).png"
        }
        func thumb(_ id: Int64) -> String { thumbs[id]! }
        // Thumbnails of every image that lacks one, on both cores.
        let missing = vectors.ids.filter { !FileManager.default.fileExists(atPath: root.appendingPathComponent(thumb($0)).path) }
        let lock = NSLock()
        var unreadable = Set<Int64>(), count = 0
        DispatchQueue.concurrentPerform(iterations: missing.count) { i in
            let id = missing[i]
            do {
                guard let path = byID[id]?.path else { throw ImageError(file: "\(id)", reason: "not in the index") }
                let view = preprocessing.view(Preprocess.compositeOnWhite(try ImageDecoder.decode(contentsOf: URL(fileURLWithPath: path))))
                try PNGEncoder.write(Preprocess.resizeBicubic(view, width: 112, height: 112), to: root.appendingPathComponent(thumb(id)))
                lock.lock(); count += 1; lock.unlock()
            } catch {
                lock.lock(); unreadable.insert(id); lock.unlock()
            }
        }
        made += count
        func figure(_ id: Int64, caption: String, size: Int = 112) -> String {
            let name = URL(fileURLWithPath: byID[id]?.path ?? "?").lastPathComponent
            let img = unreadable.contains(id) ? "<div class=missing style=\"width:\(size)px;height:\(size)px\">unreadable</div>"
                : "<img src=\"../\(thumb(id))\" width=\(size) height=\(size) alt=\"\(escapeHTML(name))\" loading=lazy>"
            return "<figure class=example title=\"\(escapeHTML(byID[id]?.path ?? ""))\"><a href=\"\(id).html\">\(img)</a><figcaption>\(caption)\(escapeHTML(name))</figcaption></figure>"
        }
        var pages: [SimilarPage] = []
        var all = ""
        for (row, id) in vectors.ids.enumerated() {
            let neighbours = lists[row].map { figure($0.id, caption: "<span class=value>\(String(format: "%.3f", 1 - $0.distance))</span><br>") }.joined()
            let name = URL(fileURLWithPath: byID[id]?.path ?? "?").lastPathComponent
            let body = """
            <nav><a href="../index.html">gallery</a> › <a href="index.html">similar images</a> › \(escapeHTML(name))</nav>
            <h1>\(escapeHTML(name))</h1>
            <div class=row>\(figure(id, caption: "", size: 224))</div>
            <p>\(escapeHTML(byID[id]?.path ?? ""))</p>
            <h2>Its \(lists[row].count) nearest images</h2>
            <p>By cosine similarity of the pooled embedding (<code>\(escapeHTML(layer))</code>, exact search over \(vectors.count) images) — what <code>vizlab similar</code> answers. Click one to walk on.</p>
            <div class=row>\(neighbours)</div>
            """
            pages.append(SimilarPage(path: "similar/\(id).html", html: page(title: "\(name) — similar images — vizlab gallery", depth: 1, body: body)))
            all += figure(id, caption: "")
        }
        let listing = """
        <nav><a href="../index.html">gallery</a> › similar images</nav>
        <h1>Similar images</h1>
        <p>\(vectors.count) indexed images; each page shows an image's nearest neighbours by the model's pooled embedding.</p>
        <div class=row>\(all)</div>
        """
        pages.append(SimilarPage(path: "similar/index.html", html: page(title: "similar images — vizlab gallery", depth: 1, body: listing)))
        return (pages, count)
    }
}
