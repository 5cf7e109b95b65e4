import XCTest

@testable import WaitressHTTP

/// Message framing (RFC 9112 §6): Content-Length, Transfer-Encoding, their
/// conflicts, the body-size limit; plus Expect and connection persistence.
final class FramingTests: XCTestCase {
    private func post(_ fields: String, version: String = "1.1") -> String {
        "POST /upload HTTP/\(version)\r\nHost: h\r\n\(fields)\r\n"
    }

    // MARK: Content-Length

    func testContentLength() throws {
        let head = try XCTUnwrap(parseHead(post("Content-Length: 1234\r\n") + "body bytes"))
        XCTAssertEqual(head.contentLength, 1234)
        XCTAssertFalse(head.isChunked)
        XCTAssertEqual(head.fields, ["HOST: h", "CONTENT_LENGTH: 1234"])
        XCTAssertEqual(head.consumed, latin1(post("Content-Length: 1234\r\n")).count)
    }

    func testContentLengthZeroAndLeadingZeros() throws {
        XCTAssertEqual(parseHead(post("Content-Length: 0\r\n"))?.contentLength, 0)
        XCTAssertEqual(parseHead(post("Content-Length: 007\r\n"))?.contentLength, 7)
        XCTAssertEqual(parseHead(post("Content-Length:\t 42 \t\r\n"))?.contentLength, 42)
    }

    func testContentLengthMustBeDigitsOnly() {
        let invalid = badRequest("Content-Length is invalid")
        for value in ["", "+5", "-5", "0x10", "5a", "a5", "5, 6", "5,5", "5 6", "1 000", "5.0", "1e3", "\u{B2}", "\u{FF}"] {
            assertFailure(post("Content-Length: \(value)\r\n"), invalid)
        }
    }

    func testContentLengthOf19OrMoreSignificantDigitsIs400() {
        let invalid = badRequest("Content-Length is invalid")
        assertFailure(post("Content-Length: 1000000000000000000\r\n"), invalid)
        // Leading zeros don't count toward the overflow guard (RFC 9110 §8.6: 1*DIGIT).
        XCTAssertEqual(parseHead(post("Content-Length: 0000000000000000005\r\n"))?.contentLength, 5)
        XCTAssertEqual(parseHead(post("Content-Length: 0000000000000000000000000000000\r\n"))?.contentLength, 0)
        assertFailure(post("Content-Length: 99999999999999999999999999999999999999\r\n"), invalid)
        // 18 digits parse without overflow, and are then too large.
        assertFailure(
            post("Content-Length: 999999999999999999\r\n"), .entityTooLarge(limit: defaultMaxBody))
        XCTAssertEqual(parseHead(post("Content-Length: 000000000000000005\r\n"))?.contentLength, 5)
    }

    func testRepeatedContentLengthIs400EvenWhenIdentical() {
        // Waitress joins repeats into "5, 5", which is not 1*DIGIT: any repeat
        // is rejected, equal or not.
        let invalid = badRequest("Content-Length is invalid")
        assertFailure(post("Content-Length: 5\r\nX: y\r\ncontent-length: 5\r\n"), invalid)
        assertFailure(post("Content-Length: 5\r\nContent-Length: 05\r\n"), invalid)
        assertFailure(post("Content-Length: 0\r\nContent-Length: 0\r\n"), invalid)
    }

    func testDifferingContentLengthsAre400() {
        let invalid = badRequest("Content-Length is invalid")
        assertFailure(post("Content-Length: 5\r\nContent-Length: 6\r\n"), invalid)
        assertFailure(post("Content-Length: 5\r\nX: y\r\nContent-Length: 50\r\n"), invalid)
        assertFailure(post("Content-Length: 5\r\nContent-Length: 5, 5\r\n"), invalid)
    }

    func testContentLengthAtTheBodyLimitIs413() {
        assertFailure(post("Content-Length: 100\r\n"), .entityTooLarge(limit: 100), maxBody: 100)
        assertFailure(post("Content-Length: 101\r\n"), .entityTooLarge(limit: 100), maxBody: 100)
        assertFailure(post("Content-Length: 100\r\n", version: "1.0"), .entityTooLarge(limit: 100), version: .http10, maxBody: 100)
        XCTAssertEqual(parseHead(post("Content-Length: 99\r\n"), maxBody: 100)?.contentLength, 99)
        XCTAssertEqual(RequestError.entityTooLarge(limit: 100).statusCode, 413)
    }

