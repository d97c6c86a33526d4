import Foundation
import XCTest
@testable import Engine

/// Class names a person types, including WordNet groups (needs `make setup` for $VIZLAB_HOME/wordnet).
final class ClassLookupTests: XCTestCase {
    var lookup: ClassLookup!

    override func setUpWithError() throws {
        do { lookup = ClassLookup(wordNet: try WordNet()) } catch {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("\(error)") }
            throw XCTSkip("\(error)")
        }
    }

    func testBundledIdsAreWordNetOffsetsOfTheLabels() throws {
        XCTAssertEqual(ClassLookup.bundledOffsets.count, 1000)
        let wn = try WordNet()
        // Class 281 is "tabby, tabby cat" = n02123045; 1 goldfish = n01443537.
        XCTAssertEqual(try wn.synset(ClassLookup.bundledOffsets[281]).words, ["tabby", "tabby cat"])
        XCTAssertEqual(try wn.synset(ClassLookup.bundledOffsets[1]).name, "goldfish")
        // Every class's synset contains the label file's first name (modulo case/punctuation) for most classes.
        var agree = 0
        for i in 0..<1000 {
            let words = try wn.synset(ClassLookup.bundledOffsets[i]).words.map { $0.lowercased() }
            if words.contains(ImageNetLabels.shared.names[i].lowercased()) { agree += 1 }
        }
        XCTAssertGreaterThan(agree, 900)
    }

    func testNamesAndIndices() throws {
        XCTAssertEqual(try lookup.resolve("281").indices, [281])
        XCTAssertEqual(try lookup.resolve("tiger cat").indices, [282])
        XCTAssertEqual(try lookup.resolve("Tabby Cat").indices, [281])
        XCTAssertEqual(try lookup.resolve("espresso").indices, [967])
    }

    func testGroups() throws {
        let cat = try lookup.resolve("cat")
        XCTAssertEqual(cat.indices, [281, 282, 283, 284, 285])  // the 5 domestic cats
        XCTAssertTrue(cat.description.hasPrefix("domestic cat: 5 classes"), cat.description)
        XCTAssertTrue(cat.otherSenses.contains { $0.hasPrefix("big cat") })
        let dog = try lookup.resolve("dogs")
        XCTAssertEqual(dog.indices, Array(151...268))  // the 118 dogs
        XCTAssertEqual(try lookup.resolve("bus").indices.count, 3)
        XCTAssertEqual(try lookup.resolve("bird").indices.count, 59)
    }

    func testErrors() {
        XCTAssertThrowsError(try lookup.resolve("crane")) { e in
            XCTAssertTrue("\(e)".contains("134") && "\(e)".contains("517") && "\(e)".contains("wading bird"), "\(e)")
        }
        XCTAssertThrowsError(try lookup.resolve("catt")) { e in XCTAssertTrue("\(e)".contains("tabby"), "\(e)") }
        XCTAssertThrowsError(try lookup.resolve("1000")) { e in XCTAssertTrue("\(e)".contains("0…999"), "\(e)") }
        XCTAssertThrowsError(try lookup.resolve("idea")) { e in XCTAssertTrue("\(e)".contains("no ImageNet class falls under"), "\(e)") }
    }
}
