import Foundation

/// The WordNet 3.0 noun database (Debian `wordnet-base`: `data.noun`, `index.noun`, `noun.exc`), read only as far
/// as class lookup needs: a synset's words and hypernyms, and the synsets of a word. ImageNet's class ids are
/// WordNet 3.0 noun offsets (n02123045 = tabby), and an offset is the byte position of the synset's line in
/// `data.noun`, so nothing is parsed beyond the lines actually visited.
public final class WordNet: @unchecked Sendable {
    public struct Synset: Sendable, Equatable {
        public let offset: Int
        public let words: [String]
        public let hypernyms: [Int]
        /// The first word, with spaces: "domestic cat".
        public var name: String { words.first ?? String(offset) }
    }

    public enum Failure: Error, CustomStringConvertible {
        case missing(URL)
        case corrupt(URL, String)
        public var description: String {
            switch self {
            case .missing(let u): return "WordNet not found at \(u.path) — run `\(WeightStore.fixCommand)` to fetch it"
            case let .corrupt(u, why): return "WordNet file \(u.path) is not a WordNet 3.0 database (\(why)) — delete it and run `\(WeightStore.fixCommand)`"
            }
        }
    }

    private let data: [UInt8]
    private let dataURL: URL
    /// lemma → synset offsets, most frequent sense first (index.noun's order).
    private let senses: [String: [Int]]
    /// Irregular plurals: "mice" → "mouse".
    private let exceptions: [String: String]

    /// `$VIZLAB_HOME/wordnet`, where `scripts/setup` puts the three files.
    public static var defaultDirectory: URL { WeightStore.home.appendingPathComponent("wordnet", isDirectory: true) }

    public init(directory: URL = WordNet.defaultDirectory) throws {
        dataURL = directory.appendingPathComponent("data.noun")
        let indexURL = directory.appendingPathComponent("index.noun")
        for u in [dataURL, indexURL] where !FileManager.default.fileExists(atPath: u.path) { throw Failure.missing(u) }
        data = Array(try Data(contentsOf: dataURL))
        var senses: [String: [Int]] = [:]
        let index = try String(contentsOf: indexURL, encoding: .utf8)
        for line in index.split(separator: "\n") where !line.hasPrefix(" ") {
            // lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset...
            let f = line.split(separator: " ")
            guard f.count >= 6, let pointerCount = Int(f[3]), f.count >= 6 + pointerCount,
                  let synsetCount = Int(f[2]) else { continue }
            senses[String(f[0])] = f.suffix(synsetCount).compactMap { Int($0) }
        }
        guard senses.count > 50_000 else { throw Failure.corrupt(indexURL, "only \(senses.count) lemmas") }
        self.senses = senses
        var exceptions: [String: String] = [:]
        if let exc = try? String(contentsOf: directory.appendingPathComponent("noun.exc"), encoding: .utf8) {
            for line in exc.split(separator: "\n") {
                let f = line.split(separator: " ")
                if f.count >= 2 { exceptions[String(f[0])] = String(f[1]) }
            }
        }
        self.exceptions = exceptions
    }

    /// The synset whose line starts at byte `offset` of data.noun.
    public func synset(_ offset: Int) throws -> Synset {
        guard offset >= 0 && offset < data.count, offset == 0 || data[offset - 1] == 10 else {
            throw Failure.corrupt(dataURL, "no synset at offset \(offset)")
        }
        var end = offset
        while end < data.count && data[end] != 10 { end += 1 }
        // offset lex_filenum ss_type w_cnt(hex) word lex_id ... p_cnt (symbol offset pos source/target)... | gloss
        let fields = data[offset..<end].split(separator: 32).map { String(decoding: $0, as: UTF8.self) }
        guard fields.count > 4, Int(fields[0]) == offset, let wordCount = Int(fields[3], radix: 16),
              fields.count > 4 + 2 * wordCount, let pointerCount = Int(fields[4 + 2 * wordCount]),
              fields.count >= 5 + 2 * wordCount + 4 * pointerCount else {
            throw Failure.corrupt(dataURL, "malformed synset line at offset \(offset)")
        }
        let words = (0..<wordCount).map { fields[4 + 2 * $0].replacingOccurrences(of: "_", with: " ") }
        let pointers = 5 + 2 * wordCount
        let hypernyms = (0..<pointerCount).compactMap { k -> Int? in
            let symbol = fields[pointers + 4 * k]
            return symbol == "@" || symbol == "@i" ? Int(fields[pointers + 4 * k + 1]) : nil
        }
        return Synset(offset: offset, words: words, hypernyms: hypernyms)
    }

    /// Noun senses of a word or phrase ("Cats", "domestic cat"), most frequent first; plurals reduced.
    public func senses(of word: String) -> [Int] {
        let lemma = word.trimmingCharacters(in: .whitespaces).lowercased().replacingOccurrences(of: " ", with: "_")
        if let s = senses[lemma] { return s }
        if let base = exceptions[lemma], let s = senses[base] { return s }
        for suffix in ["es", "s"] where lemma.hasSuffix(suffix) {
            if let s = senses[String(lemma.dropLast(suffix.count))] { return s }
        }
        return []
    }

    /// Every synset above `offset` (itself included), following hypernym and instance-hypernym pointers.
    public func ancestors(of offset: Int) throws -> Set<Int> {
        var seen = Set<Int>(), stack = [offset]
        while let o = stack.popLast() {
            guard seen.insert(o).inserted else { continue }
            stack += try synset(o).hypernyms
        }
        return seen
    }
}