    func testNoBodyFramingMeansNoBody() throws {
        let head = try XCTUnwrap(parseHead("POST / HTTP/1.1\r\n\r\n"))
        XCTAssertEqual(head.contentLength, 0)
        XCTAssertFalse(head.isChunked)
        // An empty GET is fine whatever the body limit.
        XCTAssertNotNil(parseHead("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", maxBody: 0))
    }

    // MARK: Transfer-Encoding

    func testChunked() throws {
        let head = try XCTUnwrap(parseHead(post("Transfer-Encoding: chunked\r\nX-After: 1\r\n") + "5\r\nhello"))
        XCTAssertTrue(head.isChunked)
        XCTAssertEqual(head.contentLength, 0)
        // The field is removed: the app sees the body de-chunked.
        XCTAssertEqual(head.fields, ["HOST: h", "X_AFTER: 1"])
    }

    func testChunkedIsCaseInsensitiveAndTrimmed() {
        for value in ["CHUNKED", "Chunked", "cHuNkEd", " chunked \t", ", chunked", "chunked,"] {
            XCTAssertEqual(parseHead(post("Transfer-Encoding: \(value)\r\n"))?.isChunked, true, value)
        }
    }

    func testChunkedIsNotLimitedByDeclaredSize() {
        // The body limit for chunked bodies is applied while receiving.
        XCTAssertEqual(parseHead(post("Transfer-Encoding: chunked\r\n"), maxBody: 1)?.isChunked, true)
    }

    func testOtherCodingsAre501() {
        let unsupported = RequestError.notImplemented("Transfer-Encoding requested is not supported.")
        for value in ["gzip", "identity", "gzip, chunked", "chunked, gzip", "deflate,chunked", "x-custom"] {
            assertFailure(post("Transfer-Encoding: \(value)\r\n"), unsupported)
        }
        XCTAssertEqual(unsupported.statusCode, 501)
    }

    func testMalformedTransferEncodingsAre400() {
        let invalid = badRequest("Transfer-Encoding is invalid")
        for value in ["chunked, chunked", "chunked,chunked", "", " ", ",", "chu nked", "gzip;q=1, chunked", "\"chunked\""] {
            assertFailure(post("Transfer-Encoding: \(value)\r\n"), invalid)
        }
    }

