import XCTest

@testable import WaitressHTTP

/// The chunked coding (RFC 9112 §7.1), de-chunked strictly; every input is
/// received whole, one byte per read and split in two at every boundary.
final class ChunkedReceiverTests: XCTestCase {
    private func chunked(maxBody: Int = defaultMaxBody, maxHeader: Int = defaultMaxHeader) -> () -> BodyReceiver {
        { .chunked(ChunkedReceiver(maxBodySize: maxBody, maxHeaderSize: maxHeader)) }
    }

    private func assertBody(
        _ text: String, _ body: String, consumed: Int? = nil, maxBody: Int = defaultMaxBody,
        maxHeader: Int = defaultMaxHeader, file: StaticString = #filePath, line: UInt = #line
    ) {
        let input = latin1(text)
        let outcome = receiveEveryWay(input, file: file, line: line, makeReceiver: chunked(maxBody: maxBody, maxHeader: maxHeader))
        let expected = Received(body: latin1(body), consumed: consumed ?? input.count, complete: true)
        XCTAssertEqual(outcome, .received(expected), file: file, line: line)
    }

    private func assertError(
        _ text: String, _ error: RequestError, maxBody: Int = defaultMaxBody, maxHeader: Int = defaultMaxHeader,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        let outcome = receiveEveryWay(latin1(text), file: file, line: line, makeReceiver: chunked(maxBody: maxBody, maxHeader: maxHeader))
        XCTAssertEqual(outcome, .failed(error), file: file, line: line)
    }

    // MARK: valid bodies

    func testSeveralChunks() {
        assertBody("5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n", "hello world")
    }

    func testEmptyBody() {
        assertBody("0\r\n\r\n", "")
        assertBody("000\r\n\r\n", "")
    }

    func testHexSizesAnyCaseAndLeadingZeros() {
        let sixteen = String(repeating: "x", count: 16)
        let twoSixtySix = String(repeating: "y", count: 0x10A)
        assertBody("10\r\n\(sixteen)\r\n10A\r\n\(twoSixtySix)\r\n0\r\n\r\n", sixteen + twoSixtySix)
        assertBody("0a\r\n0123456789\r\n00B\r\nabcdefghijk\r\n0\r\n\r\n", "0123456789abcdefghijk")
    }

    func testDataMayHoldCRLF() {
        assertBody("6\r\n\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n\r\n")
    }

    func testChunkExtensions() {
        assertBody("5;name\r\nhello\r\n0\r\n\r\n", "hello")
        assertBody("5;name=value\r\nhello\r\n0\r\n\r\n", "hello")
        assertBody("5 ; a = b ;c\t;\td=e\r\nhello\r\n0;last=yes\r\n\r\n", "hello")
        assertBody("5;q=\"quoted string\"\r\nhello\r\n0\r\n\r\n", "hello")
        assertBody("5;q=\"with \\\"escaped\\\" quote; and = signs\"\r\nhello\r\n0\r\n\r\n", "hello")
        assertBody("5;q=\"\"\r\nhello\r\n0\r\n\r\n", "hello")
        assertBody("5;q=\"obs-text \u{E9}\u{FF}\"\r\nhello\r\n0\r\n\r\n", "hello")
    }

    func testTrailersAreReadAndDropped() {
        assertBody("5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other:\r\nX-Third:  spaced value \r\n\r\n", "hello")
    }

    func testBytesAfterTheTerminatorAreNotConsumed() {
        let body = "3\r\nabc\r\n0\r\n\r\n"
        let next = "GET /next HTTP/1.1\r\n\r\n"
        assertBody(body + next, "abc", consumed: latin1(body).count)
        let withTrailer = "3\r\nabc\r\n0\r\nT: v\r\n\r\n"
        assertBody(withTrailer + "0\r\n\r\n", "abc", consumed: latin1(withTrailer).count)
    }

    func testIncompleteBodiesWait() {
        for text in ["", "5", "5\r", "5\r\nhel", "5\r\nhello", "5\r\nhello\r", "5\r\nhello\r\n0\r\n", "5\r\nhello\r\n0\r\nT: v\r\n"] {
            let input = latin1(text)
            let outcome = receive(input, boundaries: [], makeReceiver: chunked())
            guard case .received(let received) = outcome else { return XCTFail("\(text.debugDescription): \(outcome)") }
            XCTAssertFalse(received.complete, text.debugDescription)
            XCTAssertEqual(received.consumed, input.count, text.debugDescription)
        }
    }

    func testCompleteReceiverConsumesNothingMore() throws {
        var receiver = ChunkedReceiver(maxBodySize: 100, maxHeaderSize: 100)
        let sink = OverflowableBuffer(overflow: 100)
        let first = try latin1("1\r\na\r\n0\r\n\r\n").withUnsafeBytes { try receiver.receive($0, into: sink) }
        XCTAssertEqual(first, 11)
        XCTAssertTrue(receiver.isComplete)
        XCTAssertEqual(receiver.bodyLength, 1)
        let second = try latin1("1\r\nb\r\n0\r\n\r\n").withUnsafeBytes { try receiver.receive($0, into: sink) }
        XCTAssertEqual(second, 0)
        XCTAssertEqual(contents(of: sink), latin1("a"))
    }

