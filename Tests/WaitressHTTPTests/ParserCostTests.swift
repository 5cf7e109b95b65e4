import Foundation
import XCTest

@testable import WaitressHTTP

/// One request head, however it is shaped or split, must cost the event loop
/// time and memory in proportion to its size: a head within the default
/// `max_request_header_size` (256 KiB) must never stall every connection.
/// The bounds are generous (debug build, busy machine): a linear parser meets
/// them with a wide margin, a quadratic one misses them by far.
final class ParserCostTests: XCTestCase {
    let limit = 262_144

    private func seconds(_ body: () -> Void) -> Double {
        let start = Date()
        body()
        return Date().timeIntervalSince(start)
    }

    func testManyDistinctFieldNamesParseInLinearTime() throws {
        var text = "GET / HTTP/1.1\r\n"
        let letters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        outer: for a in letters {
            for b in letters {
                for c in letters {
                    for d in letters {
                        text += "\(a)\(b)\(c)\(d):\r\n"
                        if text.utf8.count > limit - 100 { break outer }
                    }
                }
            }
        }
        text += "\r\n"
        var outcome = Outcome.needMore
        let elapsed = seconds { outcome = parseWhole(latin1(text), maxHeader: limit) }
        XCTAssertGreaterThan(outcome.head?.fields.count ?? 0, 30_000)
        XCTAssertLessThan(elapsed, 5, "one 256 KiB head took \(elapsed) s")
    }

    func testRepeatedFieldJoinsUseLinearMemory() throws {
        let repeats = 1000
        let text = "GET / HTTP/1.1\r\n" + String(repeating: "X:a\r\n", count: repeats) + "\r\n"
        let head = try XCTUnwrap(parseWhole(latin1(text)).head)
        XCTAssertEqual(head.fields.count, 1)
        let expected = Array(repeating: "a", count: repeats).joined(separator: ", ")
        XCTAssertEqual(head.fields.first, "X: " + expected)
        let result = latin1(text).withUnsafeBytes {
            var parser = RequestHeadParser(maxHeaderSize: limit, maxBodySize: defaultMaxBody)
            return parser.parse($0)
        }
        guard case .head(let raw, _) = result else { return XCTFail("\(result)") }
        XCTAssertLessThan(raw.storage.count, 4 * text.utf8.count, "storage of a \(text.utf8.count)-byte head")
    }

    func testRepeatedFieldFillingTheHeadLimitParsesQuickly() throws {
        let repeats = (limit - 100) / 5
        let text = "GET / HTTP/1.1\r\n" + String(repeating: "X:a\r\n", count: repeats) + "\r\n"
        var outcome = Outcome.needMore
        let elapsed = seconds { outcome = parseWhole(latin1(text), maxHeader: limit) }
        XCTAssertEqual(outcome.head?.fields.count, 1)
        XCTAssertLessThan(elapsed, 5, "one 256 KiB head took \(elapsed) s")
    }

    func testLeadingBlankLinesArrivingInPiecesCostLinearTime() throws {
        let limit = 65_536
        var parser = RequestHeadParser(maxHeaderSize: limit, maxBodySize: defaultMaxBody)
        var buffer: [UInt8] = []
        buffer.reserveCapacity(limit + 2)
        var result = RequestHeadParser.Result.needMore
        let elapsed = seconds {
            while case .needMore = result {
                buffer += [13, 10]
                result = buffer.withUnsafeBytes { parser.parse($0) }
            }
        }
        XCTAssertEqual(Outcome(result), .failure(.headerFieldsTooLarge(limit: limit), .http10))
        XCTAssertLessThan(elapsed, 2, "\(limit / 2) reads of one blank line took \(elapsed) s")
    }
}
