import Foundation

/// Checks a static site: every `src` and `href` in every HTML page that points inside the site must name an
/// existing file, and nothing may point above the site's root (the folder must work when moved).
public enum LinkChecker {
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        public var page: String
        public var target: String
        public var reason: String
        public var description: String { "\(page): \(target) — \(reason)" }
    }

    public struct Report: Sendable {
        public var pages = 0
        public var links = 0
        public var problems: [Problem] = []
    }

    public static func check(site root: URL) -> Report {
        var report = Report()
        let rootPath = root.standardizedFileURL.path
        let pattern = try! NSRegularExpression(pattern: #"\b(?:src|href)\s*=\s*"([^"]*)""#)
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return report }
        for case let url as URL in walker where url.pathExtension == "html" {
            report.pages += 1
            let page = String(url.standardizedFileURL.path.dropFirst(rootPath.count + 1))
            guard let text = try? String(contentsOf: url, encoding: .utf8) else {
                report.problems.append(Problem(page: page, target: "", reason: "not readable as UTF-8")); continue
            }
            for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let target = String(text[Range(match.range(at: 1), in: text)!])
                report.links += 1
                if target.isEmpty { report.problems.append(Problem(page: page, target: target, reason: "empty link")); continue }
                if target.hasPrefix("#") || target.hasPrefix("data:") { continue }
                if target.contains("://") || target.hasPrefix("//") || target.hasPrefix("mailto:") {
                    report.problems.append(Problem(page: page, target: target, reason: "points off the site (the gallery must work offline)"))
                    continue
                }
                var path = target
                if let cut = path.firstIndex(where: { $0 == "#" || $0 == "?" }) { path = String(path[..<cut]) }
                path = path.removingPercentEncoding ?? path
                let resolved = url.deletingLastPathComponent().appendingPathComponent(path).standardizedFileURL
                if !(resolved.path + "/").hasPrefix(rootPath + "/") {
                    report.problems.append(Problem(page: page, target: target, reason: "points above the site's folder"))
                } else if !FileManager.default.fileExists(atPath: resolved.path) {
                    report.problems.append(Problem(page: page, target: target, reason: "no such file"))
                }
            }
        }
        return report
    }
}
