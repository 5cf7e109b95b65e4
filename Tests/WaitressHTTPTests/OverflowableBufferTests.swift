#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import XCTest

@testable import WaitressHTTP

/// Waitress's OverflowableBuffer and `inbuf_overflow`: memory up to the
/// overflow, then an unlinked temporary file.
final class OverflowableBufferTests: XCTestCase {
    private func append(_ buffer: OverflowableBuffer, _ text: String) throws {
        try latin1(text).withUnsafeBytes { try buffer.append($0) }
    }

    func testStaysInMemoryUpToTheOverflow() throws {
        let buffer = OverflowableBuffer(overflow: 10)
        try append(buffer, "01234")
        try append(buffer, "")
        try append(buffer, "56789")
        XCTAssertEqual(buffer.count, 10)
        guard case .memory(let bytes) = buffer.take() else { return XCTFail("spilled at the overflow itself") }
        XCTAssertEqual(bytes, latin1("0123456789"))
        // take() leaves it empty.
        XCTAssertEqual(buffer.count, 0)
        guard case .memory(let empty) = buffer.take() else { return XCTFail() }
        XCTAssertEqual(empty, [])
    }

    func testSpillsPastTheOverflow() throws {
        let buffer = OverflowableBuffer(overflow: 10)
        try append(buffer, "0123456789")
        try append(buffer, "a")
        try append(buffer, "bcdef")
        XCTAssertEqual(buffer.count, 16)
        guard case .file(let descriptor, let length) = buffer.take() else { return XCTFail("did not spill") }
        defer { close(descriptor) }
        XCTAssertEqual(length, 16)
        // Positioned at the start, holding exactly the input.
        var bytes = [UInt8](repeating: 0, count: 64)
        let n = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, 64) }
        XCTAssertEqual(n, 16)
        XCTAssertEqual(Array(bytes[0..<16]), latin1("0123456789abcdef"))
        XCTAssertEqual(buffer.count, 0)
    }

    func testSpillsOnASingleLargeAppend() throws {
        let buffer = OverflowableBuffer(overflow: 4)
        let input = Array(0...255).map { UInt8($0) }
        try input.withUnsafeBytes { try buffer.append($0) }
        XCTAssertEqual(contents(of: buffer), input)
    }

    func testLargeInputReadsBackIntact() throws {
        let buffer = OverflowableBuffer(overflow: 65_536)
        var expected: [UInt8] = []
        var seed: UInt32 = 12345
        var sizes = [1, 7, 4096, 65_535, 3, 100_000, 1, 12_345]
        while !sizes.isEmpty {
            let size = sizes.removeFirst()
            var piece = [UInt8](repeating: 0, count: size)
            for i in 0..<size {
                seed = seed &* 1_103_515_245 &+ 12345
                piece[i] = UInt8(truncatingIfNeeded: seed >> 16)
            }
            try piece.withUnsafeBytes { try buffer.append($0) }
            expected += piece
        }
        XCTAssertEqual(buffer.count, expected.count)
        let readBack = contents(of: buffer)
        XCTAssertEqual(readBack.count, expected.count)
        XCTAssertTrue(readBack == expected, "spilled contents differ from the input")
    }

    func testTemporaryFileIsUnlinked() throws {
        let buffer = OverflowableBuffer(overflow: 0)
        try append(buffer, "x")
        guard case .file(let descriptor, _) = buffer.take() else { return XCTFail("did not spill") }
        defer { close(descriptor) }
        var status = stat()
        XCTAssertEqual(fstat(descriptor, &status), 0)
        XCTAssertEqual(status.st_nlink, 0, "the body file must not stay in the temp directory")
    }

    func testBufferIsReusableAfterTake() throws {
        let buffer = OverflowableBuffer(overflow: 3)
        try append(buffer, "abcdef")
        XCTAssertEqual(contents(of: buffer), latin1("abcdef"))
        try append(buffer, "xy")
        guard case .memory(let bytes) = buffer.take() else { return XCTFail("a fresh body should start in memory") }
        XCTAssertEqual(bytes, latin1("xy"))
    }

    private func emptySpillFiles() throws {
        while SpillFiles.keptCount > 0 { close(try SpillFiles.take().descriptor) }
    }

    private func readToEnd(_ fd: Int32) -> [UInt8] {
        var result: [UInt8] = []
        var piece = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = piece.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n <= 0 { return result }
            result += piece[0..<n]
        }
    }

    func testAGivenBackSpillFileServesTheNextBodyAtItsOwnLength() throws {
        try emptySpillFiles()
        let first = OverflowableBuffer(overflow: 2)
        try append(first, "a longer first body")
        guard case .file(let descriptor, let length) = first.take() else { return XCTFail("did not spill") }
        XCTAssertEqual(length, 19)
        SpillFiles.give(descriptor)
        let second = OverflowableBuffer(overflow: 2)
        try append(second, "short")
        guard case .file(let again, let secondLength) = second.take() else { return XCTFail("did not spill") }
        defer { close(again) }
        XCTAssertEqual(again, descriptor, "the kept file was not reused")
        XCTAssertEqual(secondLength, 5)
        // Read to the file's end: the first body's tail is gone.
        XCTAssertEqual(readToEnd(again), latin1("short"))
    }

    func testAFileLeftLongerByAFailedBodyIsCutForTheNext() throws {
        try emptySpillFiles()
        // A body that stopped part-way (its count is not the file's size).
        let (descriptor, _) = try SpillFiles.take()
        try latin1("left over from a body that failed").withUnsafeBytes { try OverflowableBuffer.writeAll(descriptor, $0) }
        SpillFiles.give(descriptor)
        let next = OverflowableBuffer(overflow: 2)
        try append(next, "next one")
        XCTAssertEqual(contents(of: next), latin1("next one"))
    }

    func testABodyKnownToPassTheOverflowGoesStraightToItsFile() throws {
        let buffer = OverflowableBuffer(overflow: 100, expected: 101)
        try append(buffer, "tiny")
        guard case .file(let descriptor, let length) = buffer.take() else { return XCTFail("kept in memory") }
        defer { close(descriptor) }
        XCTAssertEqual(length, 4)
    }

    func testSpillFilesKeepsABoundedNumberOfSmallFiles() throws {
        try emptySpillFiles()
        func isOpen(_ fd: Int32) -> Bool { fcntl(fd, F_GETFD) != -1 }
        var given: [Int32] = []
        while SpillFiles.keptCount < SpillFiles.capacity {
            let fd = try OverflowableBuffer.makeTemporaryFile()
            SpillFiles.give(fd)
            given.append(fd)
        }
        let oneTooMany = try OverflowableBuffer.makeTemporaryFile()
        SpillFiles.give(oneTooMany)
        XCTAssertFalse(isOpen(oneTooMany), "a file past the capacity was kept")
        XCTAssertEqual(SpillFiles.keptCount, SpillFiles.capacity)
        // Emptied again; a file larger than largestKept is closed even with room to keep it.
        while SpillFiles.keptCount > 0 { close(try SpillFiles.take().descriptor) }
        let large = try OverflowableBuffer.makeTemporaryFile()
        XCTAssertEqual(ftruncate(large, off_t(SpillFiles.largestKept + 1)), 0)
        SpillFiles.give(large)
        XCTAssertFalse(isOpen(large), "a file above largestKept was kept")
        XCTAssertEqual(SpillFiles.keptCount, 0)
        XCTAssertTrue(given.allSatisfy { !isOpen($0) })
        // Kept files are close-on-exec: a child process does not inherit them.
        let fd = try OverflowableBuffer.makeTemporaryFile()
        defer { close(fd) }
        XCTAssertEqual(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC)
    }
}
