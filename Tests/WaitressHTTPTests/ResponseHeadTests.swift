import XCTest

@testable import WaitressHTTP

/// Response heads and framing as Waitress's Task.build_response_header makes
/// them, with the documented differences (chunked 1.1 responses keep the
/// connection; HEAD never gets a body).
final class ResponseHeadTests: XCTestCase {
    static let date = "Sun, 06 Nov 1994 08:49:37 GMT"

    struct Written {
        var text: String
        var framing: BodyFraming
        var closeAfter: Bool
    }

    private func write(
        version: HTTPVersion = .http11, isHead: Bool = false, keepAlive: Bool? = nil, keepAliveToken: Bool = false,
        status: String = "200 OK", headers: [(String, String)] = [], contentLength: Int? = nil,
        forceClose: Bool = false, ident: String? = "waitress"
    ) -> Written {
        var responseHeaders = ResponseHeaders()
        for (name, value) in headers { responseHeaders.append(name: name, value: value) }
        let request = ResponseHead.Request(
            version: version, isHead: isHead, keepAlive: keepAlive ?? (version == .http11 || keepAliveToken),
            keepAliveToken: keepAliveToken)
        var out: [UInt8] = Array("previous bytes|".utf8)
        let statusBytes = latin1(status)
        let decision = statusBytes.withUnsafeBytes {
            ResponseHead.write(
                into: &out, request: request, status: $0, headers: responseHeaders, contentLength: contentLength,
                forceClose: forceClose, ident: ident.map { Array($0.utf8) }, date: Array(Self.date.utf8))
        }
        // write appends: what was there stays.
        XCTAssertEqual(Array(out.prefix(15)), Array("previous bytes|".utf8))
        return Written(text: latin1String(out.dropFirst(15)), framing: decision.framing, closeAfter: decision.closeAfter)
    }

    private func head(_ statusLine: String, _ lines: [String]) -> String {
        ([statusLine] + lines).joined(separator: "\r\n") + "\r\n\r\n"
    }

    func testHTTP11WithKnownLength() {
        let written = write(headers: [("content-type", "text/plain")], contentLength: 5)
        XCTAssertEqual(
            written.text,
            head(
                "HTTP/1.1 200 OK",
                ["Content-Length: 5", "Content-Type: text/plain", "Date: \(Self.date)", "Server: waitress"]))
        XCTAssertEqual(written.framing, .contentLength(5))
        XCTAssertFalse(written.closeAfter)
    }

    func testNamesAreCapitalisedPerDashSeparatedPart() {
        let written = write(
            headers: [
                ("x-ua-compatible", "IE=edge"), ("WWW-AUTHENTICATE", "Basic"), ("content-TYPE", "a/b"),
                ("etag", "\"x\""), ("X-lower-", "v"), ("x--y", "w"),
            ], contentLength: 0)
        XCTAssertEqual(
            written.text,
            head(
                "HTTP/1.1 200 OK",
                [
                    "Content-Length: 0", "Content-Type: a/b", "Date: \(Self.date)", "Etag: \"x\"", "Server: waitress",
                    "Www-Authenticate: Basic", "X--Y: w", "X-Lower-: v", "X-Ua-Compatible: IE=edge",
                ]))
    }

    func testValuesAreKeptAsGiven() {
        let written = write(headers: [("X-Value", "  Mixed CASE; q=\"1\"")], contentLength: 0)
        XCTAssertTrue(written.text.contains("\r\nX-Value:   Mixed CASE; q=\"1\"\r\n"))
    }

    func testSortIsStableForRepeatedNames() {
        let written = write(
            headers: [
                ("Set-Cookie", "b=2"), ("set-cookie", "a=1"), ("Content-Type", "t"), ("SET-COOKIE", "c=3"),
                ("Cache-Control", "no-cache"),
            ], contentLength: 0)
        XCTAssertEqual(
            written.text,
            head(
                "HTTP/1.1 200 OK",
                [
                    "Cache-Control: no-cache", "Content-Length: 0", "Content-Type: t", "Date: \(Self.date)",
                    "Server: waitress", "Set-Cookie: b=2", "Set-Cookie: a=1", "Set-Cookie: c=3",
                ]))
    }

