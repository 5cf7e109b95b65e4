import Atomics
import NIOCore
import WaitressHTTP

#if canImport(Glibc)
import Glibc
#endif

/// An open file whose regions are sent with sendfile (NIO FileRegion), or read
/// in pieces on a secure connection (FileRead.swift): a file given to
/// wsgi.file_wrapper (a duplicate of its descriptor) or a response's spill
/// file. Closed when the last region referencing it has been written.
public final class SharedFile: @unchecked Sendable {
    let handle: NIOFileHandle
    /// The raw descriptor, for the worker appending to a spill file while the
    /// event loop may be sending an earlier region through `handle` (which
    /// allows one user at a time).
    private let descriptor: Int32

    /// Takes ownership of `descriptor`.
    public init(descriptor: Int32) {
        self.descriptor = descriptor
        handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor)
    }

    deinit {
        try? handle.close()
    }

    /// Runs `body` with the raw descriptor (to write a spill file).
    public func withDescriptor<R>(_ body: (Int32) throws -> R) rethrows -> R {
        try body(descriptor)
    }
}

/// What a worker thread holds of a connection: it sends response parts to the
/// event loop (through the Outbox) and waits, off the event loop, while too
/// much output is pending. Workers never touch the NIO channel itself.
///
/// Two counts bound a response's pending output (Waitress's outbufs):
/// `pendingMemory`, bytes held in memory (the worker spills to a temporary
/// file past `outbuf_overflow`), and `pendingTotal`, memory plus spilled bytes
/// (the worker waits past `outbuf_high_watermark`). Regions of an app's own
/// file (wsgi.file_wrapper) count in neither: they cost no memory.
public final class ResponseChannel: @unchecked Sendable {
    public enum Part {
        /// Body (or head) bytes; more parts follow.
        case data(ByteBuffer)
        /// A region of a file, sent with sendfile (read in pieces on a
        /// secure connection); `spilled` when it is
        /// response output that was written to a spill file.
        case file(SharedFile, offset: Int, length: Int, spilled: Bool)
        /// Bytes the response's end follows at once (sent in the same batch):
        /// written like the end's own bytes, outside the pending counts, which
        /// only bound what a worker may still wait on.
        case tail(ByteBuffer)
        /// The end of the response, optionally with its last bytes; `close`
        /// asks for the connection to be closed once everything is flushed.
        case end(ByteBuffer?, close: Bool)

        /// Bytes this part puts on the wire.
        var byteCount: Int {
            switch self {
            case .data(let buffer), .tail(let buffer): return buffer.readableBytes
            case .file(_, _, let length, _): return length
            case .end(let buffer, _): return buffer?.readableBytes ?? 0
            }
        }
    }

    let handler: ConnectionHandler
    let outbox: Outbox
    /// The server's metrics, nil unless metrics_listen is set.
    public var metrics: ServerMetrics? { handler.core.metrics }
    /// The four counters and flags shared with the worker, in one allocation
    /// made per connection (four `ManagedAtomic`s were four objects): pending
    /// memory, pending total, open (1 or 0), peer closed (1 or 0).
    private let words = UnsafeMutablePointer<Int.AtomicRepresentation>.allocate(capacity: 4)
    private var pendingMemoryCount: UnsafeAtomic<Int> { UnsafeAtomic(at: words) }
    private var pendingTotalCount: UnsafeAtomic<Int> { UnsafeAtomic(at: words + 1) }
    private var isOpenFlag: UnsafeAtomic<Int> { UnsafeAtomic(at: words + 2) }
    private var peerClosedFlag: UnsafeAtomic<Int> { UnsafeAtomic(at: words + 3) }
    let gate = Gate()
    public let highWatermark: Int
    public let overflow: Int
    /// REMOTE_ADDR (numeric host, bare IPv6) and REMOTE_PORT, as Waitress sets
    /// them ("localhost" and "None" on a Unix socket).
    public let remoteHost: String
    public let remotePort: String
    public let remoteHostBytes: [UInt8]
    public let remotePortBytes: [UInt8]
    /// Set by the worker before it ends a response (AccessLog.swift).
    var accessNote: AccessLogNote?
    /// The server's access log, held here so that a worker noting a response
    /// reads no chain of references.
    let accessLog: AccessLog?
    /// Whether the server keeps an access log or metrics (workers note
    /// responses only then).
    public let notesResponses: Bool
    /// What the security layer said of the connection (`ConnectionSecured`),
    /// set on the event loop before its first request is dispatched; empty on
    /// a plain connection.
    public internal(set) var securityVariables: [(name: String, value: String)] = []