    func testRepeatedTransferEncodingFieldsAreOneList() {
        // "gzip" then "chunked" is the list "gzip, chunked": 501 as on one line.
        assertFailure(
            post("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"),
            .notImplemented("Transfer-Encoding requested is not supported."))
        assertFailure(
            post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), badRequest("Transfer-Encoding is invalid"))
    }

    func testUnknownCodingIs501HoweverTheLinesAreLaidOut() {
        // One answer for the same list of codings whatever the field lines
        // (RFC 9110 §5.3): any coding but chunked is 501, as Waitress answers.
        let unsupported = RequestError.notImplemented("Transfer-Encoding requested is not supported.")
        for lines in [
            ["gzip, chunked"], ["gzip", "chunked"], ["gzip,", "chunked"], ["gzip", " chunked "],
            ["chunked", "identity"], ["chunked, identity"], ["x", "y", "chunked"], ["chunked", "gzip", "chunked"],
            ["gzip", ""], ["", "gzip"],
        ] {
            let fields = lines.map { "Transfer-Encoding: \($0)\r\n" }.joined()
            assertFailure(post(fields), unsupported)
        }
    }

    func testChunkedOverSeveralLinesKeepsTheStructureRules() throws {
        let invalid = badRequest("Transfer-Encoding is invalid")
        // chunked exactly once, last; every line holds a coding.
        for lines in [["chunked", "chunked"], ["chunked,", "chunked"], ["", "chunked"], ["chunked", ""], [",", "chunked"]] {
            let fields = lines.map { "Transfer-Encoding: \($0)\r\n" }.joined()
            assertFailure(post(fields), invalid)
        }
        // A coding that is not a token is malformed before it is unknown.
        assertFailure(post("Transfer-Encoding: gzip\r\nTransfer-Encoding: \"chunked\"\r\n"), invalid)
        // Other fields between the lines change nothing; the field is still removed.
        let head = try XCTUnwrap(parseHead(post("Transfer-Encoding: chunked\r\nX-A: 1\r\n")))
        XCTAssertTrue(head.isChunked)
        XCTAssertEqual(head.fields, ["HOST: h", "X_A: 1"])
    }

    func testTransferEncodingWithContentLengthIs400() {
        let both = badRequest("Content-Length and Transfer-Encoding together are not allowed")
        assertFailure(post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), both)
        assertFailure(post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), both)
        assertFailure(post("Content-Length: 0\r\nTransfer-Encoding: chunked\r\n"), both)
    }

    func testTransferEncodingInHTTP10Is400() {
        assertFailure(
            post("Transfer-Encoding: chunked\r\n", version: "1.0"),
            badRequest("Transfer-Encoding is not allowed in HTTP/1.0 requests"), version: .http10)
    }

    // MARK: Expect

    func testExpectContinueOnlyFor11() {
        XCTAssertEqual(parseHead(post("Expect: 100-continue\r\nContent-Length: 5\r\n"))?.expectContinue, true)
        XCTAssertEqual(parseHead(post("Expect: 100-Continue\r\nContent-Length: 5\r\n"))?.expectContinue, true)
        XCTAssertEqual(parseHead(post("Expect: 100-continue\r\nContent-Length: 5\r\n", version: "1.0"))?.expectContinue, false)
        XCTAssertEqual(parseHead(post("Expect: something-else\r\nContent-Length: 5\r\n"))?.expectContinue, false)
        XCTAssertEqual(parseHead(post("Expect: 100-continue-ish\r\n"))?.expectContinue, false)
        XCTAssertEqual(parseHead(post("Content-Length: 5\r\n"))?.expectContinue, false)
        // The field stays visible to the app (HTTP_EXPECT).
        XCTAssertEqual(parseHead(post("Expect: 100-continue\r\n"))?.fields, ["HOST: h", "EXPECT: 100-continue"])
    }

    // MARK: persistence (RFC 9112 §9.3)

    func testKeepAliveRules() {
        let cases: [(version: String, connection: String?, keepAlive: Bool, token: Bool)] = [
            ("1.1", nil, true, false),
            ("1.1", "close", false, false),
            ("1.1", "Close", false, false),
            ("1.1", "keep-alive", true, true),
            ("1.1", "keep-alive, close", false, true),
            ("1.1", "Upgrade, CLOSE", false, false),
            ("1.1", "closed", true, false),
            ("1.1", "", true, false),
            ("1.0", nil, false, false),
            ("1.0", "keep-alive", true, true),
            ("1.0", "Keep-Alive", true, true),
            ("1.0", " keep-alive ,te", true, true),
            ("1.0", "te, keep-alive", true, true),
            ("1.0", "keep-alive, close", false, true),
            ("1.0", "close", false, false),
            ("1.0", "keep-alive-ish", false, false),
        ]
        for c in cases {
            let field = c.connection.map { "Connection: \($0)\r\n" } ?? ""
            let head = parseHead("GET / HTTP/\(c.version)\r\n\(field)\r\n")
            XCTAssertEqual(head?.keepAlive, c.keepAlive, "\(c)")
            XCTAssertEqual(head?.keepAliveToken, c.token, "\(c)")
        }
    }

    func testRepeatedConnectionFieldsAllCount() throws {
        let head = try XCTUnwrap(parseHead("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"))
        XCTAssertFalse(head.keepAlive)
        XCTAssertEqual(head.fields, ["CONNECTION: keep-alive, close"])
        let eleven = try XCTUnwrap(parseHead("GET / HTTP/1.1\r\nConnection: te\r\nConnection: close\r\n\r\n"))
        XCTAssertFalse(eleven.keepAlive)
    }
}
