import XCTest

@testable import WaitressHTTP

/// A Content-Length body: exactly that many bytes, whatever the reads.
final class FixedLengthReceiverTests: XCTestCase {
    func testReceivesExactlyTheLength() {
        let input = latin1("0123456789GET /next HTTP/1.1\r\n\r\n")
        let outcome = receiveEveryWay(input) { .fixed(FixedLengthReceiver(length: 10)) }
        XCTAssertEqual(outcome, .received(Received(body: latin1("0123456789"), consumed: 10, complete: true)))
    }

    func testIncompleteBodyWaits() throws {
        var receiver = FixedLengthReceiver(length: 10)
        let sink = OverflowableBuffer(overflow: 100)
        XCTAssertFalse(receiver.isComplete)
        XCTAssertEqual(try latin1("0123").withUnsafeBytes { try receiver.receive($0, into: sink) }, 4)
        XCTAssertEqual(receiver.remaining, 6)
        XCTAssertFalse(receiver.isComplete)
        XCTAssertEqual(try [UInt8]().withUnsafeBytes { try receiver.receive($0, into: sink) }, 0)
        XCTAssertEqual(try latin1("456789abc").withUnsafeBytes { try receiver.receive($0, into: sink) }, 6)
        XCTAssertTrue(receiver.isComplete)
        XCTAssertEqual(try latin1("more").withUnsafeBytes { try receiver.receive($0, into: sink) }, 0)
        XCTAssertEqual(sink.count, 10)
        XCTAssertEqual(contents(of: sink), latin1("0123456789"))
    }

    func testZeroLengthIsCompleteAtOnce() {
        let receiver = BodyReceiver.fixed(FixedLengthReceiver(length: 0))
        XCTAssertTrue(receiver.isComplete)
    }

    func testLargeBodySpillsToAFileIntact() {
        let input = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
        for boundaries in [[], Array(stride(from: 0, to: input.count, by: 4093))] {
            let outcome = receive(input, boundaries: boundaries, overflow: 1000) {
                .fixed(FixedLengthReceiver(length: input.count))
            }
            XCTAssertEqual(outcome, .received(Received(body: input, consumed: input.count, complete: true)))
        }
    }
}
