import XCTest

@testable import WaitressHTTP

/// Percent-decoding of the path, as urllib's unquote_to_bytes does it.
final class PercentDecodingTests: XCTestCase {
    private func decode(_ text: String) -> String {
        var out: [UInt8] = []
        latin1(text).withUnsafeBytes { percentDecode($0, into: &out) }
        return latin1String(out)
    }

    func testValidEscapes() {
        XCTAssertEqual(decode("/a%20b"), "/a b")
        XCTAssertEqual(decode("%41%42%43"), "ABC")
        XCTAssertEqual(decode("%2f%2F"), "//")
        XCTAssertEqual(decode("%e9%E9"), "\u{E9}\u{E9}")
        XCTAssertEqual(decode("%00%ff"), "\u{0}\u{FF}")
        XCTAssertEqual(decode("%25"), "%")
        XCTAssertEqual(decode("%2541"), "%41")
        XCTAssertEqual(decode("caf%C3%A9"), "caf\u{C3}\u{A9}")
    }

    func testNothingToDecode() {
        XCTAssertEqual(decode(""), "")
        XCTAssertEqual(decode("/plain/path"), "/plain/path")
        XCTAssertEqual(decode("+stays+"), "+stays+")
    }

    func testInvalidEscapesStayAsTheyAre() {
        XCTAssertEqual(decode("%zz"), "%zz")
        XCTAssertEqual(decode("%g1"), "%g1")
        XCTAssertEqual(decode("%1g"), "%1g")
        XCTAssertEqual(decode("a%%41"), "a%A")
        XCTAssertEqual(decode("% 41"), "% 41")
        XCTAssertEqual(decode("%-1"), "%-1")
    }

    func testTruncatedEscapesStayAsTheyAre() {
        XCTAssertEqual(decode("%"), "%")
        XCTAssertEqual(decode("%4"), "%4")
        XCTAssertEqual(decode("/a%"), "/a%")
        XCTAssertEqual(decode("/a%4"), "/a%4")
        XCTAssertEqual(decode("%41%4"), "A%4")
        XCTAssertEqual(decode("ab%41"), "abA")
    }

    func testAppendsToTheOutput() {
        var out = Array("x".utf8)
        latin1("%41").withUnsafeBytes { percentDecode($0, into: &out) }
        XCTAssertEqual(latin1String(out), "xA")
    }

    func testNeedsPercentDecoding() {
        XCTAssertTrue(latin1("/a%20").withUnsafeBytes { needsPercentDecoding($0) })
        XCTAssertFalse(latin1("/a b").withUnsafeBytes { needsPercentDecoding($0) })
        XCTAssertFalse([UInt8]().withUnsafeBytes { needsPercentDecoding($0) })
    }
}
