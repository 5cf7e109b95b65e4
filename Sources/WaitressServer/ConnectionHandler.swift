#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import WaitressHTTP

/// One client connection: reads and parses requests, hands complete ones to
/// the worker pool one at a time, and writes their responses in order.
///
/// One request is in service at a time, so responses can never be reordered
/// (RFC 9112 §9.3.2). Reading stays on (re-arming read interest per request
/// costs two epoll_ctl calls), but while a request is in service at most
/// `readAheadLimit` bytes are buffered before reading pauses, so a pipelining
/// or flooding client costs bounded memory. The next buffered request is only
/// started once the previous response is written out below the write-buffer
/// high watermark (Waitress flushes its outbufs first).
final class ConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = IOData

    private struct BodyState {
        var head: RequestHead
        var receiver: BodyReceiver
        var buffer: OverflowableBuffer
        /// Bytes of the body consumed so far, framing included.
        var received = 0
    }

    let core: ServerCore
    let listener: ListenerSpec
    private var context: ChannelHandlerContext?
    private var cumulation: ByteBuffer?
    private var parser: RequestHeadParser
    private var bodyState: BodyState?
    private(set) var inService = false
    private var closing = false
    private var readingPaused = false
    /// After an error response: input is read and dropped until the client closes.
    private var discarding = false
    /// The client shut down its sending side (read EOF).
    private var peerClosed = false
    private var needsFlush = false
    /// File regions written and not yet completed (they count in no pending
    /// total; the access log and metrics wait for them).
    private(set) var filesInFlight = 0
    private(set) var lastActivity = monotonicSeconds()
    /// When the first bytes of a request head that is not complete yet were
    /// parsed (request_head_timeout); nil between requests.
    private var headStarted: Double?
    /// The current request's start and head, for the access log (AccessLog.swift).
    var accessLogTracker = AccessLogTracker()
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
        self.parser = RequestHeadParser(
            maxHeaderSize: core.configuration.maxRequestHeaderSize,
            maxBodySize: core.configuration.maxRequestBodySize)
    }

    // MARK: channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.eventLoop = context.eventLoop
        var host = "localhost"
        var port = "None"
        if !listener.isUnix, let address = context.channel.remoteAddress {
            host = address.ipAddress ?? host
            port = address.port.map(String.init) ?? port
        }
        responseChannel = ResponseChannel(
            handler: self, outbox: core.outbox, highWatermark: core.configuration.outbufHighWatermark,
            overflow: core.configuration.outbufOverflow, remoteHost: host, remotePort: port)
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
        closing = true
        responseChannel.markClosed()
        bodyState = nil
        cumulation = nil
        core.unregister(self)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        lastActivity = monotonicSeconds()
        if closing { return }  // includes discarding after an error response
        core.metrics?.add(.bytesReceived, incoming.readableBytes)
        accessLogBytesArrived(at: lastActivity, bufferWasEmpty: cumulation == nil)
        if cumulation == nil {
            cumulation = incoming
        } else {
            cumulation!.writeBuffer(&incoming)
        }
        if !inService {
            process()
        }
        if inService, !readingPaused, let buffered = cumulation, buffered.readableBytes >= core.readAheadLimit {
            setReading(false)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && !inService && !closing {
            process()
            flushIfNeeded()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Resets and broken pipes end the connection; Waitress logs them as
        // "Socket error" unless log_socket_errors is off.
        if core.configuration.logSocketErrors && !closing && !Self.isDisconnect(error) {
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
            // The client half-closed: serve what is complete, then close.
            if discarding || !inService {
                context.close(promise: nil)
            } else {
                // Requests already complete in the buffer are still answered
                // (RFC 9112 §9.6); the connection closes when none is left.
                peerClosed = true
                responseChannel.markPeerClosed()
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: reading and parsing

    private func setReading(_ on: Bool) {
        guard let context = context else { return }
        readingPaused = !on
        try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: on)
        if on { context.read() }
    }

    /// Parses what is buffered until a request is complete and dispatched, an
    /// error is answered, or more bytes are needed.
    private func process() {
        while !inService && !closing {
            guard var buffer = cumulation, buffer.readableBytes > 0 else {
                cumulation = nil
                if peerClosed {
                    closeAfterFlush()
                    return
                }
                if readingPaused { setReading(true) }
                return
            }
            if var state = bodyState {
                let consumed: Int
                do {
                    consumed = try buffer.withUnsafeReadableBytes { bytes throws(RequestError) in
                        try state.receiver.receive(bytes, into: state.buffer)
                    }
                } catch {
                    let answer = state.receiver.answer(
                        to: error, received: state.received + buffer.readableBytes,
                        maxBodySize: core.configuration.maxRequestBodySize)
                    fail(answer, version: state.head.version)
                    return
                }
                state.received += consumed
                buffer.moveReaderIndex(forwardBy: consumed)
                cumulation = buffer.readableBytes > 0 ? buffer : nil
                if state.receiver.isComplete {
                    bodyState = nil
                    dispatch(state.head, body: state.buffer)
                } else {
                    bodyState = state
                    if peerClosed {
                        closeAfterFlush()
                        return
                    }
                    if readingPaused { setReading(true) }
                    return
                }
                continue
            }
            let result = buffer.withUnsafeReadableBytes { parser.parse($0) }
            switch result {
            case .needMore:
                // Blank lines between requests (RFC 9112 §2.2) start no head:
                // an idle keep-alive client that sent one stays idle.
                if headStarted == nil, buffer.readableBytesView.contains(where: { $0 != 13 && $0 != 10 }) {
                    headStarted = monotonicSeconds()
                }
                if buffer.readerIndex > 0 && buffer.readableBytes < 1024 {
                    // Offsets are relative to the readable bytes: the parser's
                    // resume point stays valid.
                    buffer.discardReadBytes()
                }
                cumulation = buffer
                if peerClosed {
                    closeAfterFlush()
                    return
                }
                if readingPaused { setReading(true) }
                return
            case .failure(let error, let version):
                fail(error, version: version)
                return
            case .head(let head, let consumed):
                headStarted = nil
                accessLogHeadParsed(latestRead: lastActivity)
                buffer.moveReaderIndex(forwardBy: consumed)
                cumulation = buffer.readableBytes > 0 ? buffer : nil
                if head.isChunked || head.contentLength > 0 {
                    let receiver: BodyReceiver =
                        head.isChunked
                        ? .chunked(
                            ChunkedReceiver(
                                maxBodySize: core.configuration.maxRequestBodySize,
                                maxHeaderSize: core.configuration.maxRequestHeaderSize))
                        : .fixed(FixedLengthReceiver(length: head.contentLength))
                    bodyState = BodyState(
                        head: head, receiver: receiver,
                        buffer: OverflowableBuffer(overflow: core.configuration.inbufOverflow))
                    if head.expectContinue {
                        // RFC 9110 §10.1.1: the client waits for this before the body.
                        // Sent even when body bytes came with the head, as Waitress
                        // does: a client that sent early still reads a 100 first.
                        writeRaw(core.continueBytes)
                        flushIfNeeded()
                    }
                } else {
                    dispatch(head, body: nil)
                }
            }
        }
    }

    private func dispatch(_ head: RequestHead, body: OverflowableBuffer?) {
        inService = true
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
    private func fail(_ error: RequestError, version: HTTPVersion) {
        let head = bodyState?.head
        let buffered = cumulation
        bodyState = nil
        cumulation = nil
        closing = true
        discarding = true
        if case .storageFailure(let code) = error {
            core.logs.post(
                .error,
                "could not write a request body to a temporary file in \(OverflowableBuffer.temporaryDirectory) (\(String(cString: strerror(code)))); answered 503 Service Unavailable"
            )
        }
        let bytes = core.errorResponse(error, version: version)
        if let metrics = core.metrics {
            metrics.countEngineError(status: error.statusCode)
            metrics.add(.bytesSent, bytes.count)
        }
        guard let context = context else { return }
        if readingPaused { setReading(true) }
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        let logged = accessLogEngineAnswer(bytes, head: head, buffered: buffered, context: context)
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
        needsFlush = true
    }

    func handle(_ part: ResponseChannel.Part) {
        if fileRead != nil {
            partsAfterFile.append(part)
            return
        }
        guard let context = context, context.channel.isActive else {
            switch part {
            case .end:
                inService = false
                if let context = context { accessLogEndPromise(context)?.succeed(()) }
            case .data(let buffer): responseChannel?.drained(memory: buffer.readableBytes, total: buffer.readableBytes)
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
            needsFlush = true
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
            needsFlush = true
        case .end(let buffer, let close):
            inService = false
            lastActivity = monotonicSeconds()
            let logged = accessLogEndPromise(context)
            if close || closing || core.closesWhenIdle {
                closeAfterFlush(last: buffer, then: logged)
                return
            }
            if let buffer = buffer {
                context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: logged)
                needsFlush = true
            } else if let logged = logged {
                context.write(wrapOutboundOut(.byteBuffer(context.channel.allocator.buffer(capacity: 0))), promise: logged)
            }
            if context.channel.isWritable {
                process()
            }
        }
    }

    /// Writes `last` (if any), then closes once everything written is flushed.
    private func closeAfterFlush(last: ByteBuffer? = nil, then written: EventLoopPromise<Void>? = nil) {
        guard let context = context else {
            written?.succeed(())
            return
        }
        closing = true
        needsFlush = false
        let final = last ?? context.channel.allocator.buffer(capacity: 0)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(final))).whenComplete { _ in
            written?.succeed(())
            context.close(promise: nil)
        }
    }

    func flushIfNeeded() {
        if needsFlush, let context = context {
            needsFlush = false
            context.flush()
        }
    }

    /// Answers 408 and closes when a request head began before `cutoff` and
    /// is still not complete (a client trickling a byte at a time is never
    /// idle, so channel_timeout alone would let it keep the connection).
    func expireHead(startedBefore cutoff: Double, seconds: Int) {
        guard let started = headStarted, started < cutoff, !inService, !closing, bodyState == nil else { return }
        headStarted = nil
        fail(.headTimeout(seconds: seconds), version: .http10)
        flushIfNeeded()
    }

    /// Closes the connection if it is idle (no request in service), or in any
    /// case when `force` is set (a drain that ran out of time).
    func closeIfIdle(olderThan cutoff: Double?, force: Bool = false) {
        guard force || !inService, let context = context else { return }
        if let cutoff = cutoff, lastActivity >= cutoff { return }
        closing = true
        context.close(promise: nil)
    }
}
