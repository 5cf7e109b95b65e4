import XCTest

@testable import WaitressHTTP

// Helpers shared by the request-head tests: a comparable snapshot of a parse
// result, and drivers that feed an input whole, byte by byte (as a connection
// that receives one byte per read would) and split in two at every boundary.

let defaultMaxHeader = 262_144
let defaultMaxBody = 1_073_741_824

/// Bytes of a string, taking each scalar below 256 as one byte (latin-1), so a
/// test can write "caf\u{E9}" for the byte 0xE9.
func latin1(_ text: String) -> [UInt8] {
    text.unicodeScalars.map { scalar in
        precondition(scalar.value < 256, "not a latin-1 test string")
        return UInt8(scalar.value)
    }
}

/// The inverse of `latin1`, for readable comparisons.
func latin1String<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
}

/// A parsed head as plain values: fields are "NAME: value" in arrival order.
struct ParsedHead: Equatable {
    var method: String
    var target: String
    var path: String
    var query: String
    var version: HTTPVersion
    var fields: [String]
    var contentLength: Int
    var isChunked: Bool
    var expectContinue: Bool
    var keepAlive: Bool
    var keepAliveToken: Bool
    var consumed: Int

    init(_ head: RequestHead, consumed: Int) {
        method = latin1String(head.storage[head.method])
        target = latin1String(head.storage[head.target])
        path = latin1String(head.storage[head.path])
        query = latin1String(head.storage[head.query])
        version = head.version
        fields = head.fields.map { latin1String(head.storage[$0.name]) + ": " + latin1String(head.storage[$0.value]) }
        contentLength = head.contentLength
        isChunked = head.isChunked
        expectContinue = head.expectContinue
        keepAlive = head.keepAlive
        keepAliveToken = head.connectionKeepAliveToken
        self.consumed = consumed
    }
}

enum Outcome: Equatable {
    case needMore
    case head(ParsedHead)
    case failure(RequestError, HTTPVersion)

    init(_ result: RequestHeadParser.Result) {
        switch result {
        case .needMore: self = .needMore
        case .head(let head, let consumed): self = .head(ParsedHead(head, consumed: consumed))
        case .failure(let error, let version): self = .failure(error, version)
        }
    }

    var head: ParsedHead? {
        if case .head(let head) = self { return head }
        return nil
    }
}

func parse(_ bytes: ArraySlice<UInt8>, with parser: inout RequestHeadParser) -> Outcome {
    Array(bytes).withUnsafeBytes { Outcome(parser.parse($0)) }
}

func parseWhole(_ input: [UInt8], maxHeader: Int = defaultMaxHeader, maxBody: Int = defaultMaxBody) -> Outcome {
    var parser = RequestHeadParser(maxHeaderSize: maxHeader, maxBodySize: maxBody)
    return parse(input[...], with: &parser)
}

/// Feeds the growing prefixes 1, 2, ... n of `input` to one parser, as the
/// connection does with its accumulating buffer, and returns the first result
/// that is not `.needMore` with the prefix length it came at.
func parseByteByByte(
    _ input: [UInt8], maxHeader: Int = defaultMaxHeader, maxBody: Int = defaultMaxBody
) -> (outcome: Outcome, at: Int) {
    var parser = RequestHeadParser(maxHeaderSize: maxHeader, maxBodySize: maxBody)
    for length in 0...input.count {
        let outcome = parse(input[0..<length], with: &parser)
        if outcome != .needMore { return (outcome, length) }
    }
    return (.needMore, input.count)
}

/// Parses `input` whole, byte by byte and split in two at every boundary, and
/// asserts that every way gives the whole-input result. Returns that result.
@discardableResult
func parseEveryWay(
    _ input: [UInt8], maxHeader: Int = defaultMaxHeader, maxBody: Int = defaultMaxBody,
    file: StaticString = #filePath, line: UInt = #line
) -> Outcome {
    let whole = parseWhole(input, maxHeader: maxHeader, maxBody: maxBody)
    let incremental = parseByteByByte(input, maxHeader: maxHeader, maxBody: maxBody)
    XCTAssertEqual(incremental.outcome, whole, "byte by byte (result at prefix \(incremental.at))", file: file, line: line)
    for split in 1..<max(1, input.count) {
        var parser = RequestHeadParser(maxHeaderSize: maxHeader, maxBodySize: maxBody)
        var outcome = parse(input[0..<split], with: &parser)
        if outcome == .needMore {
            outcome = parse(input[...], with: &parser)
        }
        if outcome != whole {
            XCTFail("split at \(split): \(outcome) != whole \(whole)", file: file, line: line)
            break
        }
    }
    return whole
}

/// Parses a valid head every way and returns it, failing the test otherwise.
func parseHead(
    _ text: String, maxHeader: Int = defaultMaxHeader, maxBody: Int = defaultMaxBody,
    file: StaticString = #filePath, line: UInt = #line
) -> ParsedHead? {
    let outcome = parseEveryWay(latin1(text), maxHeader: maxHeader, maxBody: maxBody, file: file, line: line)
    guard let head = outcome.head else {
        XCTFail("expected a head, got \(outcome)", file: file, line: line)
        return nil
    }
    return head
}

/// Asserts that a head fails (every way) with this error and response version.
func assertFailure(
    _ text: String, _ error: RequestError, version: HTTPVersion = .http11,
    maxHeader: Int = defaultMaxHeader, maxBody: Int = defaultMaxBody,
    file: StaticString = #filePath, line: UInt = #line
) {
    let outcome = parseEveryWay(latin1(text), maxHeader: maxHeader, maxBody: maxBody, file: file, line: line)
    XCTAssertEqual(outcome, .failure(error, version), file: file, line: line)
}

func badRequest(_ message: String) -> RequestError { .badRequest(message) }
