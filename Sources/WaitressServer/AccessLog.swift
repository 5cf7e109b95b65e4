#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore
import WaitressHTTP

/// Where access-log lines go (the `access_log` option).
public enum AccessLogDestination: Sendable, Equatable {
    /// A file opened with O_APPEND (reopened on `reopen()`, for logrotate).
    case file(String)
    /// Standard output (`-`).
    case standardOutput
    /// Handed to the thread in `run()`, which passes them to a Python logger
    /// (`logger:NAME`): the slow path, for setups that route everything
    /// through `logging`.
    case relay(loggerName: String)
}

public struct AccessLogConfiguration: Sendable {
    public var destination: AccessLogDestination
    public var format: AccessLogFormat

    public init(destination: AccessLogDestination, format: AccessLogFormat) {
        self.destination = destination
        self.format = format
    }
}

/// The engine's access log: lines are formatted on the event loop where a
/// response completes (no GIL, no Python) and appended to a buffer; a thread
/// of its own writes them, so a slow disk, a full disk or a stdout nobody
/// reads delays or loses lines, never the event loop or a request.
///
/// Each write(2) carries whole lines only, so with O_APPEND lines from
/// several threads or worker processes never interleave (on a pipe, writes
/// stay within PIPE_BUF, which the kernel keeps atomic). Lines are written
/// within a second, sooner once 64 KiB are waiting. Past `bufferLimit`
/// waiting bytes (a writer that cannot keep up) lines are dropped and
/// counted, and a warning says how many.
public final class AccessLog: @unchecked Sendable {
    let configuration: AccessLogConfiguration
    private let format: AccessLogFormat
    /// The format's `responseNeeds`, held apart so that workers read it
    /// without copying the format.
    let responseNeeds: AccessLogFormat.ResponseNeeds
    private let logs: LogRelay
    private let gate = Gate()
    /// Touched on the event loop only.
    private var clock = AccessLogClock()
    /// A relayed line, being formatted (event loop only).
    private var line = LogBytes()
    /// Lines waiting for the writer: formatted straight into it, under the gate.
    private var waiting = LogBytes(capacity: 2 * flushBytes)
    /// What the writer is writing (writer thread only).
    private var writing = LogBytes(capacity: 2 * flushBytes)
    private var relayed: [[UInt8]] = []
    private var dropped = 0
    private var reopenRequested = false
    private var stopping = false
    private var writerFinished = false
    private var thread: pthread_t?
    private var descriptor: Int32 = -1
    /// Set while writes fail, so a full disk gives one warning, not one a second.
    private var failing = false

    static let flushBytes = 65536
    static let bufferLimit = 8 << 20
    static let flushSeconds = 1.0
    static let stopSeconds = 3.0

    public init(configuration: AccessLogConfiguration, logs: LogRelay) {
        self.configuration = configuration
        self.format = configuration.format
        self.responseNeeds = configuration.format.responseNeeds
        self.logs = logs
    }

    /// Opens the destination and starts the writer thread.
    public func start() throws {
        switch configuration.destination {
        case .file(let path):
            descriptor = try Self.open(path)
        case .standardOutput:
            descriptor = STDOUT_FILENO
        case .relay:
            return
        }
        let box = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        pthread_create(&thread, nil, { argument in
            let log = Unmanaged<AccessLog>.fromOpaque(argument!).takeRetainedValue()
            log.writerLoop()
            return nil
        }, box)
        self.thread = thread
    }

    static func open(_ path: String) throws -> Int32 {
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { throw AccessLogOpenError(path: path, code: errno) }
        return fd
    }

    /// Formats and queues the line for one finished request; on the event loop.
    func record(_ entry: borrowing AccessLogEntry) {
        if case .relay = configuration.destination {
            line.removeAll()
            format.write(entry, into: &line, clock: &clock)
            gate.lock()
            if relayed.count < 10_000 { relayed.append(Array(line.bytes.dropLast())) } else { dropped += 1 }
            gate.unlock()
            return
        }
        // Formatted in place: a line is a few hundred instructions, and the
        // writer holds the gate only to take what is waiting.
        gate.lock()
        if waiting.count >= Self.bufferLimit {
            dropped += 1
            gate.unlock()
            return
        }
        let before = waiting.count
        format.write(entry, into: &waiting, clock: &clock)
        let wake = before < Self.flushBytes && waiting.count >= Self.flushBytes
        gate.unlock()
        if wake { gate.withLock { gate.signal() } }
    }

