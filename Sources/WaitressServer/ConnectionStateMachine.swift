import NIOCore
import WaitressHTTP

/// The rules of one client connection, as a value type in the way SwiftNIO
/// writes protocol logic (its HTTP server upgrade state machine): `State`
/// names the phase the connection is in, each mutating method takes one
/// event (bytes read, a response ended, the client half-closed, a timer, the
/// drain) and returns what the handler must do. `ConnectionHandler` carries
/// the actions out on the channel; this type touches no channel and reads no
/// clock (times come with the events), so every transition is tested event
/// by event (`ConnectionStateMachineTests`).
///
/// The rules it keeps:
/// - One request is in service at a time, so responses are never reordered
///   (RFC 9112 §9.3.2). Bytes that arrive meanwhile are kept (pipelining), up
///   to `readAheadLimit`; past it reading pauses until the buffered requests
///   have been served, so a flooding client costs bounded memory.
/// - The next buffered request is parsed only once the previous response has
///   ended and the channel is writable (Waitress flushes its outbufs first).
/// - `Expect: 100-continue` on a request with a body is answered before the
///   body is read (RFC 9110 §10.1.1).
/// - A client that half-closes still gets answers to the complete requests
///   it sent (RFC 9112 §9.6); the connection closes when none is left.
/// - A malformed or refused request is answered with Waitress's error page,
///   then the connection lingers: what the client still sends is dropped
///   until it closes (closing with unread bytes would reset the connection
///   and could lose the page).
struct ConnectionStateMachine {
    /// A trivial enum (the body being received is in `body`): testing and
    /// setting it costs a byte, on the path every request takes.
    enum State {
        /// Between requests, or partway through a request head.
        case readingHead
        /// A head announced a body, which is being received (`body`).
        case readingBody
        /// A request is with the workers; bytes that arrive are kept
        /// (read-ahead) and parsed once its response has ended.
        case inService
        /// An error was answered: input is read and dropped until the client
        /// closes or the linger time ends (the handler's timer).
        case lingering
        /// The connection closes once what was written is flushed: a response
        /// asked for it, the server is draining, or the client half-closed
        /// and no complete request is left.
        case draining
        /// Closed, or closing at once (idle, drained, forced, or the channel
        /// went inactive).
        case closed
    }

    /// A request whose body is being received.
    struct Body {
        var head: RequestHead
        var receiver: BodyReceiver
        var buffer: OverflowableBuffer
        /// Bytes of the body consumed so far, framing included.
        var received = 0
    }

    /// The limits the rules apply (from `ServerConfiguration`).
    struct Limits {
        var maxHeaderSize: Int
        var maxBodySize: Int
        /// Request bodies past this many bytes go to a temporary file.
        var inbufOverflow: Int
        /// Bytes kept behind a request in service before reading pauses.
        var readAheadLimit: Int
    }

    /// An error to answer with Waitress's page before lingering.
    struct ErrorAnswer {
        var error: RequestError
        var version: HTTPVersion
        /// The request's head when the error is in its body (access log).
        var head: RequestHead?
        /// What was unparsed, for the access log's request line when no head was parsed.
        var unparsed: ByteBuffer?
        /// Reading was paused and must be turned on again (the client's
        /// bytes are read and dropped while lingering).
        var resumeReading: Bool
    }

    let limits: Limits
    private(set) var state = State.readingHead
    /// The request whose body is being received; set in `readingBody` only.
    private(set) var body: Body?
    /// Bytes read and not yet consumed by a request; nil when there are none.
    private(set) var buffered: ByteBuffer?
    private var parser: RequestHeadParser
    /// Reading is off: the read-ahead limit was reached behind a request in
    /// service.
    private(set) var readingPaused = false
    /// The client shut down its sending side while a request was in service.
    private(set) var inputClosed = false
    /// Something was written since the last flush.
    private(set) var flushPending = false
    /// When bytes last arrived or a response last ended (channel_timeout).
    private(set) var lastActivity: Double
    /// When the first bytes of a request head not complete yet were parsed
    /// (request_head_timeout); nil between requests.
    private(set) var headStarted: Double?
    /// For the access log and metrics: when the read that brought the first
    /// unparsed byte arrived, and when the current request's first byte did.
    private(set) var firstByte = 0.0
    private(set) var requestStart = 0.0

    init(limits: Limits, now: Double) {
        self.limits = limits
        self.lastActivity = now
        self.parser = RequestHeadParser(maxHeaderSize: limits.maxHeaderSize, maxBodySize: limits.maxBodySize)
    }

    /// Lingering, draining or closed: no request will be read any more.
    var isClosing: Bool {
        switch state {
        case .readingHead, .readingBody, .inService: return false
        case .lingering, .draining, .closed: return true
        }
    }

    @inline(__always)
    var isInService: Bool {
        if case .inService = state { return true }
        return false
    }

    // MARK: input

