#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import WaitressHTTP

/// One client connection on the channel: carries out what its
/// `ConnectionStateMachine` decides (the rules are there: one request in
/// service at a time, read-ahead, 100-continue, half-close, lingering after
/// an error, the drain). This class does the I/O: reading on and off, writes
/// and flushes, dispatching to the workers, closing, the linger timer, file
/// regions, the access log and metrics.
///
/// Reading stays on between requests (re-arming read interest per request
/// costs two epoll_ctl calls); it is turned off only past the read-ahead limit.
final class ConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = IOData

    let core: ServerCore
    let listener: ListenerSpec
    private var context: ChannelHandlerContext?
    private(set) var machine: ConnectionStateMachine
    /// File regions written and not yet completed (they count in no pending
    /// total; the access log and metrics wait for them).
    private(set) var filesInFlight = 0
    /// The current request's method and head, for the access log (AccessLog.swift).
    var accessLogTracker = AccessLogTracker()
    /// Reads are `ChildChannelOptions.bodyReadSize` while at least that much
    /// of a Content-Length body is still to come, else the adaptive size.
    private var bodyReads = false
    /// Set from handlerAdded to handlerRemoved. The ResponseChannel holds this
    /// handler (workers post to it), and the context holds it too, so both
    /// links from here are dropped when NIO removes the handler: otherwise
    /// every connection's handler, context, pipeline and response channel
    /// stay in memory for good (about 1.1 KB a connection).
    private(set) var responseChannel: ResponseChannel!

    /// Set once the handler is added; the loop never changes.
    private(set) var eventLoop: EventLoop!
    /// The file region being read in pieces on a secure connection, and the
    /// parts that came after it, written once it is out (FileRead.swift).
    var fileRead: FileRead?
    var partsAfterFile = CircularBuffer<ResponseChannel.Part>()

    init(core: ServerCore, listener: ListenerSpec) {
        self.core = core
        self.listener = listener
        let configuration = core.configuration
        self.machine = ConnectionStateMachine(
            limits: .init(
                maxHeaderSize: configuration.maxRequestHeaderSize, maxBodySize: configuration.maxRequestBodySize,
                inbufOverflow: configuration.inbufOverflow, readAheadLimit: core.readAheadLimit),
            now: monotonicSeconds())
    }

    // MARK: channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.eventLoop = context.eventLoop
        var host = "localhost"
        var port = "None"
        if !listener.isUnix, let address = context.channel.remoteAddress {
            host = Self.numericHost(address) ?? host
            port = address.port.map(String.init) ?? port
        }
        responseChannel = ResponseChannel(
            handler: self, outbox: core.outbox, highWatermark: core.configuration.outbufHighWatermark,
            overflow: core.configuration.outbufOverflow, remoteHost: host, remotePort: port)
    }

    /// The numeric host of an accepted connection's peer. NIO already formatted
    /// it (inet_ntop) when it cached the address as the accepted channel was
    /// made (`host`); `ipAddress` would format it a second time (about 3,000
    /// instructions, through sprintf).
    static func numericHost(_ address: SocketAddress) -> String? {
        switch address {
        case .v4(let a) where !a.host.isEmpty: return a.host
        case .v6(let a) where !a.host.isEmpty: return a.host
        default: return address.ipAddress
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        responseChannel = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        core.register(self)
        // Accepted as the drain began: during an idle grace (a worker being
        // rolled over on a shared socket) it is served, not dropped.
        if core.closesWhenIdle {
            context.close(promise: nil)
            return
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        machine.channelClosed()
        responseChannel.markClosed()
        core.unregister(self)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        let now = monotonicSeconds()
        let count = incoming.readableBytes
        let action = machine.bytesRead(&incoming, at: now)
        defer { adjustReadSize(context) }
        if case .drop = action { return }  // closing, lingering after an error included
        core.metrics?.add(.bytesReceived, count)
        if case .process = action {
            process(at: now)
        }
        if machine.readAheadExceeded() {
            setReading(false)
        }
    }

    /// A large upload is read in pieces of `bodyReadSize` (256 KiB), not of
    /// at most 64 KiB: measured on a 1 MiB upload, 23 syscalls instead of 42
    /// (server CPU per request moved less than this machine's noise). Only while that much of
    /// a Content-Length body remains, so a read never runs past the body and
    /// the read-ahead bound is unchanged; the tail goes back to the adaptive
    /// allocator. (NIO takes the allocator anew for every read of its loop.)
    private func adjustReadSize(_ context: ChannelHandlerContext) {
        let wanted = machine.fixedBodyRemaining >= ChildChannelOptions.bodyReadSize
        guard wanted != bodyReads, let options = context.channel.syncOptions else { return }
        bodyReads = wanted
        if wanted {
            try? options.setOption(ChannelOptions.recvAllocator, value: core.childOptions.bodyRecvAllocator)
        } else {
            try? options.setOption(ChannelOptions.recvAllocator, value: core.childOptions.recvAllocator)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if machine.writabilityChanged(isWritable: context.channel.isWritable) {
            process(at: monotonicSeconds())
            flushIfNeeded()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if listener.isSecure, core.configuration.security?.isQuietDisconnect(error) == true {
            return  // the input-closed event follows
        }
        // Resets and broken pipes end the connection; Waitress logs them as
        // "Socket error" unless log_socket_errors is off.
        if core.configuration.logSocketErrors && !machine.isClosing && !Self.isDisconnect(error) {
            core.logs.post(.error, "Socket error: \(Self.describe(error))")
        }
        context.close(promise: nil)
    }

    /// Errors that only mean the client went away: Waitress (wasyncore) treats
    /// them as a close, not as a socket error to log.
    static func isDisconnect(_ error: Error) -> Bool {
        if let io = error as? IOError {
            return [ECONNRESET, EPIPE, ECONNABORTED, ENOTCONN, ESHUTDOWN, EBADF].contains(io.errnoCode)
        }
        if let channelError = error as? ChannelError {
            return channelError == .eof || channelError == .ioOnClosedChannel || channelError == .alreadyClosed
        }
        return false
    }

    static func describe(_ error: Error) -> String {
        if let io = error as? IOError {
            return "\(String(cString: strerror(io.errnoCode))) (errno \(io.errnoCode))"
        }
        return "\(error)"
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let secured = event as? ConnectionSecured {
            responseChannel.securityVariables = secured.variables
            return
        }
        if let event = event as? ChannelEvent, event == .inputClosed {
            switch machine.inputClosedByPeer() {
            case .close:
                context.close(promise: nil)
            case .finishService:
                responseChannel.markPeerClosed()
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: reading and parsing

    private func setReading(_ on: Bool) {
        guard let context = context else { return }
        try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: on)
        if on { context.read() }
    }

    /// Carries out what the state machine makes of the buffered bytes until a
    /// request is dispatched, an error is answered, or more bytes are needed.
    private func process(at now: Double) {
        while true {
            switch machine.process(at: now) {
            case .wait:
                return
            case .resumeReading:
                setReading(true)
                return
            case .sendContinue:
                // RFC 9110 §10.1.1: the client waits for this before the body.
                writeRaw(core.continueBytes)
                flushIfNeeded()
            case .dispatch(let head, let body):
                dispatch(head, body: body)
                return
            case .answerError(let answer):
                fail(answer)
                return
            case .closeAfterFlush:
                closeAfterFlush()
                return
            }
        }
    }

    private func dispatch(_ head: RequestHead, body: OverflowableBuffer?) {
        accessLogDispatched(head)
        let length = body?.count ?? 0
        let contents = body?.take() ?? .memory([])
        let request = Request(
            head: head, body: contents, bodyLength: length, connection: responseChannel, listener: listener)
        if let metrics = core.metrics {
            request.dispatchedAt = monotonicSeconds()
            if case .file = contents { metrics.add(.bodiesSpilled) }
        }
        core.dispatcher.dispatch(request)
    }

    /// Answers a malformed or refused request with Waitress's error page, then
    /// closes: after a framing error the rest of the stream is not trusted.
    ///
    /// The close is lingering (as nginx's lingering_close): our side is shut
    /// for writing once the page is flushed, and what the client still sends
    /// is read and dropped until it closes too, for at most `lingerSeconds`.
    /// Closing with unread bytes would make the kernel send a reset, and the
    /// client could lose the response (a 431 for a long head, say).
    private func fail(_ answer: ConnectionStateMachine.ErrorAnswer) {
        let error = answer.error
        if case .storageFailure(let code) = error {
            core.logs.post(
                .error,
                "could not write a request body to a temporary file in \(OverflowableBuffer.temporaryDirectory) (\(String(cString: strerror(code)))); answered 503 Service Unavailable"
            )
        }
        let bytes = core.errorResponse(error, version: answer.version)
        if let metrics = core.metrics {
            metrics.countEngineError(status: error.statusCode)
            metrics.add(.bytesSent, bytes.count)
        }
        guard let context = context else { return }
        if answer.resumeReading { setReading(true) }
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        let logged = accessLogEngineAnswer(bytes, head: answer.head, buffered: answer.unparsed, context: context)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(buffer))).whenComplete { _ in
            logged?.succeed(())
            context.close(mode: .output, promise: nil)
            context.eventLoop.scheduleTask(in: .seconds(ConnectionHandler.lingerSeconds)) {
                context.close(promise: nil)
            }
        }
    }

    static let lingerSeconds: Int64 = 2

    // MARK: writing (on the event loop, from the Outbox)

    private func writeRaw(_ bytes: [UInt8]) {
        guard let context = context else { return }
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        core.metrics?.add(.bytesSent, bytes.count)
        context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: nil)
        machine.wrote()
    }

    /// A response's last `.data` part directly followed by its `.end`: sent as
    /// the end's own bytes. Those are outside the pending counts (as a
    /// coalesced list's last bytes are), so the part's count is released now;
    /// what bounds them is that the next request waits for the channel to be
    /// writable, as for every end.
    func handleLast(_ buffer: ByteBuffer, close: Bool) {
        responseChannel?.drained(memory: buffer.readableBytes, total: buffer.readableBytes)
        handle(.end(buffer, close: close))
    }

    func handle(_ part: ResponseChannel.Part) {
        if fileRead != nil {
            partsAfterFile.append(part)
            return
        }
        guard let context = context, context.channel.isActive else {
            switch part {
            case .end:
                machine.responseDropped()
                if let context = context { accessLogEndPromise(context)?.succeed(()) }
            case .data(let buffer): responseChannel?.drained(memory: buffer.readableBytes, total: buffer.readableBytes)
            case .tail: break
            case .file(_, _, let length, let spilled): if spilled { responseChannel?.drained(memory: 0, total: length) }
            }
            return
        }
        if let metrics = core.metrics { metrics.add(.bytesSent, part.byteCount) }
        switch part {
        case .data(let buffer):
            let count = buffer.readableBytes
            let promise = context.eventLoop.makePromise(of: Void.self)
            let channel = responseChannel!
            promise.futureResult.whenComplete { _ in channel.drained(memory: count, total: count) }
            context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: promise)
            machine.wrote()
        case .tail(let buffer):
            context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: nil)
            machine.wrote()
        case .file(let file, let offset, let length, let spilled):
            if listener.isSecure {
                // The bytes must go through the TLS handler: no sendfile.
                startFileRead(FileRead(file: file, offset: offset, remaining: length, spilled: spilled), context)
                return
            }
            // sendfile from the file: no copy through user space.
            let region = FileRegion(fileHandle: file.handle, readerIndex: offset, endIndex: offset + length)
            let promise = context.eventLoop.makePromise(of: Void.self)
            let channel = responseChannel!
            filesInFlight += 1
            promise.futureResult.whenComplete { [self] _ in
                withExtendedLifetime(file) {}
                filesInFlight -= 1
                if spilled { channel.drained(memory: 0, total: length) }
            }
            context.write(wrapOutboundOut(.fileRegion(region)), promise: promise)
            machine.wrote()
        case .end(let buffer, let close):
            let now = monotonicSeconds()
            let ended = machine.responseEnded(close: close, serverDraining: !close && core.closesWhenIdle, at: now)
            let logged = accessLogEndPromise(context)
            switch ended {
            case .closeAfterFlush:
                closeAfterFlush(last: buffer, then: logged)
            case .keepOpen:
                if let buffer = buffer {
                    context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: logged)
                    machine.wrote()
                } else if let logged = logged {
                    context.write(wrapOutboundOut(.byteBuffer(context.channel.allocator.buffer(capacity: 0))), promise: logged)
                }
                if context.channel.isWritable {
                    process(at: now)
                }
            }
        }
    }

    /// Writes `last` (if any), then closes once everything written is flushed
    /// (the state machine has moved to draining).
    private func closeAfterFlush(last: ByteBuffer? = nil, then written: EventLoopPromise<Void>? = nil) {
        guard let context = context else {
            written?.succeed(())
            return
        }
        let final = last ?? context.channel.allocator.buffer(capacity: 0)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(final))).whenComplete { _ in
            written?.succeed(())
            context.close(promise: nil)
        }
    }

    func flushIfNeeded() {
        if let context = context, machine.takeFlush() {
            context.flush()
        }
    }

    /// Answers 408 and closes when a request head began before `cutoff` and
    /// is still not complete (request_head_timeout).
    func expireHead(startedBefore cutoff: Double, seconds: Int) {
        guard let answer = machine.headTimedOut(startedBefore: cutoff, seconds: seconds) else { return }
        fail(answer)
        flushIfNeeded()
    }

    /// Closes the connection if it is idle (no request in service) and, with
    /// a `cutoff`, has been since before it; in any case when `force` is set
    /// (a drain that ran out of time).
    func closeIfIdle(olderThan cutoff: Double?, force: Bool = false) {
        guard let context = context, machine.closeIfIdle(olderThan: cutoff, force: force) else { return }
        context.close(promise: nil)
    }
}
