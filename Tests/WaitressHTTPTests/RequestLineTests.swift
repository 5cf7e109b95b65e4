import XCTest

@testable import WaitressHTTP

/// The request line (RFC 9112 §3): method, the four forms of request-target,
/// the version; every valid case is also parsed byte by byte and split.
final class RequestLineTests: XCTestCase {
    func testSimpleGet() throws {
        let head = try XCTUnwrap(parseHead("GET /hello HTTP/1.1\r\nHost: example.com\r\n\r\n"))
        XCTAssertEqual(head.method, "GET")
        XCTAssertEqual(head.target, "/hello")
        XCTAssertEqual(head.path, "/hello")
        XCTAssertEqual(head.query, "")
        XCTAssertEqual(head.version, .http11)
        XCTAssertEqual(head.fields, ["HOST: example.com"])
        XCTAssertEqual(head.contentLength, 0)
        XCTAssertFalse(head.isChunked)
        XCTAssertFalse(head.expectContinue)
        XCTAssertTrue(head.keepAlive)
        XCTAssertEqual(head.consumed, 42)
    }

    func testUppercaseMethodTokens() throws {
        for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "M-SEARCH", "PROPFIND", "X_CUSTOM!"] {
            let head = try XCTUnwrap(parseHead("\(method) / HTTP/1.1\r\n\r\n"), method)
            XCTAssertEqual(head.method, method)
        }
    }

    func testLowercaseMethodIsMalformed() {
        assertFailure("get / HTTP/1.1\r\n\r\n", badRequest("Malformed HTTP method \"get\""), version: .http10)
        assertFailure("Get / HTTP/1.1\r\n\r\n", badRequest("Malformed HTTP method \"Get\""), version: .http10)
        assertFailure("GEt / HTTP/1.1\r\n\r\n", badRequest("Malformed HTTP method \"GEt\""), version: .http10)
    }

    func testMethodMustBeAToken() {
        assertFailure("GE(T / HTTP/1.1\r\n\r\n", badRequest("Start line is invalid"), version: .http10)
        assertFailure(" GET / HTTP/1.1\r\n\r\n", badRequest("Start line is invalid"), version: .http10)
        assertFailure("GET\t/ HTTP/1.1\r\n\r\n", badRequest("Start line is invalid"), version: .http10)
    }

    func testOriginFormWithQuery() throws {
        let head = try XCTUnwrap(parseHead("GET /a/b%20c?x=1&y=2 HTTP/1.1\r\n\r\n"))
        XCTAssertEqual(head.target, "/a/b%20c?x=1&y=2")
        XCTAssertEqual(head.path, "/a/b%20c")
        XCTAssertEqual(head.query, "x=1&y=2")
    }

    func testQueryKeepsLaterQuestionMarks() throws {
        let head = try XCTUnwrap(parseHead("GET /p?a=?b HTTP/1.1\r\n\r\n"))
        XCTAssertEqual(head.path, "/p")
        XCTAssertEqual(head.query, "a=?b")
    }

    func testEmptyQuery() throws {
        let head = try XCTUnwrap(parseHead("GET /p? HTTP/1.1\r\n\r\n"))
        XCTAssertEqual(head.path, "/p")
        XCTAssertEqual(head.query, "")
    }

    func testFragmentIs400() {
        // RFC 9112 §3.2: no form of request-target carries a fragment (Waitress drops it).
        let fragment = badRequest("Request-target must not contain a fragment")
        assertFailure("GET /p?q=1#frag HTTP/1.1\r\n\r\n", fragment, version: .http10)
        assertFailure("GET /p#f?x HTTP/1.1\r\n\r\n", fragment, version: .http10)
        assertFailure("GET /a# HTTP/1.1\r\n\r\n", fragment, version: .http10)
        assertFailure("GET http://example.com/a#b HTTP/1.1\r\n\r\n", fragment, version: .http10)
    }

    func testAbsoluteForm() throws {
        let head = try XCTUnwrap(parseHead("GET http://example.com:8080/a/b?c=d HTTP/1.1\r\n\r\n"))
        XCTAssertEqual(head.target, "http://example.com:8080/a/b?c=d")
        XCTAssertEqual(head.path, "/a/b")
        XCTAssertEqual(head.query, "c=d")

        let https = try XCTUnwrap(parseHead("GET https://example.com/ HTTP/1.1\r\n\r\n"))
        XCTAssertEqual(https.path, "/")
        XCTAssertEqual(https.query, "")
    }

    func testAbsoluteFormWithoutPath() throws {
        let bare = try XCTUnwrap(parseHead("GET http://example.com HTTP/1.1\r\n\r\n"))
        XCTAssertEqual(bare.path, "")
        XCTAssertEqual(bare.query, "")

        let queryOnly = try XCTUnwrap(parseHead("GET http://example.com?x=1 HTTP/1.1\r\n\r\n"))
        XCTAssertEqual(queryOnly.path, "")
        XCTAssertEqual(queryOnly.query, "x=1")
    }

    func testAsteriskForm() throws {
        let head = try XCTUnwrap(parseHead("OPTIONS * HTTP/1.1\r\n\r\n"))
        XCTAssertEqual(head.method, "OPTIONS")
        XCTAssertEqual(head.target, "*")
        XCTAssertEqual(head.path, "*")
        XCTAssertEqual(head.query, "")
    }

    func testDoubleSlashPathIsOriginForm() throws {
        let head = try XCTUnwrap(parseHead("GET //host/path?q HTTP/1.1\r\n\r\n"))
        XCTAssertEqual(head.path, "//host/path")
        XCTAssertEqual(head.query, "q")
    }

    func testHTTP10And11() throws {
        let old = try XCTUnwrap(parseHead("GET / HTTP/1.0\r\n\r\n"))
        XCTAssertEqual(old.version, .http10)
        XCTAssertFalse(old.keepAlive)
        let new = try XCTUnwrap(parseHead("GET / HTTP/1.1\r\n\r\n"))
        XCTAssertEqual(new.version, .http11)
        XCTAssertTrue(new.keepAlive)
    }

    func testHigherMinorVersionIsTreatedAs11() throws {
        let head = try XCTUnwrap(parseHead("GET / HTTP/1.2\r\n\r\n"))
        XCTAssertEqual(head.version, .http11)
        XCTAssertTrue(head.keepAlive)
        let nine = try XCTUnwrap(parseHead("GET / HTTP/1.9\r\nExpect: 100-continue\r\n\r\n"))
        XCTAssertEqual(nine.version, .http11)
        XCTAssertTrue(nine.expectContinue)
    }

    func testOtherMajorVersionsAre505() {
        assertFailure("GET / HTTP/2.0\r\n\r\n", .versionNotSupported("HTTP/2.0 is not supported"))
        assertFailure("GET / HTTP/0.9\r\n\r\n", .versionNotSupported("HTTP/0.9 is not supported"))
        assertFailure("GET / HTTP/3.1\r\nHost: x\r\n\r\n", .versionNotSupported("HTTP/3.1 is not supported"))
        XCTAssertEqual(RequestError.versionNotSupported("x").statusCode, 505)
    }

    func testMalformedVersionsAre400() {
        let invalid = badRequest("Start line is invalid")
        for line in [
            "GET /", "GET / ", "GET / HTTP/1", "GET / HTTP/1.", "GET / HTTP/1.10", "GET / HTTP/11",
            "GET / http/1.1", "GET / HTTPS/1.1", "GET / HTTP/a.1", "GET / HTTP/1.1 ", "GET  / HTTP/1.1",
            "GET / HTTP/1.1 extra", "GET", "/ HTTP/1.1",
        ] {
            assertFailure(line + "\r\n\r\n", invalid, version: .http10)
        }
    }

    func testMissingVersionIs400() {
        assertFailure("GET /path\r\nHost: x\r\n\r\n", badRequest("Start line is invalid"), version: .http10)
    }

    func testNonASCIIInTargetIs400() {
        assertFailure("GET /caf\u{E9} HTTP/1.1\r\n\r\n", badRequest("Start line is invalid"), version: .http10)
        assertFailure("GET /\u{80} HTTP/1.1\r\n\r\n", badRequest("Start line is invalid"), version: .http10)
    }

    func testSpaceOrControlInTargetIs400() {
        assertFailure("GET /a b HTTP/1.1\r\n\r\n", badRequest("Start line is invalid"), version: .http10)
        assertFailure("GET /a\tb HTTP/1.1\r\n\r\n", badRequest("Start line is invalid"), version: .http10)
        assertFailure("GET /a\u{0}b HTTP/1.1\r\n\r\n", badRequest("Start line is invalid"), version: .http10)
        assertFailure("GET /a\u{7F}b HTTP/1.1\r\n\r\n", badRequest("Start line is invalid"), version: .http10)
    }

    func testBareCRInRequestLineIs400() {
        let bare = badRequest("Bare CR or LF found in HTTP message")
        assertFailure("GET / HTTP/1.1\rX\r\n\r\n", bare, version: .http10)
        assertFailure("GET /\r HTTP/1.1\r\n\r\n", bare, version: .http10)
        assertFailure("GET / HTTP/1.1\r\r\n\r\n", bare, version: .http10)
        assertFailure("\r\r\nGET / HTTP/1.1\r\n\r\n", bare, version: .http10)
        // Answered once the byte after the CR shows it is bare, without waiting for a line end.
        let early = parseByteByByte(latin1("GET /\rX HTTP/1.1"))
        XCTAssertEqual(early.outcome, .failure(bare, .http10))
        XCTAssertEqual(early.at, 7)
    }

    func testLeadingCRLFsAreIgnored() throws {
        let head = try XCTUnwrap(parseHead("\r\n\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n"))
        XCTAssertEqual(head.method, "GET")
        XCTAssertEqual(head.path, "/x")
        XCTAssertEqual(head.fields, ["HOST: h"])
        // The blank lines are consumed with the head.
        XCTAssertEqual(head.consumed, 6 + 17 + 9 + 2)
    }

    func testOnlyBlankLinesNeedMore() {
        XCTAssertEqual(parseWhole(latin1("\r\n")), .needMore)
        XCTAssertEqual(parseWhole(latin1("\r\n\r\n\r")), .needMore)
        XCTAssertEqual(parseByteByByte(latin1("\r\n\r\n\r\n\r\n")).outcome, .needMore)
    }

    func testBareLFBeforeRequestLineIs400() {
        assertFailure("\nGET / HTTP/1.1\r\n\r\n", badRequest("Bare CR or LF found in HTTP message"), version: .http10)
        assertFailure("\r\n\nGET / HTTP/1.1\r\n\r\n", badRequest("Bare CR or LF found in HTTP message"), version: .http10)
    }

    func testBytesAfterTheHeadAreNotConsumed() throws {
        let text = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"
        let head = try XCTUnwrap(parseHead(text))
        XCTAssertEqual(head.path, "/a")
        XCTAssertEqual(head.consumed, 19)
        // The rest parses as the next request with a fresh start.
        let rest = Array(latin1(text)[19...])
        XCTAssertEqual(parseWhole(rest).head?.path, "/b")
    }

    func testParserIsReusableAfterAHead() {
        var parser = RequestHeadParser(maxHeaderSize: defaultMaxHeader, maxBodySize: defaultMaxBody)
        let first = latin1("GET /first HTTP/1.1\r\nA: 1\r\n\r\n")
        XCTAssertEqual(parse(first[0..<20], with: &parser), .needMore)
        XCTAssertEqual(parse(first[...], with: &parser).head?.path, "/first")
        // A new, shorter buffer: the resume offset must not survive the head.
        let second = latin1("GET /2 HTTP/1.1\r\n\r\n")
        XCTAssertEqual(parse(second[0..<5], with: &parser), .needMore)
        XCTAssertEqual(parse(second[...], with: &parser).head?.path, "/2")
    }

    func testIsHead() throws {
        let head = try XCTUnwrap(parseWhole(latin1("HEAD / HTTP/1.1\r\n\r\n")).head)
        XCTAssertEqual(head.method, "HEAD")
        var parser = RequestHeadParser(maxHeaderSize: 1000, maxBodySize: 1000)
        for (method, expected) in [("HEAD", true), ("GET", false), ("HEADS", false), ("HEA", false)] {
            let result = latin1("\(method) / HTTP/1.1\r\n\r\n").withUnsafeBytes { parser.parse($0) }
            guard case .head(let parsed, _) = result else { return XCTFail("\(method): \(result)") }
            XCTAssertEqual(parsed.isHead, expected, method)
        }
    }
}