    /// Lines for the Python logger (`.relay`), taken by the thread in `run()`.
    public func takeRelayed() -> [[UInt8]] {
        gate.withLock {
            let out = relayed
            relayed = []
            return out
        }
    }

    /// Reopens the file by its path (after logrotate renamed it); thread-safe,
    /// done by the writer before its next write.
    public func reopen() {
        gate.withLock {
            reopenRequested = true
            gate.signal()
        }
    }

    /// Writes what is waiting and stops the writer; call off the event loop,
    /// after the last request was recorded.
    public func stop() {
        // A writer blocked on a stdout nobody reads must not hold up the
        // shutdown: it gets a few seconds, then is left to finish on its own.
        let started = thread != nil
        let finished = gate.withLock { () -> Bool in
            stopping = true
            if !started { return true }
            gate.broadcast()
            let deadline = monotonicSeconds() + Self.stopSeconds
            while !writerFinished && monotonicSeconds() < deadline {
                gate.wait(seconds: 0.1)
            }
            return writerFinished
        }
        if let thread = thread {
            if finished { pthread_join(thread, nil) } else { pthread_detach(thread) }
            self.thread = nil
        }
        let lost = gate.withLock { () -> Int in
            let n = dropped
            dropped = 0
            return n
        }
        if lost > 0 { logs.post(.warning, "access log: \(lost) line(s) were dropped") }
    }

    private func writerLoop() {
        while true {
            gate.lock()
            if waiting.count < Self.flushBytes && !stopping && !reopenRequested {
                gate.wait(seconds: Self.flushSeconds)
            }
            waiting.exchange(with: &writing)
            let reopen = reopenRequested
            reopenRequested = false
            let done = stopping
            let lost = dropped
            dropped = 0
            gate.unlock()
            if lost > 0 { logs.post(.warning, "access log: \(lost) line(s) were dropped: the writer could not keep up") }
            // Lines recorded before the reopen was asked for still go to the
            // old file (logrotate's postrotate signals after the rename).
            if !writing.isEmpty { writeOut() }
            if reopen { reopenFile() }
            writing.removeAll()
            if done {
                if case .file = configuration.destination { close(descriptor) }
                gate.withLock {
                    writerFinished = true
                    gate.broadcast()
                }
                return
            }
        }
    }

    private func reopenFile() {
        guard case .file(let path) = configuration.destination else { return }
        do {
            let fd = try Self.open(path)
            close(descriptor)
            descriptor = fd
            failing = false
        } catch {
            logs.post(.error, "access log: could not reopen \(path): \(error); still writing to the old file")
        }
    }

    /// Writes `writing` in pieces that end at a line end: at most PIPE_BUF
    /// bytes on a pipe or socket, 1 MiB on a file.
    private func writeOut() {
        var info = stat()
        let isFile = fstat(descriptor, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
        let piece = isFile ? 1 << 20 : Int(PIPE_BUF)
        do {
            let all = writing.bytes
            var start = 0
            while start < all.count {
                var end = min(all.count, start + piece)
                if end < all.count {
                    // Back to the last line end inside the piece; a single line
                    // longer than the piece goes alone.
                    var cut = end
                    while cut > start && all[cut - 1] != 10 { cut -= 1 }
                    if cut > start {
                        end = cut
                    } else {
                        end = start
                        while end < all.count && all[end] != 10 { end += 1 }
                        end = min(all.count, end + 1)
                    }
                }
                if !writeFully(UnsafeRawBufferPointer(rebasing: all[start..<end])) {
                    // Count what is lost in this batch, then give up on it.
                    let lines = all[start...].reduce(0) { $0 + ($1 == 10 ? 1 : 0) }
                    if !failing {
                        failing = true
                        let reason = String(cString: strerror(errno))
                        logs.post(.error, "access log: write failed (\(reason)); \(lines) line(s) lost, more may be")
                    }
                    return
                }
                failing = false
                start = end
            }
        }
    }

    private func writeFully(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            if n == 0 { return false }
            offset += n
        }
        return true
    }
}