    func testLargeBodySpillsAndReadsBack() {
        var text = ""
        var body = ""
        for i in 0..<20 {
            let piece = String(repeating: Character(Unicode.Scalar(UInt8(65 + i))), count: 50 + i)
            text += String(50 + i, radix: 16) + "\r\n" + piece + "\r\n"
            body += piece
        }
        text += "0\r\n\r\n"
        let input = latin1(text)
        for boundaries in [[], Array(stride(from: 0, to: input.count, by: 13))] {
            let outcome = receive(input, boundaries: boundaries, overflow: 100, makeReceiver: chunked())
            XCTAssertEqual(outcome, .received(Received(body: latin1(body), consumed: input.count, complete: true)))
        }
    }

    // MARK: errors

    func testMissingCRLFAfterData() {
        let unterminated = badRequest("Chunk not properly terminated")
        assertError("5\r\nhelloX\r\n0\r\n\r\n", unterminated)
        assertError("5\r\nhello\rX0\r\n\r\n", unterminated)
        assertError("5\r\nhello\n0\r\n\r\n", unterminated)
        assertError("3\r\nhello\r\n0\r\n\r\n", unterminated)
    }

    func testBareLF() {
        assertError("5\nhello\r\n0\r\n\r\n", badRequest("Bare LF found in chunked body"))
        assertError("5\r\nhello\r\n0\n\r\n", badRequest("Bare LF found in chunked body"))
        assertError("5\r\nhello\r\n0\r\nT: v\n\r\n", badRequest("Bare LF found in chunked body"))
        assertError("5\r\nhello\r\n0\r\n\n", badRequest("Bare LF found in chunked body"))
    }

    func testBareCR() {
        assertError("5\rhello\r\n0\r\n\r\n", badRequest("Bare CR found in chunked body"))
        assertError("5\r\nhello\r\n0\r\nT: v\rx\r\n\r\n", badRequest("Bare CR found in chunked body"))
        assertError("5\r\nhello\r\n0\r\n\r\r\n", badRequest("Bare CR found in chunked body"))
    }

    func testInvalidSize() {
        let invalid = badRequest("Invalid chunk size")
        assertError("\r\nhello\r\n0\r\n\r\n", invalid)
        assertError("zz\r\nhello\r\n0\r\n\r\n", invalid)
        assertError("-5\r\nhello\r\n0\r\n\r\n", invalid)
        assertError("+5\r\nhello\r\n0\r\n\r\n", invalid)
        assertError(" 5\r\nhello\r\n0\r\n\r\n", invalid)
        assertError(";ext\r\n\r\n", invalid)
        // Digits followed by anything but BWS ";" are a bad size (Waitress's word).
        assertError("0x5\r\nhello\r\n0\r\n\r\n", invalid)
        assertError("0x20\r\n" + String(repeating: "x", count: 32) + "\r\n0\r\n\r\n", invalid)
        assertError("5g\r\nhello\r\n0\r\n\r\n", invalid)
        assertError("5q\r\nhello\r\n0\r\n\r\n", invalid)
        assertError("5 x\r\nhello\r\n0\r\n\r\n", invalid)
        assertError("5\u{0}\r\nhello\r\n0\r\n\r\n", invalid)
    }

    /// Whitespace after the size is allowed only before a ";" (RFC 9112 §7.1.1:
    /// BWS belongs to chunk-ext); Waitress 3.0.2 rejects `5 ` and `0\t` too.
    func testWhitespaceAfterSizeWithoutExtension() {
        let invalid = badRequest("Invalid chunk size")
        assertError("5 \r\nhello\r\n0\r\n\r\n", invalid)
        assertError("5\t\r\nhello\r\n0\r\n\r\n", invalid)
        assertError("5\r\nhello\r\n0\t\r\n\r\n", invalid)
        assertError("5\r\nhello\r\n0 \r\n\r\n", invalid)
        assertBody("5 ;a\r\nhello\r\n0\t;b\r\n\r\n", "hello")
    }

    func testHugeSizesDoNotOverflow() {
        let tooLarge = RequestError.entityTooLarge(limit: defaultMaxBody)
        assertError("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n", tooLarge)
        assertError("7FFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n", tooLarge)
        assertError("10000000000000000\r\n", tooLarge)
        assertError(String(repeating: "f", count: 4000) + "\r\n", tooLarge)
        // Just over the limit, without any overflow involved.
        assertError(String(defaultMaxBody, radix: 16) + "\r\n", tooLarge)
        XCTAssertThrowsError(try ChunkedReceiver.parseSizeLine(Array(repeating: UInt8(ascii: "F"), count: 64), maxBodySize: 10))
    }

