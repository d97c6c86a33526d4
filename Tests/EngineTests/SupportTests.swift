import Foundation
import XCTest
@testable import Engine

final class SupportTests: XCTestCase {
    func testSHA256KnownVectors() {
        // FIPS 180-4 examples.
        XCTAssertEqual(SHA256.hex(of: Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(of: Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(of: Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Streaming in odd pieces gives the same digest as one call.
        var h = SHA256()
        let million = Data(repeating: UInt8(ascii: "a"), count: 1_000_000)
        var offset = 0
        for piece in [1, 63, 64, 65, 999_807] { h.update(million[offset..<(offset + piece)]); offset += piece }
        XCTAssertEqual(h.finalize().map { String(format: "%02x", $0) }.joined(),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testClassLookupByIndexNameAndSynonym() {
        let labels = ImageNetLabels.shared
        XCTAssertEqual(labels.count, 1000)
        XCTAssertEqual(labels.lookup("281"), .found(281))
        XCTAssertEqual(labels.lookup("tabby"), .found(281))
        XCTAssertEqual(labels.lookup("Tabby Cat"), .found(281))       // synonym, any case
        XCTAssertEqual(labels.lookup("Pekingese"), .found(154))
        XCTAssertEqual(labels.lookup("tiger cat"), .found(282))
        XCTAssertEqual(labels.lookup("1000"), .notFound(suggestions: []))
        if case .ambiguous(let candidates) = labels.lookup("crane") {  // the bird (134) and the machine (517)
            XCTAssertEqual(candidates, [134, 517])
        } else { XCTFail("'crane' should be ambiguous") }
        if case .notFound(let suggestions) = labels.lookup("pekinees") {
            XCTAssertEqual(suggestions.first, "Pekinese")
        } else { XCTFail("'pekinees' should not resolve") }
    }
}