    func testCanonicalNamesSortAsBytesWithPrefixesFirst() {
        // Names already canonical are compared with memcmp; a prefix sorts first.
        let written = write(
            headers: [("X-Foo-Bar", "3"), ("X-Foo", "2"), ("X-Fo", "1"), ("x-fo", "0"), ("Age", "4")], contentLength: 0)
        XCTAssertEqual(
            written.text,
            head(
                "HTTP/1.1 200 OK",
                [
                    "Age: 4", "Content-Length: 0", "Date: \(Self.date)", "Server: waitress", "X-Fo: 1", "X-Fo: 0",
                    "X-Foo: 2", "X-Foo-Bar: 3",
                ]))
    }

    func testComputedContentLengthDigits() {
        for length in [0, 7, 10, 99, 100, 65_536, 1_234_567_890_123, Int.max] {
            let written = write(contentLength: length)
            XCTAssertTrue(written.text.contains("\r\nContent-Length: \(length)\r\n"), written.text)
            XCTAssertEqual(written.framing, .contentLength(length))
        }
    }

    func testAppContentLengthIsKeptNotDuplicated() {
        let written = write(headers: [("content-length", "11")], contentLength: 11)
        XCTAssertEqual(written.text, head("HTTP/1.1 200 OK", ["Content-Length: 11", "Date: \(Self.date)", "Server: waitress"]))
        XCTAssertEqual(written.framing, .contentLength(11))
    }

    func testHTTP11WithoutLengthIsChunked() {
        let written = write(headers: [("Content-Type", "text/html")])
        XCTAssertEqual(
            written.text,
            head(
                "HTTP/1.1 200 OK",
                ["Content-Type: text/html", "Date: \(Self.date)", "Server: waitress", "Transfer-Encoding: chunked"]))
        XCTAssertEqual(written.framing, .chunked)
        XCTAssertFalse(written.closeAfter)
    }

    func testHTTP11CloseRequested() {
        let written = write(keepAlive: false, contentLength: 2)
        XCTAssertEqual(
            written.text,
            head("HTTP/1.1 200 OK", ["Connection: close", "Content-Length: 2", "Date: \(Self.date)", "Server: waitress"]))
        XCTAssertEqual(written.framing, .contentLength(2))
        XCTAssertTrue(written.closeAfter)

        let chunked = write(keepAlive: false)
        XCTAssertEqual(chunked.framing, .chunked)
        XCTAssertTrue(chunked.closeAfter)
        XCTAssertTrue(chunked.text.contains("\r\nConnection: close\r\n"))
        XCTAssertTrue(chunked.text.contains("\r\nTransfer-Encoding: chunked\r\n"))
    }

    func testForceClose() {
        let written = write(contentLength: 2, forceClose: true)
        XCTAssertTrue(written.text.contains("\r\nConnection: close\r\n"))
        XCTAssertTrue(written.closeAfter)
    }

    func testHTTP10WithoutKeepAliveCloses() {
        let withLength = write(version: .http10, contentLength: 3)
        XCTAssertEqual(
            withLength.text,
            head("HTTP/1.0 200 OK", ["Connection: close", "Content-Length: 3", "Date: \(Self.date)", "Server: waitress"]))
        XCTAssertEqual(withLength.framing, .contentLength(3))
        XCTAssertTrue(withLength.closeAfter)
    }

    func testHTTP10WithoutLengthIsCloseDelimited() {
        let written = write(version: .http10, headers: [("Content-Type", "text/plain")])
        XCTAssertEqual(
            written.text,
            head("HTTP/1.0 200 OK", ["Connection: close", "Content-Type: text/plain", "Date: \(Self.date)", "Server: waitress"]))
        XCTAssertEqual(written.framing, .untilClose)
        XCTAssertTrue(written.closeAfter)

        // Even when the client asked for keep-alive: there is no other way to delimit the body.
        let asked = write(version: .http10, keepAliveToken: true)
        XCTAssertEqual(asked.framing, .untilClose)
        XCTAssertTrue(asked.closeAfter)
        XCTAssertTrue(asked.text.contains("\r\nConnection: close\r\n"))
        XCTAssertFalse(asked.text.contains("Keep-Alive"))
    }

