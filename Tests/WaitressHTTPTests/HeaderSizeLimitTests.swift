import XCTest

@testable import WaitressHTTP

/// `max_request_header_size` (Waitress answers 431 once the head reaches it),
/// whether or not the end of the head has arrived yet.
final class HeaderSizeLimitTests: XCTestCase {
    let limit = 64

    /// A head of exactly `size` bytes, CRLFCRLF included.
    private func head(ofSize size: Int) -> [UInt8] {
        let prefix = "GET / HTTP/1.1\r\nX: "
        let suffix = "\r\n\r\n"
        let filler = size - prefix.utf8.count - suffix.utf8.count
        precondition(filler >= 0)
        let bytes = latin1(prefix + String(repeating: "a", count: filler) + suffix)
        precondition(bytes.count == size)
        return bytes
    }

    func testHeadJustUnderTheLimitIsAccepted() throws {
        let input = head(ofSize: limit - 1)
        let outcome = parseEveryWay(input, maxHeader: limit)
        XCTAssertEqual(outcome.head?.consumed, limit - 1)
    }

    func testHeadAtTheLimitIs431() {
        let tooLarge = RequestError.headerFieldsTooLarge(limit: limit)
        XCTAssertEqual(parseEveryWay(head(ofSize: limit), maxHeader: limit), .failure(tooLarge, .http10))
        XCTAssertEqual(parseEveryWay(head(ofSize: limit + 1), maxHeader: limit), .failure(tooLarge, .http10))
        XCTAssertEqual(parseEveryWay(head(ofSize: 5 * limit), maxHeader: limit), .failure(tooLarge, .http10))
        XCTAssertEqual(tooLarge.statusCode, 431)
    }

    func testBodyBytesAfterTheHeadDoNotCount() {
        // A small head followed by a large body in the same read is fine.
        var input = head(ofSize: limit - 1)
        input += [UInt8](repeating: UInt8(ascii: "b"), count: 10 * limit)
        XCTAssertEqual(parseEveryWay(input, maxHeader: limit).head?.consumed, limit - 1)
    }

    func testUnterminatedHeadArrivingInSmallPiecesIs431AtTheLimit() {
        // No CRLFCRLF ever arrives: the parser must not wait for it forever.
        let endless = latin1("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 10 * limit))
        let result = parseByteByByte(endless, maxHeader: limit)
        XCTAssertEqual(result.outcome, .failure(.headerFieldsTooLarge(limit: limit), .http10))
        XCTAssertEqual(result.at, limit)
        // Whole, the same answer.
        XCTAssertEqual(parseWhole(endless, maxHeader: limit), .failure(.headerFieldsTooLarge(limit: limit), .http10))
    }

    /// Found by the fuzzer: a malformed byte beyond the limit must not turn
    /// the 431 into a 400 when the bytes arrive all at once.
    func testErrorsBeyondTheLimitDoNotChangeThe431() {
        for tail in ["\n", "\r", "\r\r\n", "\u{0}"] {
            let input = latin1("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: limit) + tail + "\r\n\r\n")
            XCTAssertEqual(parseEveryWay(input, maxHeader: limit), .failure(.headerFieldsTooLarge(limit: limit), .http10))
        }
        // A flood of blank lines before a request counts too, split or whole.
        let blank = latin1(String(repeating: "\r\n", count: limit) + "GET / HTTP/1.1\r\n\r\n")
        XCTAssertEqual(parseEveryWay(blank, maxHeader: limit), .failure(.headerFieldsTooLarge(limit: limit), .http10))
    }

    func testUnterminatedHeadWithManyLinesIs431() {
        var text = "GET / HTTP/1.1\r\n"
        for i in 0..<20 { text += "X-\(i): v\r\n" }
        let bytes = latin1(text)
        // Fed in pieces of 7 bytes, as a slow client would send them.
        var parser = RequestHeadParser(maxHeaderSize: limit, maxBodySize: defaultMaxBody)
        var length = 0
        var outcome = Outcome.needMore
        while outcome == .needMore && length < bytes.count {
            length = min(bytes.count, length + 7)
            outcome = parse(bytes[0..<length], with: &parser)
        }
        XCTAssertEqual(outcome, .failure(.headerFieldsTooLarge(limit: limit), .http10))
        XCTAssertLessThan(length, limit + 7)
    }

    func testUnterminatedHeadBelowTheLimitNeedsMore() {
        let partial = latin1("GET / HTTP/1.1\r\nX: aaa")
        XCTAssertEqual(parseWhole(partial, maxHeader: limit), .needMore)
        XCTAssertEqual(parseByteByByte(partial, maxHeader: limit).outcome, .needMore)
    }

    func testDefaultLimitAcceptsLargeHeads() throws {
        // 8 KiB of cookies is normal traffic.
        let cookie = String(repeating: "c", count: 8192)
        let outcome = parseWhole(latin1("GET / HTTP/1.1\r\nCookie: \(cookie)\r\n\r\n"))
        XCTAssertEqual(outcome.head?.fields, ["COOKIE: \(cookie)"])
    }

    func testDetailText() {
        XCTAssertEqual(RequestError.headerFieldsTooLarge(limit: 262144).detail, "exceeds max_header of 262144")
        XCTAssertEqual(RequestError.entityTooLarge(limit: 1024).detail, "exceeds max_body of 1024")
    }
}
