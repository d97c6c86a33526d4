import Engine
import Foundation

/// Writes the static gallery: `index.html` (the model's layers), `layers/<layer>/index.html` (a layer's channel
/// thumbnails), `layers/<layer>/<channel>.html` (a channel's renders, dataset examples and parameters),
/// `classes.html`, `attacks.html`, `similar/<image id>.html` (an indexed image's neighbours), with the pictures beside them. Plain HTML and CSS, a little vanilla JS, no
/// network; every link is relative so the folder works from `file://` and can be moved as a whole.
public struct GallerySite {
    /// An attack report panel to show (the CLI reads `vizlab attack` output into these).
    public struct Attack: Sendable {
        public var panel: URL
        public var title: String
        public var lines: [String]
        public var success: Bool
        public init(panel: URL, title: String, lines: [String], success: Bool) {
            self.panel = panel; self.title = title; self.lines = lines; self.success = success
        }
    }

    public var root: URL
    public var plan: GalleryPlan
    /// Where rendered jobs are stored (`root/renders`).
    public var store: URL { root.appendingPathComponent("renders", isDirectory: true) }
    public var modelLayers: [LayerInfo]
    public var modelDescription: String
    /// How the model sees a photo (the dataset examples are shown as the model saw them).
    public var preprocessing: Preprocessing
    public var examples: ExampleIndex?
    public var exampleCount = 10
    public var attacks: [Attack] = []
    /// The command line, shown on the index page.
    public var command: String

    public init(root: URL, plan: GalleryPlan, modelLayers: [LayerInfo], modelDescription: String, preprocessing: Preprocessing, command: String) {
        self.root = root; self.plan = plan; self.modelLayers = modelLayers; self.preprocessing = preprocessing
        self.modelDescription = modelDescription; self.command = command
    }

    public struct Summary: Codable, Sendable {
        public var pages = 0
        /// Pages whose content changed (the others are left untouched).
        public var pagesWritten = 0
        public var examplePicturesMade = 0
        public var missingRenders = 0
        /// One per indexed image: its nearest neighbours by the pooled embedding.
        public var similarPages = 0
        public var index = ""
    }

    /// Writes every page (only files whose content changed) and the example pictures that are missing.
    public func write() throws -> Summary {
        var summary = Summary()
        for dir in ["layers", "examples", "attacks"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(dir), withIntermediateDirectories: true)
        }
        var results: [String: GalleryJobResult] = [:]
        for job in plan.jobs { results[job.id] = GalleryRenderer.stored(job.id, store: store) }
        let pictures = Pictures(results: results, plan: plan)
        summary.missingRenders = plan.jobs.filter { results[$0.id] == nil }.count

