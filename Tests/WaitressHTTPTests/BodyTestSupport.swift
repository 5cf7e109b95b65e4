#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import XCTest

@testable import WaitressHTTP

/// What a body receiver made of an input: the bytes it buffered, how many
/// input bytes it consumed, whether it finished; or the error it threw.
struct Received: Equatable {
    var body: [UInt8]
    var consumed: Int
    var complete: Bool
}

enum ReceiveOutcome: Equatable {
    case received(Received)
    case failed(RequestError)
}

/// Reads all of an OverflowableBuffer's contents back, closing a spilled file.
func contents(of buffer: OverflowableBuffer) -> [UInt8] {
    switch buffer.take() {
    case .memory(let bytes):
        return bytes
    case .file(let descriptor, let length):
        defer { close(descriptor) }
        var result = [UInt8](repeating: 0, count: length)
        var offset = 0
        while offset < length {
            let n = result.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + offset, length - offset) }
            if n <= 0 { break }
            offset += n
        }
        // The file holds exactly `length` bytes.
        var extra: UInt8 = 0
        XCTAssertEqual(read(descriptor, &extra, 1), 0, "spilled file is longer than its length")
        return Array(result[0..<offset])
    }
}

/// Feeds `input` to a body receiver the way the connection does: each call
/// gets the bytes not consumed yet, up to the next boundary (the last boundary
/// is the end of the input). Stops at the first error or when complete.
func receive(
    _ input: [UInt8], boundaries: [Int], overflow: Int = 1 << 20,
    makeReceiver: () -> BodyReceiver
) -> ReceiveOutcome {
    var receiver = makeReceiver()
    let sink = OverflowableBuffer(overflow: overflow)
    var consumed = 0
    for available in boundaries + [input.count] where available >= consumed {
        do {
            consumed += try input[consumed..<available].withUnsafeBytes { try receiver.receive($0, into: sink) }
        } catch let error as RequestError {
            return .failed(error)
        } catch {
            return .failed(.badRequest("unexpected error type: \(error)"))
        }
        if receiver.isComplete { break }
    }
    return .received(Received(body: contents(of: sink), consumed: consumed, complete: receiver.isComplete))
}

/// Receives `input` whole, one byte per read, and split in two at every
/// boundary; asserts every way gives the whole-input outcome and returns it.
@discardableResult
func receiveEveryWay(
    _ input: [UInt8], file: StaticString = #filePath, line: UInt = #line,
    makeReceiver: () -> BodyReceiver
) -> ReceiveOutcome {
    let whole = receive(input, boundaries: [], makeReceiver: makeReceiver)
    let byteByByte = receive(input, boundaries: Array(0..<input.count), makeReceiver: makeReceiver)
    XCTAssertEqual(byteByByte, whole, "one byte per read", file: file, line: line)
    for split in 0..<input.count {
        let outcome = receive(input, boundaries: [split], makeReceiver: makeReceiver)
        if outcome != whole {
            XCTFail("split at \(split): \(outcome) != whole \(whole)", file: file, line: line)
            break
        }
    }
    return whole
}
