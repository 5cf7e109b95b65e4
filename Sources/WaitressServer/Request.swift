#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore
import WaitressHTTP

/// A complete request (head and whole body) handed to the worker pool.
public final class Request: @unchecked Sendable {
    public let head: RequestHead
    /// The de-chunked body: bytes in memory, or an unlinked temporary file
    /// owned by this request (given back to `SpillFiles` when the request
    /// goes, so whatever reads it must be done by then).
    public let body: OverflowableBuffer.Contents
    public let bodyLength: Int
    public let connection: ResponseChannel
    public let listener: ListenerSpec
    /// When the request was queued for a worker (monotonic seconds; set only
    /// when metrics are kept, for the queue-wait histogram).
    public internal(set) var dispatchedAt = 0.0
    /// The event loop of the connection (for timers a dispatcher may need).
    public var eventLoop: EventLoop { connection.handler.eventLoop }

    init(head: RequestHead, body: OverflowableBuffer.Contents, bodyLength: Int, connection: ResponseChannel, listener: ListenerSpec) {
        self.head = head
        self.body = body
        self.bodyLength = bodyLength
        self.connection = connection
        self.listener = listener
    }

    /// Set when something may still read the body's file after this
    /// request (a response sends it with wsgi.file_wrapper, or the app's
    /// file object could not be closed): it is then closed, not reused.
    public var spillFileRetired = false

    deinit {
        guard case .file(let descriptor, _) = body else { return }
        if spillFileRetired { close(descriptor) } else { SpillFiles.give(descriptor) }
    }
}

/// Receives complete requests; called on the event loop, must not block.
public protocol RequestDispatcher: AnyObject, Sendable {
    func dispatch(_ request: Request)
}
