import XCTest

@testable import WaitressHTTP

/// Lines written by `AccessLogFormat` for parsed heads, and how a response's
/// headers are noted for a format (kept whole, or only Content-Length as a
/// number). The byte-for-byte comparison with TransLogger is in
/// tests/functional/test_access_log.py.
final class AccessLogFormatTests: XCTestCase {
    func head(_ text: String) throws -> RequestHead {
        var parser = RequestHeadParser(maxHeaderSize: 8192, maxBodySize: 1 << 30)
        let bytes = Array(text.utf8)
        let result = bytes.withUnsafeBytes { parser.parse($0) }
        guard case .head(let head, _) = result else { throw XCTSkip("not parsed: \(result)") }
        return head
    }

    func headers(_ pairs: [(String, String)]) -> ResponseHeaders {
        var h = ResponseHeaders()
        for (name, value) in pairs { h.append(name: name, value: value) }
        return h
    }

    func line(_ format: AccessLogFormat, _ entry: AccessLogEntry) -> String {
        var out: [UInt8] = []
        var clock = AccessLogClock()
        format.write(entry, into: &out, clock: &clock)
        return String(decoding: out, as: UTF8.self)
    }

    func entry(
        _ head: RequestHead?, headers: ResponseHeaders?, contentLength: Int = AccessLogEntry.contentLengthInHeaders,
        raw: String = ""
    ) -> AccessLogEntry {
        AccessLogEntry(
            head: head, rawRequestLine: Array(raw.utf8), remoteHost: Array("10.0.0.1".utf8),
            remotePort: Array("5555".utf8), startTime: 0, duration: 0.0015, status: 200, responseHeaders: headers,
            contentLength: contentLength, bodyBytes: 5)
    }

    func testCombinedNotesOnlyACanonicalContentLength() throws {
        let combined = try AccessLogFormat("combined")
        XCTAssertEqual(combined.note(headers([("Content-Length", "12345")])).keep, false)
        XCTAssertEqual(combined.note(headers([("Content-Length", "12345")])).contentLength, 12345)
        XCTAssertEqual(combined.note(headers([("content-length", "0")])).contentLength, 0)
        // The last one, as TransLogger takes.
        XCTAssertEqual(combined.note(headers([("Content-Length", "1"), ("CONTENT-LENGTH", "2")])).contentLength, 2)
        // No header: `-` without keeping the headers.
        let none = combined.note(headers([("Content-Type", "text/plain")]))
        XCTAssertEqual(none.keep, false)
        XCTAssertEqual(none.contentLength, AccessLogEntry.noContentLength)
        // What a number would print differently is printed from the kept headers.
        for odd in ["007", " 5", "5 ", "", "12a", "1234567890123456789"] {
            let noted = combined.note(headers([("Content-Length", odd)]))
            XCTAssertEqual(noted.keep, true, odd)
            XCTAssertEqual(noted.contentLength, AccessLogEntry.contentLengthInHeaders, odd)
        }
    }

    func testFormatsWithoutResponseFieldsKeepNoHeaders() throws {
        for spec in ["json", "%(h)s %(s)s %(b)s %(D)s"] {
            let noted = try AccessLogFormat(spec).note(headers([("Content-Length", "9"), ("X-A", "b")]))
            XCTAssertEqual(noted.keep, false, spec)
        }
        XCTAssertEqual(try AccessLogFormat("%({x-a}o)s").note(headers([("X-A", "b")])).keep, true)
    }

    func testNotedAndKeptContentLengthPrintTheSame() throws {
        let common = try AccessLogFormat("common")
        let h = try head("GET /a%20b?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        let kept = line(common, entry(h, headers: headers([("Content-Length", "42")])))
        let noted = line(common, entry(h, headers: nil, contentLength: 42))
        XCTAssertEqual(kept, noted)
        XCTAssertTrue(kept.hasSuffix("\"GET /a%20b?q=1 HTTP/1.1\" 200 42\n"), kept)
        XCTAssertTrue(line(common, entry(h, headers: nil, contentLength: AccessLogEntry.noContentLength))
            .hasSuffix(" 200 -\n"))
        let odd = line(common, entry(h, headers: headers([("Content-Length", "007")])))
        XCTAssertTrue(odd.hasSuffix(" 200 007\n"), odd)
    }

    func testFieldsOfTheRequestAndTheResponse() throws {
        let format = try AccessLogFormat(
            "%(h)s %(u)s %(m)s %(U)s %(q)s %(H)s \"%(f)s\" \"%(a)s\" %({x-trace}i)s %({x-out}o)s %(P)s %(D)s")
        let h = try head(
            "POST /p?x=1 HTTP/1.0\r\nReferer: http://r/\r\nUser-Agent: ua \"q\"\r\nX-Trace: t1\r\n"
                + "Authorization: Basic dXNlcjpwYXNz\r\n\r\n")
        XCTAssertEqual(
            line(format, entry(h, headers: headers([("X-Out", "o1"), ("x-out", "o2")]))),
            "10.0.0.1 user POST /p x=1 HTTP/1.0 \"http://r/\" \"ua \\\"q\\\"\" t1 o2 5555 1500\n")
    }

    func testNoHeadUsesTheRawLine() throws {
        let combined = try AccessLogFormat("combined")
        let text = line(combined, entry(nil, headers: nil, contentLength: 11, raw: "BAD \u{1}LINE"))
        XCTAssertTrue(text.hasPrefix("10.0.0.1 - - ["), text)
        XCTAssertTrue(text.hasSuffix("] \"BAD \\x01LINE\" 200 11 \"-\" \"-\"\n"), text)
        let json = line(try AccessLogFormat("json"), entry(nil, headers: nil, raw: "BAD"))
        XCTAssertTrue(json.contains("\"method\":null,\"target\":null,\"protocol\":null,\"request_line\":\"BAD\""), json)
    }

    func testJSONLineOfAParsedHead() throws {
        let h = try head("GET /a?b=1 HTTP/1.1\r\nUser-Agent: ua\\x\"\r\n\r\n")
        let json = line(try AccessLogFormat("json"), entry(h, headers: nil))
        XCTAssertTrue(json.hasPrefix("{\"time\":\"19"), json)  // the epoch, in local time
        XCTAssertTrue(
            json.contains(
                "\"remote_addr\":\"10.0.0.1\",\"remote_port\":5555,\"method\":\"GET\",\"target\":\"/a?b=1\","
                    + "\"protocol\":\"HTTP/1.1\",\"status\":200,\"bytes\":5,\"duration_us\":1500,"
                    + "\"referer\":null,\"user_agent\":\"ua\\\\x\\\"\",\"user\":null}\n"), json)
    }

    func testLogBytesGrowsAndExchanges() {
        var a = LogBytes(capacity: 16)
        for i in 0..<100 { a.append(decimal: i - 50) }
        a.append(decimal: Int.min)
        a.append(decimal: Int.max)
        let expected = (0..<100).map { String($0 - 50) }.joined() + String(Int.min) + String(Int.max)
        XCTAssertEqual(String(decoding: a.bytes, as: UTF8.self), expected)
        var b = LogBytes(capacity: 16)
        b.append("xy")
        a.exchange(with: &b)
        XCTAssertEqual(String(decoding: a.bytes, as: UTF8.self), "xy")
        XCTAssertEqual(b.count, expected.utf8.count)
        a.truncate(to: 1)
        a.append(Array("z".utf8))
        XCTAssertEqual(String(decoding: a.bytes, as: UTF8.self), "xz")
        a.removeAll()
        XCTAssertTrue(a.isEmpty)
    }
}
