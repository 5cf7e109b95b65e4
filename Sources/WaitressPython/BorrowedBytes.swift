@preconcurrency import CPython
import Atomics
import NIOConcurrencyHelpers
@_spi(CustomByteBufferAllocator) import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Large body items go to the connection without a copy: the `ByteBuffer`
/// handed to the event loop is the bytes object's own memory, and the object
/// is held (one reference) until NIO lets go of the buffer.
///
/// A copy of a 1 MiB item cost a fresh 1 MiB buffer per response: the copy
/// itself, and 256 page faults, because such a buffer is allocated on a
/// worker and freed on the event loop (measured: 94% of the server's page
/// faults on a 1 MiB echo).
///
/// NIO frees the buffer on the event loop, without the GIL, so the reference
/// cannot be dropped there: the object goes to a list that is emptied under
/// the GIL, after each task and on the engine's 100 ms round. The buffer's
/// memory is never written: its writer index is at its end, so a write into
/// it would grow it, and growing copies it into memory of its own (below).
enum BorrowedBytes {
    /// Items at least this big are borrowed; smaller ones are cheaper to copy
    /// next to the head than to send as a buffer of their own.
    static let threshold = 32_768

    private static let lock = NIOLock()
    /// Data pointers of the borrowed objects NIO holds, with how many buffers
    /// hold each (an app may answer every request with one same object): how
    /// `release` tells a borrowed buffer from memory the allocator made itself.
    nonisolated(unsafe) private static var lent: [UnsafeMutableRawPointer: Int] = [:]
    /// Objects NIO let go of, waiting for the GIL.
    nonisolated(unsafe) private static var released: [PyPtr] = []
    private static let releasedCount = ManagedAtomic<Int>(0)

    private static let allocator = ByteBufferAllocator(
        allocate: { malloc($0) },
        reallocate: { pointer, oldSize, newSize in BorrowedBytes.reallocate(pointer, oldSize, newSize) },
        deallocate: { BorrowedBytes.release($0) },
        copy: { destination, source, count in destination.copyMemory(from: source, byteCount: count) }
    )

    /// A buffer over `count` bytes of `object`'s data (GIL held; `object`
    /// is a bytes object and gains a reference, given back by `drain`).
    static func buffer(_ object: PyPtr, count: Int) -> ByteBuffer {
        let data = UnsafeMutableRawPointer(wp_bytes_data(object)!)
        wp_incref(object)
        lock.withLockVoid { lent[data, default: 0] += 1 }
        return ByteBuffer(
            takingOwnershipOf: UnsafeMutableRawBufferPointer(start: data, count: count), allocator: allocator)
    }

    private static func release(_ pointer: UnsafeMutableRawPointer) {
        let borrowed = lock.withLock { () -> Bool in
            guard let holders = lent[pointer] else { return false }
            lent[pointer] = holders > 1 ? holders - 1 : nil
            released.append(wp_bytes_owner(pointer))
            releasedCount.wrappingIncrement(ordering: .relaxed)
            return true
        }
        if !borrowed { free(pointer) }
    }

    /// Growing a borrowed buffer moves it into malloc'd memory (the object
    /// is released); memory made here grows with realloc.
    private static func reallocate(
        _ pointer: UnsafeMutableRawPointer?, _ oldSize: Int, _ newSize: Int
    ) -> UnsafeMutableRawPointer? {
        guard let pointer = pointer, lock.withLock({ lent[pointer] != nil }) else {
            return realloc(pointer, newSize)
        }
        guard let moved = malloc(newSize) else { return nil }
        moved.copyMemory(from: pointer, byteCount: min(oldSize, newSize))
        release(pointer)
        return moved
    }

    /// Whether objects are waiting for `drain` (a relaxed read: one seen
    /// late is taken by the next call).
    static var hasReleased: Bool { releasedCount.load(ordering: .relaxed) > 0 }

    /// Drops the references of the objects NIO let go of (GIL held).
    static func drain() {
        let objects = lock.withLock { () -> [PyPtr] in
            releasedCount.store(0, ordering: .relaxed)
            defer { released = [] }
            return released
        }
        for object in objects { wp_decref(object) }
    }
}