    init(handler: ConnectionHandler, outbox: Outbox, highWatermark: Int, overflow: Int, remoteHost: String, remotePort: String) {
        self.handler = handler
        self.outbox = outbox
        self.highWatermark = highWatermark
        self.overflow = overflow
        self.remoteHost = remoteHost
        self.remotePort = remotePort
        self.remoteHostBytes = Array(remoteHost.utf8)
        self.remotePortBytes = Array(remotePort.utf8)
        self.accessLog = handler.core.accessLog
        self.notesResponses = handler.core.recordsResponses
        words.initialize(repeating: Int.AtomicRepresentation(0), count: 4)
        words[2] = Int.AtomicRepresentation(1)  // open
    }

    deinit {
        words.deinitialize(count: 4)
        words.deallocate()
    }

    public var isOpen: Bool { isOpenFlag.load(ordering: .relaxed) != 0 }
    /// Whether the client is gone: the connection closed, or the client shut
    /// down its sending side while its request was in service (Waitress's
    /// `waitress.client_disconnected`). Output is still written in the latter
    /// case, for clients that half-close after sending a request.
    public var clientDisconnected: Bool { !isOpen || peerClosedFlag.load(ordering: .relaxed) != 0 }
    /// The server is draining (stopping): a response head written now says
    /// `Connection: close`, so a keep-alive client sends its next request
    /// elsewhere instead of meeting a closed connection.
    public var serverDraining: Bool { handler.core.drainingFlag.load(ordering: .relaxed) }
    public var pendingMemory: Int { pendingMemoryCount.load(ordering: .relaxed) }
    public var pendingTotal: Int { pendingTotalCount.load(ordering: .relaxed) }

    /// Sends a part to the event loop; safe from any thread.
    public func send(_ part: Part) {
        account(part)
        outbox.post(handler, part)
    }

    /// Sends `tails` and then the response's `end` in one batch (one wake-up
    /// of the event loop at most); safe from any thread.
    public func send(tails: [ByteBuffer], then end: Part) {
        var batch = tails.map { (handler, Part.tail($0)) }
        batch.append((handler, end))
        outbox.postAll(batch)
    }

    private func account(_ part: Part) {
        switch part {
        case .data(let buffer):
            pendingMemoryCount.wrappingIncrement(by: buffer.readableBytes, ordering: .relaxed)
            pendingTotalCount.wrappingIncrement(by: buffer.readableBytes, ordering: .relaxed)
        case .file(_, _, let length, let spilled):
            if spilled { pendingTotalCount.wrappingIncrement(by: length, ordering: .relaxed) }
        case .tail, .end:
            break
        }
    }

    /// Whether the worker may go on without waiting: the connection is open
    /// and not more than `highWatermark` bytes are pending.
    public func waitForRoomWithoutBlocking() -> Bool {
        pendingTotal <= highWatermark && isOpen
    }

    /// Blocks the calling worker while more than `highWatermark` bytes are
    /// pending and the connection is open (Waitress's outbuf_high_watermark).
    /// Returns whether the connection is still open.
    public func waitForRoom() -> Bool {
        if pendingTotal <= highWatermark { return isOpen }
        gate.lock()
        while pendingTotal > highWatermark && isOpen {
            gate.wait(seconds: 1)
        }
        gate.unlock()
        return isOpen
    }

    /// Called on the event loop when bytes reached the kernel (or were dropped).
    func drained(memory: Int, total: Int) {
        if memory > 0 { pendingMemoryCount.wrappingDecrement(by: memory, ordering: .relaxed) }
        let before = pendingTotalCount.loadThenWrappingDecrement(by: total, ordering: .relaxed)
        if before > highWatermark && before - total <= highWatermark {
            gate.withLock { gate.broadcast() }
        }
    }

    func markPeerClosed() {
        peerClosedFlag.store(1, ordering: .relaxed)
    }

    func markClosed() {
        isOpenFlag.store(0, ordering: .relaxed)
        gate.withLock { gate.broadcast() }
    }
}
