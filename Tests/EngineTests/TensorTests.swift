import XCTest
@testable import Engine

final class TensorTests: XCTestCase {
    func testShape() {
        let t = Tensor(zeros: [2, 3])
        XCTAssertEqual(t.count, 6)
    }
}
