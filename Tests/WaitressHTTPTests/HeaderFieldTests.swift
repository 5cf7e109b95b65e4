import XCTest

@testable import WaitressHTTP

/// Header fields (RFC 9112 §5): WSGI-form names, joined repeats, OWS, and the
/// strict rejections (obs-fold, whitespace before the colon, control bytes,
/// bare LF, non-token names).
final class HeaderFieldTests: XCTestCase {
    func testNamesAreUppercasedWithDashesAsUnderscores() throws {
        let head = try XCTUnwrap(
            parseHead("GET / HTTP/1.1\r\nhost: a\r\nX-Forwarded-For: b\r\ncontent-TYPE: c\r\nX-1!#$%&'*+.^`|~: d\r\n\r\n"))
        XCTAssertEqual(
            head.fields, ["HOST: a", "X_FORWARDED_FOR: b", "CONTENT_TYPE: c", "X_1!#$%&'*+.^`|~: d"])
    }

    func testRepeatedNamesAreJoinedInTheFirstPosition() throws {
        let head = try XCTUnwrap(
            parseHead("GET / HTTP/1.1\r\nAccept: a\r\nHost: h\r\naccept: b\r\nACCEPT:c\r\nCookie: x=1\r\nCookie: y=2\r\n\r\n"))
        XCTAssertEqual(head.fields, ["ACCEPT: a, b, c", "HOST: h", "COOKIE: x=1, y=2"])
    }

    func testRepeatedEmptyValuesAreJoinedToo() throws {
        let head = try XCTUnwrap(parseHead("GET / HTTP/1.1\r\nX-A:\r\nX-A: b\r\nX-B: c\r\nX-B:\r\n\r\n"))
        XCTAssertEqual(head.fields, ["X_A: , b", "X_B: c, "])
    }

    func testNamesWithUnderscoresAreDropped() throws {
        let head = try XCTUnwrap(
            parseHead("GET / HTTP/1.1\r\nX-Real-IP: 1.2.3.4\r\nX_Real_IP: 6.6.6.6\r\nFoo_Bar: x\r\nHost: h\r\n\r\n"))
        XCTAssertEqual(head.fields, ["X_REAL_IP: 1.2.3.4", "HOST: h"])
    }

    func testDroppedUnderscoreNamesDoNotFrame() throws {
        // Content_Length and Transfer_Encoding must not be taken for the real ones.
        let head = try XCTUnwrap(
            parseHead("POST / HTTP/1.1\r\nContent_Length: 10\r\nTransfer_Encoding: chunked\r\n\r\n"))
        XCTAssertEqual(head.contentLength, 0)
        XCTAssertFalse(head.isChunked)
        XCTAssertEqual(head.fields, [])
    }

    func testOptionalWhitespaceIsTrimmed() throws {
        let head = try XCTUnwrap(
            parseHead("GET / HTTP/1.1\r\nA:  \t value with  inner  space \t \r\nB:x\r\nC:\tq\t\r\n\r\n"))
        XCTAssertEqual(head.fields, ["A: value with  inner  space", "B: x", "C: q"])
    }

    func testEmptyValues() throws {
        let head = try XCTUnwrap(parseHead("GET / HTTP/1.1\r\nEmpty:\r\nBlank:   \r\nTab:\t\r\nAfter: y\r\n\r\n"))
        XCTAssertEqual(head.fields, ["EMPTY: ", "BLANK: ", "TAB: ", "AFTER: y"])
    }

    func testObsTextValuesAreKeptAsBytes() throws {
        let head = try XCTUnwrap(parseHead("GET / HTTP/1.1\r\nX-Name: caf\u{E9} \u{FF}\u{80}\r\n\r\n"))
        XCTAssertEqual(head.fields, ["X_NAME: caf\u{E9} \u{FF}\u{80}"])
    }

    func testValuesMayHoldColons() throws {
        let head = try XCTUnwrap(parseHead("GET / HTTP/1.1\r\nHost: example.com:8080\r\nX: a:b: c\r\n\r\n"))
        XCTAssertEqual(head.fields, ["HOST: example.com:8080", "X: a:b: c"])
    }

    func testFieldLookup() throws {
        let result = latin1("GET / HTTP/1.1\r\nUser-Agent: t\r\nA: 1\r\nA: 2\r\n\r\n").withUnsafeBytes {
            var parser = RequestHeadParser(maxHeaderSize: 1000, maxBodySize: 1000)
            return parser.parse($0)
        }
        guard case .head(let head, _) = result else { return XCTFail("\(result)") }
        XCTAssertEqual(head.field("USER_AGENT").map(latin1String), "t")
        XCTAssertEqual(head.field("A").map(latin1String), "1, 2")
        XCTAssertNil(head.field("User-Agent"))
        XCTAssertNil(head.field("MISSING"))
        XCTAssertEqual(head.bytes(head.method), Array("GET".utf8))
        head.withBytes(head.target) { XCTAssertEqual(Array($0), Array("/".utf8)) }
    }

    func testObsFoldIs400() {
        let fold = badRequest("Malformed header line (obsolete line folding)")
        assertFailure("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", fold)
        assertFailure("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", fold)
        // Folding right after the request line is no better.
        assertFailure("GET / HTTP/1.1\r\n X: a\r\n\r\n", fold)
    }

