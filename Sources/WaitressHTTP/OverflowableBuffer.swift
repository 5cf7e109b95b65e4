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
    /// The size the spill file had when taken (a reused one keeps its old bytes).
    private var fileSize = 0
    public private(set) var count = 0

    /// `expected`: the body's length when the head gave it (Content-Length),
    /// else 0. A body known to pass `overflow` goes to its file from the
    /// first byte, instead of through memory first; one known to fit gets
    /// its memory at once (up to 64 KiB), instead of growing by doubling.
    public init(overflow: Int, expected: Int = 0) {
        self.overflow = overflow
        if expected > overflow {
            spillFromStart = true
        } else if expected > 0 {
            // Capped: a head alone should not make the server reserve much.
            memory.reserveCapacity(min(expected, 65_536))
        }
    }

    private var spillFromStart = false

    deinit {
        if descriptor >= 0 { SpillFiles.give(descriptor) }
    }

    public enum SpillError: Error { case io(Int32) }

    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        if bytes.isEmpty { return }
        if descriptor < 0 && !spillFromStart && count + bytes.count <= overflow {
            memory.append(contentsOf: bytes)
            count += bytes.count
            return
        }
        if descriptor < 0 {
            (descriptor, fileSize) = try SpillFiles.take()
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
            spillFromStart = false
        }
        if descriptor >= 0 {
            // A reused file ends where this body ends, as a new one would.
            // Should that fail, a fresh file gets the body (or the body is
            // lost with an error on read: never another body's bytes).
            if fileSize > count && ftruncate(descriptor, off_t(count)) != 0 {
                lseek(descriptor, 0, SEEK_SET)
                let copy = try? Self.copyToFreshFile(descriptor, count)
                close(descriptor)
                return .file(descriptor: copy ?? -1, length: count)
            }
            lseek(descriptor, 0, SEEK_SET)
            return .file(descriptor: descriptor, length: count)
        }
        return .memory(memory)
    }

    private static func copyToFreshFile(_ source: Int32, _ count: Int) throws -> Int32 {
        let fresh = try makeTemporaryFile()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var left = count
        while left > 0 {
            let n = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress!, min(left, $0.count)) }
            if n <= 0 {
                close(fresh)
                throw SpillError.io(n < 0 ? errno : EIO)
            }
            try buffer.withUnsafeBytes { try writeAll(fresh, UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            left -= n
        }
        lseek(fresh, 0, SEEK_SET)
        return fresh
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
        // Close-on-exec: kept files live as long as the process, and a child
        // it starts must not inherit them.
        // (mkostemp and O_CLOEXEC need _GNU_SOURCE, which this target does not set.)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw SpillError.io(errno) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
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

/// Request bodies' spill files, kept for the next body instead of closed.
///
/// Creating, filling and closing a temporary file per spilled body cost the
/// file system more than the copy into it (on ext4: the name's creation and
/// removal, block reservation for every new page, and the blocks' release
/// when the last descriptor closes; measured on a 1 MiB upload). A reused
/// file is overwritten in place. At most `capacity` files are kept, each
/// only if it holds at most `largestKept` bytes (a larger one is closed, so
/// the disk kept stays bounded); a file is kept only once nothing can read
/// it (the Python side closes its file object first), and it ends at its
/// new body's length when it is handed out again (`take` of Contents).
public enum SpillFiles {
    public static let capacity = 16
    public static let largestKept = 2 << 20

    private static let lock = PlainLock()
    nonisolated(unsafe) private static var kept: [(descriptor: Int32, size: Int)] = []

    /// A file for a new body, positioned at its start, and its current size.
    public static func take() throws -> (descriptor: Int32, size: Int) {
        if let file = lock.locked({ kept.popLast() }) {
            lseek(file.descriptor, 0, SEEK_SET)
            return file
        }
        return (try OverflowableBuffer.makeTemporaryFile(), 0)
    }

    /// Gives back a body's file (its size is read from the file itself: a
    /// write that failed half-way may have left more than was counted).
    public static func give(_ descriptor: Int32) {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            close(descriptor)
            return
        }
        let size = Int(info.st_size)
        let keep =
            size <= largestKept
            && lock.locked { () -> Bool in
                guard kept.count < capacity else { return false }
                kept.append((descriptor, size))
                return true
            }
        if !keep { close(descriptor) }
    }

    /// How many files are kept (for tests).
    public static var keptCount: Int { lock.locked { kept.count } }
}

/// A pthread mutex (this target has no NIO).
final class PlainLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init() { pthread_mutex_init(mutex, nil) }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
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
