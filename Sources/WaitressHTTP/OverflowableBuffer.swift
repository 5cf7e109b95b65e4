#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A request body: in memory up to `overflow` bytes, then in an anonymous
/// temporary file (Waitress's OverflowableBuffer and `inbuf_overflow`), so a
/// large upload costs disk, not memory.
public final class OverflowableBuffer {
    public enum Contents: Sendable {
        case memory([UInt8])
        /// An unlinked temporary file holding `length` bytes, positioned at 0.
        /// The receiver of this value owns the descriptor.
        case file(descriptor: Int32, length: Int)
    }

    public let overflow: Int
    private var memory: [UInt8] = []
    private var descriptor: Int32 = -1
    public private(set) var count = 0

    public init(overflow: Int) {
        self.overflow = overflow
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    public enum SpillError: Error { case io(Int32) }

    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        if bytes.isEmpty { return }
        if descriptor < 0 && count + bytes.count <= overflow {
            memory.append(contentsOf: bytes)
            count += bytes.count
            return
        }
        if descriptor < 0 {
            descriptor = try Self.makeTemporaryFile()
            try memory.withUnsafeBytes { try Self.writeAll(descriptor, $0) }
            memory = []
        }
        try Self.writeAll(descriptor, bytes)
        count += bytes.count
    }

    /// Hands the contents over, leaving the buffer empty.
    public func take() -> Contents {
        defer {
            memory = []
            descriptor = -1
            count = 0
        }
        if descriptor >= 0 {
            lseek(descriptor, 0, SEEK_SET)
            return .file(descriptor: descriptor, length: count)
        }
        return .memory(memory)
    }

    /// Where temporary files go: $TMPDIR, else /tmp.
    public static var temporaryDirectory: String {
        if let tmp = getenv("TMPDIR"), tmp.pointee != 0 { return String(cString: tmp) }
        return "/tmp"
    }

    /// An unlinked temporary file in $TMPDIR (or /tmp), open for reading and writing.
    public static func makeTemporaryFile() throws -> Int32 {
        let directory = temporaryDirectory
        var template = Array("\(directory)/waitress-body-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw SpillError.io(errno) }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        return fd
    }

    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw SpillError.io(errno)
            }
            offset += written
        }
    }
}

extension RequestError {
    /// The error for a body that could not be appended to its buffer.
    public init(spilling error: Error) {
        if case OverflowableBuffer.SpillError.io(let code) = error {
            self = .storageFailure(errno: code)
        } else {
            self = .storageFailure(errno: 0)
        }
    }
}