    enum BytesReadAction {
        /// Closing: the bytes are dropped.
        case drop
        /// Parse what is buffered (`process`).
        case process
        /// A request is in service: the bytes are kept for later.
        case keep
    }

    /// Bytes arrived at `now`; they are appended to what is buffered unless
    /// the connection is closing.
    @inline(__always)
    mutating func bytesRead(_ bytes: inout ByteBuffer, at now: Double) -> BytesReadAction {
        lastActivity = now
        switch state {
        case .lingering, .draining, .closed:
            return .drop
        case .readingHead, .readingBody, .inService:
            break
        }
        if buffered == nil {
            // A new request may begin with this read.
            firstByte = now
            buffered = bytes
        } else {
            buffered!.writeBuffer(&bytes)
        }
        return isInService ? .keep : .process
    }

    /// Bytes of a Content-Length body still to come (0 when no such body is
    /// being read): reads this large cannot run past the body.
    var fixedBodyRemaining: Int {
        guard state == .readingBody, case .fixed(let receiver)? = body?.receiver else { return 0 }
        return receiver.remaining
    }

    /// After a read: whether reading must pause now (read-ahead limit
    /// reached behind a request in service).
    @inline(__always)
    mutating func readAheadExceeded() -> Bool {
        guard isInService, !readingPaused, let buffered = buffered,
            buffered.readableBytes >= limits.readAheadLimit
        else { return false }
        readingPaused = true
        return true
    }

    enum ProcessAction {
        /// More bytes are needed; nothing to do.
        case wait
        /// More bytes are needed and reading was paused: turn it on.
        case resumeReading
        /// Write (and flush) `HTTP/1.1 100 Continue`, then call `process` again.
        case sendContinue
        /// Hand the complete request to the workers.
        case dispatch(RequestHead, body: OverflowableBuffer?)
        /// Answer the error, shut the output once it is flushed, linger.
        /// Boxed (once per failed connection) to keep the other actions small.
        indirect case answerError(ErrorAnswer)
        /// Close once what was written is flushed (the client half-closed).
        case closeAfterFlush
    }

    /// Parses what is buffered, when no request is in service: a complete
    /// request is dispatched, an error answered, or more bytes are needed.
    /// `now` starts the head timer when a head begins.
    @inline(__always)
    mutating func process(at now: Double) -> ProcessAction {
        while true {
            switch state {
            case .readingHead:
                guard var buffer = buffered, buffer.readableBytes > 0 else {
                    buffered = nil
                    return needMore()
                }
                let result = buffer.withUnsafeReadableBytes { parser.parse($0) }
                switch consume result {
                case .needMore:
                    // Blank lines between requests (RFC 9112 §2.2) start no head:
                    // an idle keep-alive client that sent one stays idle.
                    if headStarted == nil, buffer.readableBytesView.contains(where: { $0 != 13 && $0 != 10 }) {
                        headStarted = now
                    }
                    if buffer.readerIndex > 0 && buffer.readableBytes < 1024 {
                        // Offsets are relative to the readable bytes: the parser's
                        // resume point stays valid.
                        buffer.discardReadBytes()
                    }
                    buffered = buffer
                    return needMore()
                case .failure(let error, let version):
                    return answer(error, version: version, head: nil)
                case .head(let head, let consumed):
                    headStarted = nil
                    // The request began with the read that brought its first
                    // byte; bytes left (pipelined requests) came by the latest.
                    requestStart = firstByte
                    firstByte = lastActivity
                    buffer.moveReaderIndex(forwardBy: consumed)
                    buffered = buffer.readableBytes > 0 ? buffer : nil
                    guard head.isChunked || head.contentLength > 0 else {
                        state = .inService
                        return .dispatch(head, body: nil)
                    }
                    let receiver: BodyReceiver =
                        head.isChunked
                        ? .chunked(ChunkedReceiver(maxBodySize: limits.maxBodySize, maxHeaderSize: limits.maxHeaderSize))
                        : .fixed(FixedLengthReceiver(length: head.contentLength))
                    state = .readingBody
                    body = Body(head: head, receiver: receiver, buffer: OverflowableBuffer(
                            overflow: limits.inbufOverflow, expected: head.isChunked ? 0 : head.contentLength))
                    if head.expectContinue {
                        // Sent even when body bytes came with the head, as
                        // Waitress does: a client that sent early still reads a 100 first.
                        return .sendContinue
                    }
                }
            case .readingBody:
                return receiveBody()
            case .inService, .lingering, .draining, .closed:
                return .wait
            }
        }
    }

