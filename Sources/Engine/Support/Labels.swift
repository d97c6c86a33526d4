import Foundation

/// A model's class names, one line per class: "tabby, tabby cat" — the first entry is the display name, the rest
/// synonyms. `.shared` is ImageNet-1k (bundled from Debian opencv-doc's classification_classes_ILSVRC2012.txt);
/// a model trained on other classes carries its own.
public struct ImageNetLabels: Sendable {
    public let lines: [String]
    public let names: [String]
    public let synonyms: [[String]]

    public static let shared: ImageNetLabels = {
        guard let url = Bundle.module.url(forResource: "imagenet_classes", withExtension: "txt"),
              let text = try? String(contentsOf: url, encoding: .utf8) else {
            fatalError("bundled resource imagenet_classes.txt is missing from the build")
        }
        return ImageNetLabels(text: text)
    }()

    public init(text: String) {
        self.init(lines: text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init))
    }

    public init(lines: [String]) {
        self.lines = lines.map { $0.trimmingCharacters(in: .whitespaces) }
        synonyms = self.lines.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        names = synonyms.map { $0.first ?? "" }
    }

    public var count: Int { names.count }

    /// Whether these are the 1000 ImageNet-1k classes (WordNet groups such as "dog" apply only then).
    public var isImageNet1k: Bool { lines == ImageNetLabels.shared.lines }

    /// Result of resolving what a user typed.
    public enum Match: Equatable, Sendable {
        case found(Int)
        case ambiguous([Int])
        case notFound(suggestions: [String])
    }

    /// Resolves an index ("281"), an exact display name ("tabby") or any synonym ("tabby cat"), case-insensitive, an
    /// underscore matching a space (a class folder `ankle_boot` is also "ankle boot").
    /// A synonym shared by several classes ("crane", "maillot") is ambiguous and lists them.
    public func lookup(_ query: String) -> Match {
        func norm(_ s: String) -> String { s.lowercased().replacingOccurrences(of: "_", with: " ") }
        let q = norm(query.trimmingCharacters(in: .whitespaces))
        if let i = Int(q) { return i >= 0 && i < count ? .found(i) : .notFound(suggestions: []) }
        let exact = names.indices.filter { norm(names[$0]) == q }
        if exact.count == 1 { return .found(exact[0]) }
        let viaSynonym = synonyms.indices.filter { synonyms[$0].contains { norm($0) == q } }
        if viaSynonym.count == 1 { return .found(viaSynonym[0]) }
        if exact.count > 1 || viaSynonym.count > 1 { return .ambiguous(Array(Set(exact + viaSynonym)).sorted()) }
        // Nearest names by edit distance, plus any whose words contain the query.
        let scored = names.indices.map { i -> (Int, Int) in
            // Against each synonym and each of its words, so "catt" finds "tabby cat" through "cat".
            let words = synonyms[i].flatMap { [$0] + $0.split(separator: " ").map(String.init) }
            let d = words.map { editDistance($0.lowercased(), q) }.min() ?? Int.max
            return (names[i].lowercased().contains(q) ? 0 : d, i)
        }.sorted { $0 < $1 }
        return .notFound(suggestions: scored.prefix(5).map { names[$0.1] })
    }
}

/// Levenshtein distance (for "did you mean" suggestions on class and layer names).
public func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var prev = Array(0...b.count), cur = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        cur[0] = i
        for j in 1...b.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&prev, &cur)
    }
    return prev[b.count]
}