    func testLongLeadingZerosAreFine() {
        assertBody(String(repeating: "0", count: 100) + "3\r\nabc\r\n0\r\n\r\n", "abc")
    }

    func testSizeLineTooLong() {
        let ext = ";" + String(repeating: "a", count: ChunkedReceiver.maxSizeLine + 10)
        assertError("5\(ext)\r\nhello\r\n0\r\n\r\n", badRequest("Chunk size line too long"))
    }

    func testMalformedExtensions() {
        let invalid = badRequest("Invalid chunk extension")
        for ext in [";", "; ", ";=v", ";a=", ";a= ", ";a=b c", ";a=\"open", ";a=\"bad\\", ";a=\"x\"y", ";a;", ";a=b=c", ";(a)", ";a=(b)", ";a=\"x\" ;"] {
            assertError("5\(ext)\r\nhello\r\n0\r\n\r\n", invalid)
        }
        assertError("5\r\nhello\r\n0;=x\r\n\r\n", invalid)
    }

    func testControlCharactersInExtensions() {
        let invalid = badRequest("Invalid chunk extension")
        for ext in [";a=b\u{0}", ";a=b\u{1}", ";a\u{7F}", ";a=\"x\u{0}y\"", ";a=\"x\u{7F}\"", ";a=\"\\\u{1}\"", ";a=\"\u{1B}\""] {
            assertError("5\(ext)\r\nhello\r\n0\r\n\r\n", invalid)
        }
    }

    func testInvalidTrailers() {
        let invalid = badRequest("Invalid trailer field")
        for trailer in ["no colon", ": no name", "Sp ace: v", "X: a\u{0}b", "X: \u{7F}", " X: folded", "\tX: folded", "X(y): v"] {
            assertError("5\r\nhello\r\n0\r\n\(trailer)\r\n\r\n", invalid)
        }
    }

    func testTrailersTooLargeAre431() {
        let tooLarge = RequestError.headerFieldsTooLarge(limit: 64)
        // One long trailer line.
        assertError("0\r\nX: \(String(repeating: "a", count: 100))\r\n\r\n", tooLarge, maxHeader: 64)
        // Many short ones adding up.
        let many = (0..<20).map { "T\($0): v\r\n" }.joined()
        assertError("0\r\n\(many)\r\n", tooLarge, maxHeader: 64)
        // A line that never ends is cut off too.
        let endless = "0\r\nX: " + String(repeating: "a", count: 1000)
        let outcome = receive(latin1(endless), boundaries: Array(0..<latin1(endless).count), makeReceiver: chunked(maxHeader: 64))
        XCTAssertEqual(outcome, .failed(tooLarge))
        // Below the limit, accepted.
        assertBody("1\r\nz\r\n0\r\nA: b\r\nC: d\r\n\r\n", "z", maxHeader: 64)
    }

    func testBodyAtTheLimitIs413() {
        let tooLarge = RequestError.entityTooLarge(limit: 10)
        assertError("A\r\n0123456789\r\n0\r\n\r\n", tooLarge, maxBody: 10)
        assertError("5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n", tooLarge, maxBody: 10)
        assertError("5\r\n01234\r\n800\r\n", tooLarge, maxBody: 10)
        assertBody("5\r\n01234\r\n4\r\n5678\r\n0\r\n\r\n", "012345678", maxBody: 10)
    }

    func testMalformedBodyOverTheLimitIsAnswered413() {
        // Waitress counts the bytes received against the limit before the framing.
        let chunked = BodyReceiver.chunked(ChunkedReceiver(maxBodySize: 1000, maxHeaderSize: 100))
        let malformed = badRequest("Invalid chunk extension")
        XCTAssertEqual(chunked.answer(to: malformed, received: 1000, maxBodySize: 1000), .entityTooLarge(limit: 1000))
        XCTAssertEqual(chunked.answer(to: malformed, received: 999, maxBodySize: 1000), malformed)
        // Trailers too large stay 431; a fixed-length body is never reinterpreted.
        XCTAssertEqual(
            chunked.answer(to: .headerFieldsTooLarge(limit: 100), received: 5000, maxBodySize: 1000),
            .headerFieldsTooLarge(limit: 100))
        let fixed = BodyReceiver.fixed(FixedLengthReceiver(length: 10))
        XCTAssertEqual(fixed.answer(to: malformed, received: 5000, maxBodySize: 1000), malformed)
    }

    func test413IsReportedBeforeTheDataArrives() {
        // As soon as the size line announces too much, without the data.
        let outcome = receive(latin1("100000\r\n"), boundaries: [], makeReceiver: chunked(maxBody: 1000))
        XCTAssertEqual(outcome, .failed(.entityTooLarge(limit: 1000)))
    }
}
