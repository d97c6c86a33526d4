import Engine
import Foundation

/// Dataset examples on channel pages: each channel's top images (receptive-field patches) and bottom ones (the whole
/// view), drawn once into `examples/` and named by content, each linked to the image's "similar" page.
extension GallerySite {
    /// One dataset example shown on a channel page: a receptive-field patch (top) or the whole view (bottom).
    struct Example {
        var path: String
        var value: Float
        var x: Int, y: Int
        var patch: Bool
        var box: (x0: Int, y0: Int, side: Int)
        /// Site-relative picture, named by the image's content hash and what is cut out of it.
        var picture: String
        /// The image's id in the index (its similar page).
        var imageID: Int64?
    }

    /// Part of every example picture's name: bumped when the way they are cut or drawn changes.
    static let examplePictureVersion = "examples-v1"

    /// The examples of every channel page ("layer:channel" → top, bottom), and the pictures made for them: each image
    /// is decoded once for all its crops, the images spread over both cores.
    func prepareExamples(_ index: ExampleIndex, made: inout Int) throws -> (lists: [String: [[Example]]], unreadable: Set<String>) {
        let indexed = Set(try index.layerTable().map(\.name))
        let images = try index.images()
        var lists: [String: [[Example]]] = [:]
        var wanted: [String: [Example]] = [:]
        for (info, channels) in plan.options.layers where indexed.contains(info.name) {
            for c in channels {
                lists["\(info.name):\(c)"] = try RankEnd.allCases.map { end in
                    try index.ranked(layer: info.name, channel: c, by: .max, end: end, limit: exampleCount).map { e, path in
                        let box = info.receptiveBox(x: e.x, y: e.y)
                        let patch = end == .top && info.receptiveField < preprocessing.crop
                        let what = patch ? "\(box.x0),\(box.y0),\(box.side)" : (info.receptiveField < preprocessing.crop ? "view \(box.x0),\(box.y0),\(box.side)" : "view")
                        let key = String(SHA256.hex(of: Data("\(Self.examplePictureVersion) \(images[path]?.sha256 ?? path) \(what) 112".utf8)).prefix(20))
                        let example = Example(path: path, value: e.value, x: e.x, y: e.y, patch: patch, box: box, picture: "examples/\(key).png",
                                              imageID: images[path]?.id)
                        if !FileManager.default.fileExists(atPath: root.appendingPathComponent(example.picture).path) {
                            wanted[path, default: []].append(example)
                        }
                        return example
                    }
                }
            }
        }
        let paths = Array(wanted.keys).sorted()
        let lock = NSLock()
        var unreadable = Set<String>(), count = 0
        DispatchQueue.concurrentPerform(iterations: paths.count) { i in
            let path = paths[i]
            do {
                let view = preprocessing.view(Preprocess.compositeOnWhite(try ImageDecoder.decode(contentsOf: URL(fileURLWithPath: path))))
                var done = Set<String>()
                for e in wanted[path]! where done.insert(e.picture).inserted {
                    let shown = e.patch ? ExampleView.crop(view, box: e.box) : ExampleView.outline(view, box: e.box.side < preprocessing.crop ? e.box : nil)
                    try PNGEncoder.write(Preprocess.resizeBicubic(shown, width: 112, height: 112), to: root.appendingPathComponent(e.picture))
                }
                lock.lock(); count += done.count; lock.unlock()
            } catch {
                lock.lock(); unreadable.insert(path); lock.unlock()
            }
        }
        made += count
        return (lists, unreadable)
    }

    /// Top examples as receptive-field patches around the max, bottom ones as the whole model view.
    func exampleSection(_ info: LayerInfo, _ lists: [[Example]], unreadable: Set<String>, imageCount: Int, database: String) -> String {
        var out = ""
        for (end, rows) in zip(RankEnd.allCases, lists) {
            var figures = ""
            for e in rows {
                let name = URL(fileURLWithPath: e.path).lastPathComponent
                if unreadable.contains(e.path) {
                    figures += "<figure class=example><div class=missing style=\"width:112px;height:112px\">unreadable</div><figcaption>\(shortNumber(e.value))<br>\(escapeHTML(name))</figcaption></figure>"
                } else {
                    let img = "<img src=\"../../\(e.picture)\" width=112 height=112 alt=\"\(escapeHTML(name))\">"
                    let linked = e.imageID.map { "<a href=\"../../similar/\($0).html\" title=\"its nearest images\">\(img)</a>" } ?? img
                    figures += "<figure class=example title=\"\(escapeHTML(e.path)) — max \(shortNumber(e.value)) at (\(e.x), \(e.y))\">\(linked)<figcaption><span class=value>\(shortNumber(e.value))</span><br>\(escapeHTML(name))</figcaption></figure>"
                }
            }
            let what = end == .top
                ? "Top \(rows.count) by the channel's spatial max" + (info.receptiveField < preprocessing.crop ? " — the \(info.receptiveField) px receptive field around the max" : " (the receptive field covers the whole view)")
                : "Bottom \(rows.count) by the spatial max — the whole model view"
            out += "<h3>\(what)</h3><div class=row>\(figures.isEmpty ? "<p class=note>none indexed</p>" : figures)</div>\n"
        }
        return "<p>From \(imageCount) images indexed in <code>\(escapeHTML(database))</code>; the value is the channel's max over the image (hover for the file).</p>\n" + out
    }

}