        func put(_ relative: String, _ text: String) throws {
            summary.pages += 1
            let url = root.appendingPathComponent(relative)
            if let old = try? Data(contentsOf: url), old == Data(text.utf8) { return }
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try AtomicFile.write(Data(text.utf8), to: url)
            summary.pagesWritten += 1
        }
        try put("style.css", Self.css)
        try put("gallery.js", Self.javascript)
        try put("index.html", indexPage(pictures))
        let prepared = try examples.map { try prepareExamples($0, made: &summary.examplePicturesMade) }
        let imageCount = (try? examples?.counts().images) ?? 0
        for (info, channels) in plan.options.layers {
            try put("layers/\(info.name)/index.html", layerPage(info, channels, pictures))
            for (i, c) in channels.enumerated() {
                var exampleHTML = ""
                if let examples, let prepared {
                    if let lists = prepared.lists["\(info.name):\(c)"] {
                        exampleHTML = exampleSection(info, lists, unreadable: prepared.unreadable, imageCount: imageCount,
                                                     database: examples.url.lastPathComponent)
                    } else {
                        exampleHTML = "<p class=note>The index \(escapeHTML(examples.url.path)) has no lists for \(escapeHTML(info.name)) (index it with its --layers).</p>"
                    }
                } else {
                    exampleHTML = "<p class=note>No dataset examples: run <code>vizlab index FOLDER</code>, then give the database with <code>--dataset</code>.</p>"
                }
                try put("layers/\(info.name)/\(c).html",
                        channelPage(info, c, previous: i > 0 ? channels[i - 1] : nil, next: i + 1 < channels.count ? channels[i + 1] : nil,
                                    pictures, exampleHTML: exampleHTML))
            }
        }
        if let examples {
            let similar = try prepareSimilar(examples, made: &summary.examplePicturesMade)
            for page in similar.pages { try put(page.path, page.html) }
            summary.similarPages = similar.pages.count
        }
        try put("classes.html", classesPage(pictures))
        try put("attacks.html", try attacksPage())
        summary.index = root.appendingPathComponent("index.html").path
        return summary
    }

    // MARK: - Pictures from the store

    struct Pictures {
        var results: [String: GalleryJobResult]
        var plan: GalleryPlan
        /// (src relative to the site root, the stored picture) or nil when not rendered.
        func get(_ ref: GalleryPlan.Ref?) -> (src: String, picture: GalleryJobResult.Picture, result: GalleryJobResult)? {
            guard let ref, let r = results[ref.job], ref.index < r.pictures.count else { return nil }
            return ("renders/\(ref.job)/\(r.pictures[ref.index].file)", r.pictures[ref.index], r)
        }
        func unit(_ kind: GalleryJob.Kind, _ layer: String, _ c: Int, copy: Int = 0) -> (src: String, picture: GalleryJobResult.Picture, result: GalleryJobResult)? {
            get(plan.ref(kind, layer: layer, channel: c, copy: copy))
        }
    }

    // MARK: - Pages

    func indexPage(_ pictures: Pictures) -> String {
        let shown = Dictionary(uniqueKeysWithValues: plan.options.layers.map { ($0.info.name, $0.channels) })
        let s = plan.options.unitSettings
        var rows = "", subRows = ""
        for l in modelLayers {
            let isSublayer = l.name.hasSuffix(".expand") || l.name.hasSuffix(".depthwise") || l.name.hasSuffix(".project")
            let shape = l.shape.map(String.init).joined(separator: "×")
            var cell = ""
            if let channels = shown[l.name] {
                let strip = channels.prefix(6).compactMap { c in pictures.unit(.channel, l.name, c).map { "<img src=\"\($0.src)\" width=48 height=48 alt=\"\(escapeHTML(l.name)):\(c)\">" } }.joined()
                cell = "<a href=\"layers/\(l.name)/index.html\">\(channels.count) of \(l.channels) channels</a> <span class=strip>\(strip)</span>"
            }
            let bar = Int((Double(l.channels).squareRoot() * 3).rounded())
            let row = "<tr><td>\(escapeHTML(l.name))</td><td>\(l.kind.rawValue)</td><td>\(shape)</td><td><span class=bar style=\"width:\(bar)px\"></span> \(l.channels)</td>"
                + "<td>\(l.receptiveField)</td><td>\(l.jump)</td><td>\(cell)</td></tr>\n"
            if isSublayer && shown[l.name] == nil { subRows += row } else { rows += row }
        }
        let header = "<thead><tr><th>layer</th><th>op</th><th>shape (C×H×W at \(preprocessing.crop)²)</th><th>channels</th><th>receptive field (px)</th><th>stride (px)</th><th>in this gallery</th></tr></thead>"
        let body = """
        <h1>vizlab gallery</h1>
        <p>\(escapeHTML(modelDescription)).</p>
        <p>Renders: \(s.steps) steps at \(s.size)×\(s.size), seed \(s.seed), total variation \(shortNumber(s.regularizers.totalVariation)), \(s.parameterization.rawValue) parameterization\(s.decorrelate ? ", decorrelated colour" : ""), Lucid's transforms\(s.transforms == .none ? " off" : ""). Every value on these pages is measured on the picture as saved (8-bit PNG, read back).</p>
        <nav class=sections><a href="classes.html">Ideal images of \(plan.options.classes.count) classes</a> · <a href="attacks.html">\(attacks.count) adversarial examples</a>\(examples == nil ? "" : " · <a href=\"similar/index.html\">similar images</a>")</nav>
        <h2>Layers</h2>
        <p>The stem, the 16 MBConv blocks (their outputs; a block adds its input back when stride 1 and the width is unchanged), the 1×1 head, average pooling and the 1000 logits.</p>
        <table class=layers>\(header)<tbody>
        \(rows)</tbody></table>
        <details><summary>Inside the blocks: expand (1×1), depthwise (3×3 or 5×5) and project (1×1) convolutions</summary>
        <table class=layers>\(header)<tbody>
        \(subRows)</tbody></table></details>
        <p class=note>Made by <code>\(escapeHTML(command))</code>.</p>
        """
        return page(title: "vizlab gallery", depth: 0, body: body)
    }

    func layerPage(_ info: LayerInfo, _ channels: [Int], _ pictures: Pictures) -> String {
        var figures = ""
        for c in channels {
            if let p = pictures.unit(.channel, info.name, c) {
                figures += "<figure data-channel=\"\(c)\"><a href=\"\(c).html\"><img src=\"../../\(p.src)\" width=128 height=128 alt=\"\(escapeHTML(info.name)):\(c)\"></a><figcaption><a href=\"\(c).html\">\(c)</a> <span class=value>\(shortNumber(p.picture.value))</span></figcaption></figure>\n"
            } else {
                figures += "<figure data-channel=\"\(c)\"><a href=\"\(c).html\"><div class=missing>not rendered</div></a><figcaption><a href=\"\(c).html\">\(c)</a></figcaption></figure>\n"
            }
        }
        let body = """
        <nav><a href="../../index.html">gallery</a> / \(escapeHTML(info.name))</nav>
        <h1>\(escapeHTML(info.name))</h1>
        <p>\(info.kind.rawValue) output, \(info.shape.map(String.init).joined(separator: "×")) at \(preprocessing.crop)²; receptive field \(info.receptiveField) px, stride \(info.jump) px. \(channels.count) of \(info.channels) channels shown, each maximizing its spatial mean (value: that mean on the saved picture).</p>
        <p><label>Channel <input id=filter type=search placeholder="number" size=6></label></p>
        <div class=grid>
        \(figures)</div>
        """
        return page(title: "\(info.name) — vizlab gallery", depth: 2, body: body)
    }

    func channelPage(_ info: LayerInfo, _ c: Int, previous: Int?, next: Int?, _ pictures: Pictures, exampleHTML: String) -> String {
        func figure(_ p: (src: String, picture: GalleryJobResult.Picture, result: GalleryJobResult)?, _ title: String, _ valueLabel: String, size: Int = 224) -> String {
            guard let p else { return "<figure><div class=missing style=\"width:\(size)px;height:\(size)px\">not rendered yet</div><figcaption>\(title)</figcaption></figure>" }
            return "<figure><img src=\"../../\(p.src)\" width=\(size) height=\(size) alt=\"\(escapeHTML(title))\"><figcaption>\(title)<br><span class=value>\(valueLabel) \(shortNumber(p.picture.value))</span></figcaption></figure>"
        }
        var jobs: [GalleryJobResult] = []
        func note(_ p: (src: String, picture: GalleryJobResult.Picture, result: GalleryJobResult)?) -> (src: String, picture: GalleryJobResult.Picture, result: GalleryJobResult)? {
            if let p, !jobs.contains(where: { $0.id == p.result.id }) { jobs.append(p.result) }
            return p
        }
        var main = figure(note(pictures.unit(.channel, info.name, c)), "channel objective", "mean")
        if plan.options.neuron { main += figure(note(pictures.unit(.neuron, info.name, c)), "neuron objective (centre)", "centre value") }
        if plan.options.negative { main += figure(note(pictures.unit(.negative, info.name, c)), "negative channel objective", "mean") }
        var diversity = ""
        if plan.options.diversity > 1 {
            let figures = (0..<plan.options.diversity).map { figure(note(pictures.unit(.diversity, info.name, c, copy: $0)), "#\($0 + 1)", "mean", size: 160) }.joined()
            diversity = "<h2>Diversity</h2><p>\(plan.options.diversity) pictures of the channel objective rendered together, pushed apart by Lucid's diversity term (weight \(shortNumber(plan.options.diversityWeight)), Gram matrices of \(escapeHTML(info.name))).</p><div class=row>\(figures)</div>"
        }
        let parameters = jobs.map { r -> String in
            let pics = r.pictures.map { "\($0.file) \($0.name): value \(shortNumber($0.value)), top-1 \($0.top1.name) \(shortNumber($0.top1.probability))" }.joined(separator: "\n")
            return "<h3>\(r.job.kind.rawValue) — <a href=\"../../renders/\(r.id)/job.json\">renders/\(r.id)/job.json</a></h3><pre>objective: \(escapeHTML(r.objective))\n\(escapeHTML(pics))\n\n\(escapeHTML(Self.prettyJSON(r.job)))</pre>"
        }.joined(separator: "\n")
        let nav = [previous.map { "<a rel=prev href=\"\($0).html\">← \($0)</a>" } ?? "<span class=off>← </span>",
                   "<a href=\"index.html\">all of \(escapeHTML(info.name))</a>",
                   next.map { "<a rel=next href=\"\($0).html\">\($0) →</a>" } ?? "<span class=off> →</span>"].joined(separator: " · ")
        let body = """
        <nav><a href="../../index.html">gallery</a> / <a href="index.html">\(escapeHTML(info.name))</a> / \(c)</nav>
        <nav class=pager>\(nav)</nav>
        <h1>\(escapeHTML(info.name)):\(c)</h1>
        <p>Channel \(c) of \(info.channels) in \(escapeHTML(info.name)) (\(info.shape.map(String.init).joined(separator: "×")) at \(preprocessing.crop)²; receptive field \(info.receptiveField) px). Values are measured on the saved pictures.</p>
        <h2>Feature visualization</h2><div class=row>\(main)</div>
        \(diversity)
        <h2>Dataset examples</h2>
        \(exampleHTML)
        <h2>Parameters</h2><details><summary>The render jobs behind this page (\(jobs.count))</summary>\(parameters)</details>
        """
        return page(title: "\(info.name):\(c) — vizlab gallery", depth: 2, body: body)
    }

    func classesPage(_ pictures: Pictures) -> String {
        var figures = ""
        for (i, cls) in plan.options.classes.enumerated() {
            let title = cls.indices.count > 1 ? "\(cls.name) (\(cls.indices.count) classes)" : "\(cls.name) (\(cls.indices[0]))"
            if let p = pictures.get(plan.classRef(i)) {
                figures += "<figure><img src=\"\(p.src)\" width=224 height=224 alt=\"\(escapeHTML(cls.name))\"><figcaption>\(escapeHTML(title))<br><span class=value>p = \(String(format: "%.3f", p.picture.classProbability ?? 0))</span>, top-1 \(escapeHTML(p.picture.top1.name))</figcaption></figure>\n"
            } else {
                figures += "<figure><div class=missing style=\"width:224px;height:224px\">not rendered yet</div><figcaption>\(escapeHTML(title))</figcaption></figure>\n"
            }
        }
        let s = plan.options.classSettings
        let body = """
        <nav><a href="index.html">gallery</a> / classes</nav>
        <h1>Ideal images of classes</h1>
        <p>Each picture maximizes its class's logit (a WordNet group: log Σ exp of its classes' logits), \(s.steps) steps at \(s.size)×\(s.size), seed \(s.seed). p is the model's probability of the class (group: summed) on the saved picture, fed as it is.</p>
        <div class=row>
        \(figures)</div>
        """
        return page(title: "classes — vizlab gallery", depth: 0, body: body)
    }

    func attacksPage() throws -> String {
        var figures = ""
        for a in attacks {
            let data = try Data(contentsOf: a.panel)
            let key = String(SHA256.hex(of: data).prefix(20))
            let rel = "attacks/\(key).png"
            let url = root.appendingPathComponent(rel)
            if !FileManager.default.fileExists(atPath: url.path) { try AtomicFile.write(data, to: url) }
            figures += "<figure class=wide><img src=\"\(rel)\" alt=\"\(escapeHTML(a.title))\"><figcaption><b>\(escapeHTML(a.title))</b> — \(a.success ? "succeeded" : "<span class=fail>failed</span>")<br>\(a.lines.map(escapeHTML).joined(separator: "<br>"))</figcaption></figure>\n"
        }
        let body = """
        <nav><a href="index.html">gallery</a> / attacks</nav>
        <h1>Adversarial examples</h1>
        <p>Report panels from <code>vizlab attack</code> runs: original, the perturbation (diverging scale), the adversarial image as saved (8-bit PNG), and the model's top-5 on each. Every figure is measured on the saved file.</p>
        \(figures.isEmpty ? "<p class=note>No attack reports given (<code>--attacks DIR</code>).</p>" : figures)
        """
        return page(title: "attacks — vizlab gallery", depth: 0, body: body)
    }

    // MARK: - Helpers

    func page(title: String, depth: Int, body: String) -> String {
        let up = String(repeating: "../", count: depth)
        return """
        <!doctype html>
        <html lang=en><head><meta charset=utf-8><meta name=viewport content="width=device-width, initial-scale=1">
        <title>\(escapeHTML(title))</title><link rel=stylesheet href="\(up)style.css"></head>
        <body>
        \(body)
        <script src="\(up)gallery.js"></script>
        </body></html>

        """
    }

    static func prettyJSON<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? ""
    }

    static let css = """
    body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; background: #fff; }
    h1 { font-size: 1.6em; margin: .3em 0; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; } h3 { font-size: 1em; }
    a { color: #1a5fb4; text-decoration: none; } a:hover { text-decoration: underline; }
    nav { color: #666; margin: .3em 0; } nav.pager { font-size: 1.1em; } .off { color: #bbb; }
    .grid, .row { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
    figure { margin: 0; text-align: center; font-size: 12px; }
    figure img { display: block; border: 1px solid #ddd; background: #f4f4f4; image-rendering: auto; }
    figure.wide { margin-bottom: 24px; } figure.wide img { max-width: 100%; height: auto; }
    figure.wide figcaption { max-width: none; text-align: left; font-size: 13px; }
    figcaption { margin-top: 3px; color: #444; max-width: 224px; overflow-wrap: anywhere; }
    figure.example { width: 112px; } figure.example figcaption { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
    .value { font-variant-numeric: tabular-nums; color: #000; }
    .missing { display: flex; align-items: center; justify-content: center; width: 128px; height: 128px; background: #eee; color: #888; border: 1px dashed #bbb; }
    .note { color: #777; } .fail { color: #b00; }
    .warning { background: #fde; border: 1px solid #c66; padding: .5em; }
    table.layers { border-collapse: collapse; } table.layers td, table.layers th { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: left; vertical-align: middle; }
    .bar { display: inline-block; height: 8px; background: #9bd; vertical-align: middle; }
    table.layers td { white-space: nowrap; } .strip img { vertical-align: middle; margin-left: 2px; border: 1px solid #ddd; }
    pre { background: #f6f6f6; padding: .6em; overflow-x: auto; font-size: 12px; }
    code { background: #f3f3f3; padding: 0 3px; }

    """

    static let javascript = """
    // vizlab gallery: report pictures that fail to load (in the console and on the page), filter channels on a
    // layer page, and step between channels with the arrow keys.
    window.addEventListener('load', () => {
      const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0));
      for (const i of broken) console.error('vizlab gallery: picture failed to load: ' + i.getAttribute('src'));
      document.body.dataset.brokenImages = String(broken.length);
      if (broken.length) {
        const p = document.createElement('p');
        p.className = 'warning';
        p.textContent = broken.length + ' picture(s) failed to load; run vizlab gallery again to restore them.';
        document.body.prepend(p);
      }
    });
    const filter = document.getElementById('filter');
    if (filter) {
      filter.addEventListener('input', () => {
        const q = filter.value.trim();
        for (const f of document.querySelectorAll('[data-channel]')) f.hidden = q !== '' && !f.dataset.channel.startsWith(q);
      });
    }
    document.addEventListener('keydown', e => {
      if (e.target instanceof HTMLInputElement) return;
      const rel = e.key === 'ArrowLeft' ? 'prev' : e.key === 'ArrowRight' ? 'next' : null;
      const a = rel && document.querySelector('a[rel=' + rel + ']');
      if (a) location.href = a.href;
    });

    """
}

/// Text for HTML content and attribute values.
func escapeHTML(_ s: String) -> String {
    var out = ""
    for ch in s {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        default: out.append(ch)
        }
    }
    return out
}

/// A measured value, short.
func shortNumber(_ v: Float) -> String { String(format: "%.3g", v) }
