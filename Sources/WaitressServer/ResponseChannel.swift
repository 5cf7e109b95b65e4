import Atomics
import NIOCore
import WaitressHTTP

/// What a worker thread holds of a connection: it sends response parts to the
/// event loop (through the Outbox) and waits, off the event loop, while too
/// much output is pending. Workers never touch the NIO channel itself.
public final class ResponseChannel: @unchecked Sendable {
    public enum Part {
        /// Body (or head) bytes; more parts follow.
        case data(ByteBuffer)
        /// The end of the response, optionally with its last bytes; `close`
        /// asks for the connection to be closed once everything is flushed.
        case end(ByteBuffer?, close: Bool)
    }

    let handler: ConnectionHandler
    let outbox: Outbox
    /// Bytes sent by the worker that have not reached the kernel yet.
    let pendingBytes = ManagedAtomic<Int>(0)
    let isOpenFlag = ManagedAtomic<Bool>(true)
    let gate = Gate()
    public let highWatermark: Int
    /// REMOTE_ADDR (numeric host, bare IPv6) and REMOTE_PORT, as Waitress sets
    /// them ("localhost" and "None" on a Unix socket).
    public let remoteHost: String
    public let remotePort: String

    init(handler: ConnectionHandler, outbox: Outbox, highWatermark: Int, remoteHost: String, remotePort: String) {
        self.handler = handler
        self.outbox = outbox
        self.highWatermark = highWatermark
        self.remoteHost = remoteHost
        self.remotePort = remotePort
    }

    public var isOpen: Bool { isOpenFlag.load(ordering: .relaxed) }

    /// Sends a part to the event loop; safe from any thread.
    public func send(_ part: Part) {
        if case .data(let buffer) = part {
            pendingBytes.wrappingIncrement(by: buffer.readableBytes, ordering: .relaxed)
        }
        outbox.post(handler, part)
    }

    /// Whether the worker may go on without waiting: the connection is open
    /// and not more than `highWatermark` bytes are pending.
    public func waitForRoomWithoutBlocking() -> Bool {
        pendingBytes.load(ordering: .relaxed) <= highWatermark && isOpen
    }

    /// Blocks the calling worker while more than `highWatermark` bytes are
    /// pending and the connection is open (Waitress's outbuf_high_watermark).
    /// Returns whether the connection is still open.
    public func waitForRoom() -> Bool {
        if pendingBytes.load(ordering: .relaxed) <= highWatermark { return isOpen }
        gate.lock()
        while pendingBytes.load(ordering: .relaxed) > highWatermark && isOpen {
            gate.wait(seconds: 1)
        }
        gate.unlock()
        return isOpen
    }

    /// Called on the event loop when bytes reached the kernel.
    func drained(_ count: Int) {
        let before = pendingBytes.loadThenWrappingDecrement(by: count, ordering: .relaxed)
        if before > highWatermark && before - count <= highWatermark {
            gate.withLock { gate.broadcast() }
        }
    }

    func markClosed() {
        isOpenFlag.store(false, ordering: .relaxed)
        gate.withLock { gate.broadcast() }
    }
}