public struct AccessLogOpenError: Error, CustomStringConvertible {
    public var path: String
    public var code: Int32
    public var description: String { "cannot open access log \(path): \(String(cString: strerror(code)))" }
}

/// What a worker notes about the response it ends (status, the app's headers,
/// body bytes), for the line written once the response's last byte is out.
/// Stored before the worker posts the response's end and read on the event
/// loop after it (the Outbox's lock orders the two).
public struct AccessLogNote: Sendable {
    var status: Int
    /// The app's headers, for the access log only, and only when its format
    /// prints response headers (nil otherwise).
    var headers: ResponseHeaders?
    /// `AccessLogEntry.contentLength`.
    var contentLength = AccessLogEntry.noContentLength
    var bodyBytes: Int
    /// The client's address when a trusted proxy named it (`%(h)s` is then
    /// that address, as REMOTE_ADDR is for the app); nil: the peer's.
    var client: [UInt8]? = nil
}

extension ResponseChannel {
    /// Called by the worker just before it sends the response's end. The
    /// headers are kept only for the access log (metrics need the status).
    public func noteResponse(status: [UInt8], headers: ResponseHeaders, bodyBytes: Int, client: String? = nil) {
        var code = 0
        for b in status.prefix(3) where b >= 48 && b <= 57 { code = code * 10 + Int(b - 48) }
        guard let log = accessLog else {
            accessNote = AccessLogNote(status: code, headers: nil, bodyBytes: bodyBytes)
            return
        }
        let (keep, contentLength) = AccessLogFormat.note(headers, log.responseNeeds)
        accessNote = AccessLogNote(
            status: code, headers: keep ? headers : nil, contentLength: contentLength, bodyBytes: bodyBytes,
            client: client.map { Array($0.utf8) })
    }
}

/// A connection's share of the access log and the metrics: the current
/// request's method and (for the log) its head, kept from its dispatch to its
/// response's last byte. When it began is the state machine's
/// (`ConnectionStateMachine.requestStart`, `firstByte`).
struct AccessLogTracker {
    /// A request is in service and its response will be recorded.
    var tracking = false
    /// `ServerMetrics.methodIndex` of its method.
    var method = 0
    /// Its head, for the access log only.
    var head: RequestHead?
}

extension ConnectionHandler {
    func accessLogDispatched(_ head: RequestHead) {
        guard core.recordsResponses else { return }
        accessLogTracker.tracking = true
        if core.accessLog != nil { accessLogTracker.head = head }
        if core.metrics != nil {
            accessLogTracker.method = head.storage.withUnsafeBytes {
                ServerMetrics.methodIndex(UnsafeRawBufferPointer(rebasing: $0[head.method]))
            }
        }
    }