    func testHTTP10KeepAliveWithLength() {
        let written = write(version: .http10, keepAliveToken: true, contentLength: 4)
        XCTAssertEqual(
            written.text,
            head("HTTP/1.0 200 OK", ["Connection: Keep-Alive", "Content-Length: 4", "Date: \(Self.date)", "Server: waitress"]))
        XCTAssertEqual(written.framing, .contentLength(4))
        XCTAssertFalse(written.closeAfter)

        // The app's own Content-Length counts as a length too.
        let fromApp = write(version: .http10, keepAliveToken: true, headers: [("Content-Length", "4")], contentLength: 4)
        XCTAssertTrue(fromApp.text.contains("\r\nConnection: Keep-Alive\r\n"))
        XCTAssertFalse(fromApp.closeAfter)
    }

    func testHTTP10KeepAliveTokenButCloseToo() {
        // "Connection: keep-alive, close": the parser says keepAlive false.
        let written = write(version: .http10, keepAlive: false, keepAliveToken: true, contentLength: 4)
        XCTAssertTrue(written.text.contains("\r\nConnection: close\r\n"))
        XCTAssertFalse(written.text.contains("Keep-Alive"))
        XCTAssertTrue(written.closeAfter)
    }

    func testHeadRequestGetsHeadersButNoBody() {
        let withLength = write(isHead: true, contentLength: 42)
        XCTAssertEqual(
            withLength.text, head("HTTP/1.1 200 OK", ["Content-Length: 42", "Date: \(Self.date)", "Server: waitress"]))
        XCTAssertEqual(withLength.framing, .none)
        XCTAssertFalse(withLength.closeAfter)

        let withoutLength = write(isHead: true)
        XCTAssertEqual(withoutLength.framing, .none)
        XCTAssertFalse(withoutLength.closeAfter)

        let old = write(version: .http10, isHead: true)
        XCTAssertEqual(old.framing, .none)
        XCTAssertTrue(old.closeAfter)
    }

    func testNoBodyStatuses() {
        for status in ["204 No Content", "304 Not Modified", "100 Continue", "101 Switching Protocols", "199 Whatever"] {
            let written = write(status: status, headers: [("Content-Length", "0"), ("ETag", "e")], contentLength: 0)
            XCTAssertEqual(written.framing, .none, status)
            XCTAssertFalse(written.closeAfter, status)
            XCTAssertFalse(written.text.contains("Content-Length"), status)
            XCTAssertFalse(written.text.contains("Transfer-Encoding"), status)
            XCTAssertEqual(written.text, head("HTTP/1.1 \(status)", ["Date: \(Self.date)", "Etag: e", "Server: waitress"]), status)
        }
        // Without any length from the app: still no chunked framing.
        let noLength = write(status: "204 No Content")
        XCTAssertEqual(noLength.framing, .none)
        XCTAssertFalse(noLength.text.contains("Transfer-Encoding"))
        // Statuses that merely start alike do have bodies.
        XCTAssertEqual(write(status: "200 OK", contentLength: 1).framing, .contentLength(1))
        XCTAssertEqual(write(status: "2040 Odd", contentLength: 1).framing, .none)
        XCTAssertEqual(write(status: "205 Reset Content", contentLength: 0).framing, .contentLength(0))
        XCTAssertEqual(write(status: "404 Not Found", contentLength: 9).framing, .contentLength(9))
        XCTAssertEqual(write(status: "30 Short").framing, .chunked)
    }

    func testStatusHasBody() {
        for (status, expected) in [
            ("200 OK", true), ("204 No Content", false), ("304 Not Modified", false), ("100 Continue", false),
            ("1", false), ("20", true), ("", true), ("500 Internal Server Error", true), ("301 Moved", true),
        ] {
            XCTAssertEqual(latin1(status).withUnsafeBytes { ResponseHead.statusHasBody($0) }, expected, status)
        }
    }

