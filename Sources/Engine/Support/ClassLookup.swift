import Foundation

/// One or more ImageNet classes chosen by what a person typed: `--class 281`, `--class "tiger cat"`,
/// `--class cat` (the 5 domestic cats), `--class dog` (the 118 dogs).
public struct ClassSelection: Sendable, Equatable, Codable {
    public let query: String
    public let indices: [Int]
    /// "tiger cat (282)" or "domestic cat: 5 classes (WordNet n02121808)".
    public let description: String
    /// Other readings of the word that also contain ImageNet classes (shown, not used).
    public let otherSenses: [String]

    public var isGroup: Bool { indices.count > 1 }
}

public enum ClassLookupError: Error, CustomStringConvertible, Equatable {
    case notFound(String, suggestions: [String])
    case ambiguous(String, candidates: [String])
    case noImageNetClasses(String, senses: [String])

    public var description: String {
        switch self {
        case let .notFound(q, s):
            return "no ImageNet class or WordNet noun matches '\(q)'" + (s.isEmpty ? "" : "; did you mean: \(s.joined(separator: ", "))?")
        case let .ambiguous(q, c):
            return "'\(q)' names several classes: \(c.joined(separator: "; ")) — give the index"
        case let .noImageNetClasses(q, senses):
            return "'\(q)' is a WordNet noun (\(senses.prefix(4).joined(separator: "; "))) but no ImageNet class falls under it"
        }
    }
}

/// Resolves class names in this order: an index; an exact class name or synonym from the label file; a WordNet
/// noun whose hyponyms include ImageNet classes (the whole group). A word with several such senses takes the most
/// frequent one (WordNet lists senses by frequency) and reports the rest.
public final class ClassLookup: @unchecked Sendable {
    public let labels: ImageNetLabels
    /// The WordNet 3.0 offset of every class (from the bundled imagenet_wnids.txt).
    public let offsets: [Int]
    private let wordNet: WordNet?
    private var ancestorSets: [Set<Int>]?

    /// Everyday words whose most frequent WordNet sense is broader than what people mean: "cat" is cat.n.01
    /// (true cat), which also holds cougar and lynx; a person asking for a cat means a house cat.
    static let everydaySense: [String: Int] = ["cat": 2_121_808, "cats": 2_121_808, "kitten": 2_121_808]

    public static let bundledOffsets: [Int] = {
        guard let url = Bundle.module.url(forResource: "imagenet_wnids", withExtension: "txt"),
              let text = try? String(contentsOf: url, encoding: .utf8) else {
            fatalError("bundled resource imagenet_wnids.txt is missing from the build")
        }
        return text.split(separator: "\n").map { Int($0.dropFirst())! }
    }()

    /// `wordNet` nil: names and indices only (groups then report that WordNet is missing).
    public init(labels: ImageNetLabels = .shared, wordNet: WordNet?) {
        self.labels = labels
        self.offsets = Self.bundledOffsets
        self.wordNet = wordNet
    }

    /// With WordNet from `$VIZLAB_HOME/wordnet` when it is there.
    public static func standard() -> ClassLookup { ClassLookup(wordNet: try? WordNet()) }

    private func ancestors() throws -> [Set<Int>] {
        if let a = ancestorSets { return a }
        guard let wn = wordNet else { throw WordNet.Failure.missing(WordNet.defaultDirectory) }
        let a = try offsets.map { try wn.ancestors(of: $0) }
        ancestorSets = a
        return a
    }

    /// The ImageNet classes under a WordNet synset.
    public func classes(under offset: Int) throws -> [Int] {
        try ancestors().indices.filter { ancestorSets![$0].contains(offset) }
    }

    public func resolve(_ query: String) throws -> ClassSelection {
        let q = query.trimmingCharacters(in: .whitespaces)
        var nameSuggestions: [String] = []
        switch labels.lookup(q) {
        case .found(let i):
            return ClassSelection(query: q, indices: [i], description: "\(labels.names[i]) (\(i))", otherSenses: [])
        case .ambiguous(let c):
            // Name each candidate's WordNet parent so "crane" reads as a wading bird vs a lifting device.
            throw ClassLookupError.ambiguous(q, candidates: c.map { i in
                let parent = (try? wordNet?.synset(offsets[i]).hypernyms.first.flatMap { try wordNet?.synset($0).name }) ?? nil
                return "\(i) \(labels.lines[i])" + (parent.map { " (a \($0))" } ?? "")
            })
        case .notFound(let s):
            if Int(q) != nil { throw ClassLookupError.notFound(q, suggestions: ["an index 0…\(labels.count - 1)"]) }
            nameSuggestions = s
        }
        guard let wn = wordNet else {
            throw ClassLookupError.notFound(q, suggestions: nameSuggestions + ["(class groups need WordNet: run `\(WeightStore.fixCommand)`)"])
        }
        var senses = wn.senses(of: q)
        if let everyday = Self.everydaySense[q.lowercased()] { senses.insert(everyday, at: 0) }
        guard !senses.isEmpty else { throw ClassLookupError.notFound(q, suggestions: nameSuggestions) }
        var groups: [(WordNet.Synset, [Int])] = []
        for s in senses {
            let members = try classes(under: s)
            if !members.isEmpty && !groups.contains(where: { $0.1 == members }) { groups.append((try wn.synset(s), members)) }
        }
        guard let (synset, members) = groups.first else {
            throw ClassLookupError.noImageNetClasses(q, senses: try senses.map { try wn.synset($0).name })
        }
        let wnid = "n" + String(format: "%08d", synset.offset)
        let description = members.count == 1 ? "\(labels.names[members[0]]) (\(members[0]))"
                                             : "\(synset.name): \(members.count) classes (WordNet \(wnid))"
        return ClassSelection(query: q, indices: members, description: description,
                              otherSenses: groups.dropFirst().map { "\($0.0.name) (\($0.1.count) classes)" })
    }
}