    /// For the response that just ended (its last part is about to be
    /// written): records its line and its metrics once its last byte is
    /// handed to the kernel. When everything before the last part has been
    /// written, the last part goes out in this loop iteration's flush, and it
    /// is recorded at once (a promise and its callback cost about 3,000
    /// instructions a request, measured with callgrind). Otherwise the write's
    /// promise is returned, and the record is made when it completes. nil when
    /// nothing remains to do.
    func accessLogEndPromise(_ context: ChannelHandlerContext) -> EventLoopPromise<Void>? {
        guard accessLogTracker.tracking else { return nil }
        accessLogTracker.tracking = false
        let written = responseChannel.pendingTotal == 0 && filesInFlight == 0
        if core.accessLog == nil && written {
            // Metrics alone, everything written: count it now; no head, no line.
            let status = responseChannel.accessNote?.status ?? 0
            responseChannel.accessNote = nil
            core.metrics?.countRequest(
                method: accessLogTracker.method, status: status, seconds: monotonicSeconds() - machine.requestStart)
            return nil
        }
        let head = accessLogTracker.head.take()
        let note = responseChannel.accessNote.take() ?? AccessLogNote(status: 0, headers: nil, bodyBytes: 0)
        let start = machine.requestStart
        let method = accessLogTracker.method
        if written {
            record(start: start, method: method, head: head, line: [], status: note.status, headers: note.headers,
                   contentLength: note.contentLength, bodyBytes: note.bodyBytes, client: note.client)
            return nil
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { [self] _ in
            record(start: start, method: method, head: head, line: [], status: note.status, headers: note.headers,
                   contentLength: note.contentLength, bodyBytes: note.bodyBytes, client: note.client)
        }
        return promise
    }

    /// Records a finished response in the log and the metrics, timed to now.
    /// `method`: its `ServerMetrics.methodIndex` (for the metrics).
    private func record(
        start: Double, method: Int, head: consuming RequestHead?, line: [UInt8], status: Int, headers: ResponseHeaders?,
        contentLength: Int = AccessLogEntry.contentLengthInHeaders, bodyBytes: Int, client: [UInt8]? = nil
    ) {
        let now = monotonicSeconds()
        if let log = core.accessLog {
            log.record(
                AccessLogEntry(
                    head: head, rawRequestLine: line, remoteHost: client ?? responseChannel.remoteHostBytes,
                    remotePort: responseChannel.remotePortBytes, startTime: wallSeconds() - (now - start),
                    duration: now - start, status: status, responseHeaders: headers, contentLength: contentLength,
                    bodyBytes: bodyBytes))
        }
        core.metrics?.countRequest(method: method, status: status, seconds: now - start)
    }

    /// An error the engine answered itself (`response` is the whole answer):
    /// logged once it is written. `buffered` is what was unparsed, for the
    /// request line when no head was parsed.
    func accessLogEngineAnswer(
        _ response: [UInt8], head: RequestHead?, buffered: ByteBuffer?, context: ChannelHandlerContext
    ) -> EventLoopPromise<Void>? {
        guard core.recordsResponses else { return nil }
        accessLogTracker.tracking = false
        accessLogTracker.head = nil
        var line: [UInt8] = []
        if head == nil, core.accessLog != nil, let buffered = buffered {
            line = buffered.withUnsafeReadableBytes { bytes in
                let text = bytes.drop(while: { $0 == 13 || $0 == 10 }).prefix(8192)
                return Array(text.prefix(while: { $0 != 13 && $0 != 10 }))
            }
        }
        var code = 0
        for b in response.dropFirst(9).prefix(3) where b >= 48 && b <= 57 { code = code * 10 + Int(b - 48) }
        let (headers, bodyStart) = Self.parseHeaders(response)
        let start = head != nil ? machine.requestStart : machine.firstByte
        let method = head.map { head in
            head.storage.withUnsafeBytes { ServerMetrics.methodIndex(UnsafeRawBufferPointer(rebasing: $0[head.method])) }
        } ?? ServerMetrics.methods.count - 1
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { [self] _ in
            record(start: start, method: method, head: head, line: line, status: code, headers: headers,
                   bodyBytes: response.count - bodyStart)
        }
        return promise
    }

    /// The header fields of a response the engine built (status line skipped)
    /// and where its body starts.
    static func parseHeaders(_ response: [UInt8]) -> (ResponseHeaders, Int) {
        var headers = ResponseHeaders()
        var i = response.firstIndex(of: 10).map { $0 + 1 } ?? response.count
        while i < response.count {
            let end = response[i...].firstIndex(of: 10) ?? response.count
            let lineEnd = end > i && response[end - 1] == 13 ? end - 1 : end
            if lineEnd == i { return (headers, min(response.count, end + 1)) }
            if let colon = response[i..<lineEnd].firstIndex(of: UInt8(ascii: ":")) {
                var valueStart = colon + 1
                while valueStart < lineEnd && response[valueStart] == 32 { valueStart += 1 }
                response.withUnsafeBytes { bytes in
                    headers.append(
                        name: UnsafeRawBufferPointer(rebasing: bytes[i..<colon]),
                        value: UnsafeRawBufferPointer(rebasing: bytes[valueStart..<lineEnd]))
                }
            }
            i = end + 1
        }
        return (headers, response.count)
    }
}

/// Wall-clock seconds since the epoch.
func wallSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