    func testAppServerHeaderGetsVia() {
        let written = write(headers: [("server", "custom/1.0")], contentLength: 0)
        XCTAssertEqual(
            written.text,
            head("HTTP/1.1 200 OK", ["Content-Length: 0", "Date: \(Self.date)", "Server: custom/1.0", "Via: waitress"]))

        let customIdent = write(headers: [("Server", "custom/1.0")], contentLength: 0, ident: "myident")
        XCTAssertTrue(customIdent.text.contains("\r\nVia: myident\r\n"))
        XCTAssertFalse(customIdent.text.contains("Server: myident"))

        let noIdent = write(headers: [("Server", "custom/1.0")], contentLength: 0, ident: nil)
        XCTAssertTrue(noIdent.text.contains("\r\nVia: waitress\r\n"))
    }

    func testNoIdentOmitsServer() {
        for ident in [nil, ""] as [String?] {
            let written = write(contentLength: 0, ident: ident)
            XCTAssertEqual(written.text, head("HTTP/1.1 200 OK", ["Content-Length: 0", "Date: \(Self.date)"]))
        }
        let custom = write(contentLength: 0, ident: "acme")
        XCTAssertTrue(custom.text.contains("\r\nServer: acme\r\n"))
    }

    func testAppDateIsKept() {
        let written = write(headers: [("date", "Mon, 01 Jan 2001 00:00:00 GMT")], contentLength: 0)
        XCTAssertEqual(
            written.text,
            head("HTTP/1.1 200 OK", ["Content-Length: 0", "Date: Mon, 01 Jan 2001 00:00:00 GMT", "Server: waitress"]))
    }

    func testErrorLikeResponse() {
        // What ServerCore builds for a RequestError: forced close, known length.
        let body = ErrorPage.body(reason: "Bad Request", detail: "Invalid header", ident: "waitress")
        let written = write(
            version: .http10, keepAlive: false, status: "400 Bad Request",
            headers: [("Content-Type", "text/plain; charset=utf-8")], contentLength: body.count, forceClose: true)
        XCTAssertEqual(
            written.text,
            head(
                "HTTP/1.0 400 Bad Request",
                [
                    "Connection: close", "Content-Length: \(body.count)", "Content-Type: text/plain; charset=utf-8",
                    "Date: \(Self.date)", "Server: waitress",
                ]))
        XCTAssertTrue(written.closeAfter)
    }

    func testResponseHeadersStorage() {
        var headers = ResponseHeaders()
        headers.append(name: "A", value: "1")
        latin1("Name").withUnsafeBytes { name in
            latin1("v\u{E9}").withUnsafeBytes { value in headers.append(name: name, value: value) }
        }
        XCTAssertEqual(headers.entries.count, 2)
        XCTAssertEqual(latin1String(headers.storage[headers.entries[1].name]), "Name")
        XCTAssertEqual(latin1String(headers.storage[headers.entries[1].value]), "v\u{E9}")
        headers.removeAll()
        XCTAssertTrue(headers.entries.isEmpty)
        XCTAssertTrue(headers.storage.isEmpty)
    }

    // MARK: chunk framing

    func testChunkPrefixIsUppercaseHex() {
        for (size, expected) in [(0, "0"), (1, "1"), (10, "A"), (15, "F"), (16, "10"), (255, "FF"), (4096, "1000"), (0xABCDEF, "ABCDEF")] {
            var out: [UInt8] = []
            ChunkFraming.writePrefix(size, into: &out)
            XCTAssertEqual(latin1String(out), expected + "\r\n")
        }
        var appended = Array("x".utf8)
        ChunkFraming.writePrefix(26, into: &appended)
        XCTAssertEqual(latin1String(appended), "x1A\r\n")
        XCTAssertEqual(ChunkFraming.suffix, [13, 10])
        XCTAssertEqual(latin1String(ChunkFraming.terminator), "0\r\n\r\n")
    }
}