    func testWhitespaceBeforeColonIs400() {
        assertFailure("GET / HTTP/1.1\r\nHost : h\r\n\r\n", badRequest("Invalid header"))
        assertFailure("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", badRequest("Invalid header"))
        assertFailure("GET / HTTP/1.1\r\nContent-Length : 5\r\n\r\n", badRequest("Invalid header"))
    }

    func testNonTokenNamesAre400() {
        for line in ["X(y): 1", "X/y: 1", "X\"y: 1", "X@y: 1", "X y: 1", ": empty name", "No colon here", "X\u{E9}: 1", "[x]: 1"] {
            assertFailure("GET / HTTP/1.1\r\n\(line)\r\n\r\n", badRequest("Invalid header"))
        }
    }

    func testHeaderErrorsUseTheRequestVersion() {
        assertFailure("GET / HTTP/1.0\r\nX y: 1\r\n\r\n", badRequest("Invalid header"), version: .http10)
    }

    func testControlCharactersInValuesAre400() {
        for control in ["\u{0}", "\u{1}", "\u{7}", "\u{B}", "\u{C}", "\u{1F}", "\u{7F}"] {
            assertFailure("GET / HTTP/1.1\r\nX: a\(control)b\r\n\r\n", badRequest("Invalid header value"))
        }
        // At the edges of the value too, where OWS trimming happens.
        assertFailure("GET / HTTP/1.1\r\nX: \u{0}\r\n\r\n", badRequest("Invalid header value"))
        assertFailure("GET / HTTP/1.1\r\nX: a \u{7F}\r\n\r\n", badRequest("Invalid header value"))
    }

    func testBareCRIs400() {
        let bare = badRequest("Bare CR or LF found in HTTP message")
        assertFailure("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", bare, version: .http10)
        assertFailure("GET / HTTP/1.1\r\nX: a\r\r\n\r\n", bare, version: .http10)
        assertFailure("GET / HTTP/1.1\r\nX: a\r\nY\r: b\r\n\r\n", bare, version: .http10)
        assertFailure("GET / HTTP/1.1\r\nX: \r\r\r\n\r\n", bare, version: .http10)
    }

    func testCRBeforeTheFinalCRLFIs400NotAHang() {
        // "\r\r\n" as the blank line must not leave the parser waiting for a
        // CRLFCRLF that never comes.
        let text = "GET / HTTP/1.1\r\nHost: h\r\n\r\r\n"
        let bare = RequestError.badRequest("Bare CR or LF found in HTTP message")
        XCTAssertEqual(parseWhole(latin1(text)), .failure(bare, .http10))
        XCTAssertEqual(parseByteByByte(latin1(text)).outcome, .failure(bare, .http10))
    }

    func testCRAtTheEndOfAPieceWaitsForTheNextByte() {
        // The last byte may be the CR of a CRLF still on its way.
        for text in ["GET / HTTP/1.1\r", "GET / HTTP/1.1\r\nHost: h\r", "GET / HTTP/1.1\r\nHost: h\r\n\r"] {
            XCTAssertEqual(parseWhole(latin1(text)), .needMore, text.debugDescription)
            XCTAssertEqual(parseByteByByte(latin1(text)).outcome, .needMore, text.debugDescription)
        }
    }

    func testBareLFIs400AtOnce() {
        let bare = RequestError.badRequest("Bare CR or LF found in HTTP message")
        for text in [
            "GET / HTTP/1.1\n",
            "GET / HTTP/1.1\nHost: h\n\n",
            "GET / HTTP/1.1\r\nHost: h\n",
            "GET / HTTP/1.1\r\nHost: h\r\n\n",
            "GET / HTTP/1.1\r\nX: a\nb\r\n",
            "GET /\n",
        ] {
            let bytes = latin1(text)
            // No terminator is present, yet the answer is an error, not needMore.
            XCTAssertEqual(parseWhole(bytes), .failure(bare, .http10), text.debugDescription)
            let incremental = parseByteByByte(bytes)
            XCTAssertEqual(incremental.outcome, .failure(bare, .http10), text.debugDescription)
            // ... as soon as the LF arrives.
            let firstBareLF = bytes.indices.first { bytes[$0] == 10 && ($0 == 0 || bytes[$0 - 1] != 13) }
            XCTAssertEqual(incremental.at, firstBareLF.map { $0 + 1 }, text.debugDescription)
        }
    }

    func testBareLFAfterACompleteHeadIsNotThisHeadsBusiness() throws {
        // The LF is in the next request's bytes: this head is fine.
        let head = try XCTUnwrap(parseHead("GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\n\n"))
        XCTAssertEqual(head.consumed, 18)
    }

    func testManyFields() throws {
        var text = "GET / HTTP/1.1\r\n"
        var expected: [String] = []
        for i in 0..<40 {
            text += "X-Field-\(i): value \(i)\r\n"
            expected.append("X_FIELD_\(i): value \(i)")
        }
        text += "X-Field-7: again\r\n\r\n"
        expected[7] += ", again"
        let head = try XCTUnwrap(parseHead(text))
        XCTAssertEqual(head.fields, expected)
    }
}