    /// Feeds what is buffered to the body's receiver (kept out of `process`,
    /// which every request takes, so that it stays small enough to inline).
    @inline(never)
    private mutating func receiveBody() -> ProcessAction {
        guard var body = body else { return .wait }
        guard var buffer = buffered, buffer.readableBytes > 0 else {
            buffered = nil
            return needMore()
        }
        let consumed: Int
        do {
            consumed = try buffer.withUnsafeReadableBytes { bytes throws(RequestError) in
                try body.receiver.receive(bytes, into: body.buffer)
            }
        } catch {
            let error = body.receiver.answer(
                to: error, received: body.received + buffer.readableBytes, maxBodySize: limits.maxBodySize)
            self.body = nil
            return answer(error, version: body.head.version, head: body.head)
        }
        body.received += consumed
        buffer.moveReaderIndex(forwardBy: consumed)
        buffered = buffer.readableBytes > 0 ? buffer : nil
        if body.receiver.isComplete {
            self.body = nil
            state = .inService
            return .dispatch(body.head, body: body.buffer)
        }
        self.body = body
        return needMore()
    }

    /// No complete request is buffered.
    private mutating func needMore() -> ProcessAction {
        if inputClosed {
            // Nothing more will come: what was asked has been answered.
            closeAfterFlush()
            return .closeAfterFlush
        }
        if readingPaused {
            readingPaused = false
            return .resumeReading
        }
        return .wait
    }

    private mutating func answer(_ error: RequestError, version: HTTPVersion, head: RequestHead?) -> ProcessAction {
        .answerError(fail(error, version: version, head: head))
    }

    /// After a framing error the rest of the stream is not trusted: nothing
    /// more is parsed.
    private mutating func fail(_ error: RequestError, version: HTTPVersion, head: RequestHead?) -> ErrorAnswer {
        let unparsed = buffered
        buffered = nil
        body = nil
        state = .lingering
        let resume = readingPaused
        readingPaused = false
        return ErrorAnswer(error: error, version: version, head: head, unparsed: unparsed, resumeReading: resume)
    }

    private mutating func closeAfterFlush() {
        switch state {
        case .readingHead, .readingBody, .inService: state = .draining
        case .lingering, .draining, .closed: break
        }
        body = nil
        // The close's own write flushes everything.
        flushPending = false
    }

    enum InputClosedAction {
        /// Close now.
        case close
        /// A request is in service: its response still goes out (the app sees
        /// `client_disconnected`), then the complete requests buffered, then
        /// the connection closes.
        case finishService
    }

    /// The client shut down its sending side (read EOF).
    mutating func inputClosedByPeer() -> InputClosedAction {
        guard isInService else { return .close }
        inputClosed = true
        return .finishService
    }

    /// The channel went inactive.
    mutating func channelClosed() {
        state = .closed
        buffered = nil
        body = nil
    }

    // MARK: output

    /// A response part was written (not flushed).
    @inline(__always)
    mutating func wrote() {
        flushPending = true
    }

    /// Whether to flush now; clears the need.
    @inline(__always)
    mutating func takeFlush() -> Bool {
        guard flushPending else { return false }
        flushPending = false
        return true
    }

    enum ResponseEndAction {
        /// Write the last part, then close once everything is flushed.
        case closeAfterFlush
        /// Write the last part; then, if the channel is writable, `process`
        /// the next buffered request.
        case keepOpen
    }

    /// The response in service ended at `now`. `close`: the response asked
    /// for it; `serverDraining`: the server closes connections once idle.
    @inline(__always)
    mutating func responseEnded(close: Bool, serverDraining: Bool, at now: Double) -> ResponseEndAction {
        if isInService { state = .readingHead }
        lastActivity = now
        if close || isClosing || serverDraining {
            closeAfterFlush()
            return .closeAfterFlush
        }
        return .keepOpen
    }

    /// A response ended on a connection that is already gone.
    mutating func responseDropped() {
        if isInService { state = .readingHead }
    }

    /// Whether to `process` (and flush) now: the channel became writable with
    /// no request in service, so the next buffered one may start.
    func writabilityChanged(isWritable: Bool) -> Bool {
        guard isWritable else { return false }
        switch state {
        case .readingHead, .readingBody: return true
        case .inService, .lingering, .draining, .closed: return false
        }
    }

    // MARK: timers and the drain

    /// The maintenance sweep (channel_timeout, with the `cutoff` time) or the
    /// drain (no cutoff): whether to close now. A request in service keeps the
    /// connection unless `force` (a drain that ran out of time).
    mutating func closeIfIdle(olderThan cutoff: Double?, force: Bool) -> Bool {
        if !force && isInService { return false }
        if let cutoff = cutoff, lastActivity >= cutoff { return false }
        state = .closed
        body = nil
        return true
    }

    /// request_head_timeout: a head that began before `cutoff` and is still
    /// not complete is answered with 408 (a client trickling a byte at a
    /// time is never idle, so channel_timeout alone would let it stay).
    mutating func headTimedOut(startedBefore cutoff: Double, seconds: Int) -> ErrorAnswer? {
        guard case .readingHead = state, let started = headStarted, started < cutoff else { return nil }
        headStarted = nil
        return fail(.headTimeout(seconds: seconds), version: .http10, head: nil)
    }
}
