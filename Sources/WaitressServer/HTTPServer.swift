#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Atomics
import NIOCore
import NIOPosix
import WaitressHTTP

/// State shared by all connections of one server; touched on the event loop
/// only, except for the immutable parts and `drainingFlag`.
final class ServerCore: @unchecked Sendable {
    let configuration: ServerConfiguration
    let dispatcher: RequestDispatcher
    let outbox: Outbox
    let limiter: ConnectionLimiter
    let logs: LogRelay
    let accessLog: AccessLog?
    /// nil unless metrics_listen is set (Metrics.swift).
    let metrics: ServerMetrics?
    /// Finished responses are recorded: for the access log, the metrics or both.
    let recordsResponses: Bool
    /// The loop every connection of this server runs on (the drain's grace timer).
    let eventLoop: EventLoop
    let continueBytes = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
    /// Bytes buffered for a connection whose request is in service before
    /// reading from it pauses.
    let readAheadLimit: Int
    let childOptions: ChildChannelOptions
    private var connections: [ObjectIdentifier: ConnectionHandler] = [:]
    private var dateCache = HTTPDateCache()
    private let drainGate = Gate()
    private var connectionCount = 0
    /// Set once a drain begins; read without a lock by workers writing
    /// response heads.
    let drainingFlag = ManagedAtomic<Bool>(false)
    /// Seconds a drain leaves idle keep-alive connections open (see
    /// `HTTPServer.idleGraceOnDrain`); when they have passed (infinity until
    /// a drain begins).
    var idleGrace = 0.0
    private var graceEnds = Double.infinity

    init(configuration: ServerConfiguration, dispatcher: RequestDispatcher, eventLoop: EventLoop, logs: LogRelay,
         balance: AcceptBalance? = nil, metrics: ServerMetrics? = nil) {
        self.configuration = configuration
        self.dispatcher = dispatcher
        self.outbox = Outbox(eventLoop: eventLoop)
        self.eventLoop = eventLoop
        self.logs = logs
        self.accessLog = configuration.accessLog.map { AccessLog(configuration: $0, logs: logs) }
        self.metrics = metrics
        self.recordsResponses = configuration.accessLog != nil || metrics != nil
        self.limiter = ConnectionLimiter(
            limit: configuration.connectionLimit, logs: logs, balance: balance, metrics: metrics)
        self.readAheadLimit = max(65536, configuration.recvBytes)
        self.childOptions = ChildChannelOptions(configuration: configuration)
    }

    /// Draining and past the idle grace: a connection closes once idle.
    var closesWhenIdle: Bool { drainGate.withLock { monotonicSeconds() >= graceEnds } }

    func register(_ handler: ConnectionHandler) {
        connections[ObjectIdentifier(handler)] = handler
        drainGate.withLock { connectionCount = connections.count }
    }

    func unregister(_ handler: ConnectionHandler) {
        connections[ObjectIdentifier(handler)] = nil
        drainGate.withLock {
            connectionCount = connections.count
            if connectionCount == 0 { drainGate.broadcast() }
        }
    }

    /// Closes connections idle for longer than `channel_timeout` (Waitress's
    /// maintenance sweep, every `cleanup_interval`).
    func sweep() {
        let now = monotonicSeconds()
        let cutoff = now - configuration.channelTimeout
        let headTimeout = configuration.requestHeadTimeout
        for handler in Array(connections.values) {
            handler.closeIfIdle(olderThan: cutoff)
            if headTimeout > 0 { handler.expireHead(startedBefore: now - headTimeout, seconds: Int(headTimeout)) }
        }
    }

    /// Stops new requests: idle connections close now, busy ones after their
    /// response.
    func beginDrain() {
        let grace = idleGrace
        drainGate.withLock { graceEnds = monotonicSeconds() + grace }
        // Every response whose head is written from now on says Connection: close.
        drainingFlag.store(true, ordering: .relaxed)
        guard grace > 0 else { return closeIdle() }
        eventLoop.scheduleTask(in: .nanoseconds(Int64(grace * 1e9))) { self.closeIdle() }
    }

    private func closeIdle() {
        for handler in Array(connections.values) {
            handler.closeIfIdle(olderThan: nil)
        }
    }

    func closeAll() {
        for handler in Array(connections.values) {
            handler.closeIfIdle(olderThan: nil, force: true)
        }
    }

    /// Blocks the caller (never the event loop) until no connection is open or
    /// `seconds` pass; returns whether all closed.
    func waitForConnections(seconds: Double) -> Bool {
        let deadline = monotonicSeconds() + seconds
        drainGate.lock()
        defer { drainGate.unlock() }
        while connectionCount > 0 {
            let left = deadline - monotonicSeconds()
            if left <= 0 { return false }
            drainGate.wait(seconds: min(left, 0.1))
        }
        return true
    }

    func errorResponse(_ error: RequestError, version: HTTPVersion) -> [UInt8] {
        let body = ErrorPage.body(reason: error.reason, detail: error.detail, ident: configuration.ident)
        var headers = ResponseHeaders()
        headers.append(name: "Content-Type", value: "text/plain; charset=utf-8")
        var out: [UInt8] = []
        out.reserveCapacity(256 + body.count)
        let status = ErrorPage.status(error)
        let ident = configuration.ident.map { Array($0.utf8) }
        _ = status.withUnsafeBytes { statusBytes in
            ResponseHead.write(
                into: &out,
                request: .init(version: version, isHead: false, keepAlive: false, keepAliveToken: false),
                status: statusBytes, headers: headers, contentLength: body.count, forceClose: true,
                ident: ident, date: dateCache.current())
        }
        out.append(contentsOf: body)
        return out
    }
}

/// The network half of the server: one NIO event loop thread serving every
/// listener, with the request path handed to a RequestDispatcher.
///
/// Lifecycle (docs/architecture.md §5): `start()` adopts the listening sockets; `stop()`
/// stops accepting, lets in-service requests finish and flush (bounded by
/// `drainSeconds`), closes what is left and stops the event loop. Neither
/// blocks the event loop; both must be called without the GIL held.
public final class HTTPServer: @unchecked Sendable {
    public enum State { case initial, running, stopped }

    let configuration: ServerConfiguration
    let listeners: [ListenerSpec]
    let group: MultiThreadedEventLoopGroup
    let core: ServerCore
    private var serverChannels: [Channel] = []
    private var sweepTask: RepeatedTask?
    public private(set) var state = State.initial

    /// Log records from the event loop, for a thread that can call Python.
    public let logs = LogRelay()

    /// `balance`: shared with the other worker processes serving the same
    /// sockets, under a supervisor (see `AcceptBalance`).
    /// `metrics` with `metricsDescriptor` (a bound, listening socket): the
    /// metrics_listen endpoint (MetricsEndpoint.swift).
    public init(configuration: ServerConfiguration, listeners: [ListenerSpec], dispatcher: RequestDispatcher,
                balance: AcceptBalance? = nil, metrics: ServerMetrics? = nil, metricsDescriptor: Int32? = nil) {
        self.configuration = configuration
        self.listeners = ListenerSpec.securing(listeners, with: configuration)
        self.metricsDescriptor = metrics == nil ? nil : metricsDescriptor
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.core = ServerCore(
            configuration: configuration, dispatcher: dispatcher, eventLoop: group.next(), logs: logs,
            balance: balance, metrics: metrics)
    }

    let metricsDescriptor: Int32?

    /// Descriptors kept free beside the connections: listeners, the event
    /// loop's own, spill files, what the application opens.
    static let descriptorReserve = 64

    /// Puts the calling thread under SCHED_BATCH (Linux; a no-op elsewhere or
    /// where the kernel refuses, as a seccomp filter may). A woken batch
    /// thread does not preempt the thread running on its CPU: when a worker
    /// ends a response, the loop writes it once that worker waits (for its
    /// next task, the GIL or I/O) or at the scheduler's next tick, instead of
    /// switching at once, then switching back for the next request. On a
    /// busy CPU those two switches per request, and the caches they cool,
    /// cost a Flask request a third of its CPU time (docs/deployment.md).
    static func scheduleAsBatch() {
        #if os(Linux)
        let batch: Int32 = 3  // SCHED_BATCH (<linux/sched.h>; glibc shows it only under _GNU_SOURCE)
        var parameters = sched_param()
        parameters.sched_priority = 0
        _ = sched_setscheduler(0, batch, &parameters)
        #endif
    }

    public func start() throws {
        let core = self.core
        let configuration = self.configuration
        if configuration.batchScheduledLoop {
            try group.next().submit { Self.scheduleAsBatch() }.wait()
        }
        if let soft = raiseOpenFileLimit(), configuration.connectionLimit + Self.descriptorReserve > soft {
            logs.post(
                .warning,
                "connection_limit (\(configuration.connectionLimit)) does not fit in the open-file limit (RLIMIT_NOFILE \(soft)) with \(Self.descriptorReserve) descriptors to spare: accepting will pause when descriptors run out"
            )
        }
        do {
            try core.accessLog?.start()
            for listener in listeners {
                // The Python socket object keeps its descriptor; NIO gets its own.
                let descriptor = dup(listener.descriptor)
                guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "dup") }
                let bootstrap = ServerBootstrap(group: group)
                    .serverChannelOption(ChannelOptions.backlog, value: Int32(clamping: configuration.backlog))
                    // Accepts per read: set by the limiter, at most what
                    // connection_limit leaves room for (ConnectionLimiter.acceptBatch).
                    .serverChannelOption(ChannelOptions.maxMessagesPerRead, value: 1)
                    .serverChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            core.limiter.add(listener: channel)
                            try channel.pipeline.syncOperations.addHandler(AcceptCounter(limiter: core.limiter))
                            try channel.pipeline.syncOperations.addHandler(AcceptErrorHandler(limiter: core.limiter))
                        }
                    }
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try core.childOptions.apply(to: channel)
                            if listener.isSecure, let security = configuration.security {
                                try security.secure(channel)
                            }
                            try channel.pipeline.syncOperations.addHandler(
                                ConnectionHandler(core: core, listener: listener))
                        }
                    }
                let channel = try bootstrap.withBoundSocket(descriptor).wait()
                // NIO's adoption calls listen() with its default backlog
                // before options apply; set the configured one again.
                _ = listen(descriptor, Int32(clamping: configuration.backlog))
                serverChannels.append(channel)
            }
            if let metrics = core.metrics, let descriptor = metricsDescriptor {
                serverChannels.append(try startMetrics(metrics, descriptor))
            }
        } catch {
            for channel in serverChannels { try? channel.close().wait() }
            try? group.syncShutdownGracefully()
            core.accessLog?.stop()
            state = .stopped
            throw error
        }
        group.next().execute { core.limiter.started() }
        let interval = TimeAmount.nanoseconds(Int64(max(0.05, configuration.cleanupInterval) * 1e9))
        sweepTask = group.next().scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            core.sweep()
        }
        state = .running
    }

    /// Serves the metrics endpoint on the same event loop.
    private func startMetrics(_ metrics: ServerMetrics, _ descriptor: Int32) throws -> Channel {
        let own = dup(descriptor)
        guard own >= 0 else { throw IOError(errnoCode: errno, reason: "dup") }
        let queues = serverChannels.enumerated().compactMap { index, channel -> MetricsListener? in
            guard !listeners[index].isUnix, let address = channel.localAddress, let ip = address.ipAddress,
                  let port = address.port
            else { return nil }
            let host = ip.contains(":") ? "[\(ip)]" : ip
            return MetricsListener(name: "\(host):\(port)", descriptor: listeners[index].descriptor)
        }
        let tracker = MetricsConnections()
        let ident = configuration.ident
        let idle = TimeAmount.nanoseconds(Int64(max(1, configuration.channelTimeout) * 1e9))
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 64)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: idle))
                    try channel.pipeline.syncOperations.addHandler(
                        MetricsHandler(metrics: metrics, listeners: queues, ident: ident, tracker: tracker))
                }
            }
            .withBoundSocket(own).wait()
        _ = listen(own, 64)
        return channel
    }

    /// Set before `start()`: how long a drain keeps idle keep-alive
    /// connections open. 0 (the default, Waitress's behaviour): they close at
    /// once and busy ones after their response. Otherwise (a worker under the
    /// supervisor, rolled over while clients keep sending) responses that
    /// promised keep-alive leave the connection open, so that the client's
    /// next request, already on its way, is answered (with `Connection:
    /// close`: see `ServerCore.drainingFlag`) instead of meeting a
    /// closed socket; connections still idle after the grace close.
    public var idleGraceOnDrain: Double {
        get { core.idleGrace }
        set { core.idleGrace = newValue }
    }

    /// Stops accepting; idle connections close now (or after
    /// `idleGraceOnDrain`), busy ones after their response. Returns at once.
    public func beginStop() {
        guard state == .running else { return }
        state = .stopped
        let channels = serverChannels
        let core = self.core
        try? group.next().submit {
            core.limiter.stopped()
            for channel in channels { channel.close(promise: nil) }
            core.beginDrain()
        }.wait()
    }

    /// Waits up to `seconds` for every connection to finish; returns whether
    /// they all did.
    public func waitForDrain(seconds: Double) -> Bool {
        core.waitForConnections(seconds: seconds)
    }

    /// Closes whatever is still open and stops the event loop thread.
    public func finishStop() {
        let core = self.core
        if !core.waitForConnections(seconds: 0) {
            try? group.next().submit { core.closeAll() }.wait()
            _ = core.waitForConnections(seconds: 1)
        }
        sweepTask?.cancel()
        core.outbox.close()
        try? group.syncShutdownGracefully()
        core.accessLog?.stop()
    }

    /// Reopens the access log file by its path (SIGUSR1, for logrotate).
    public func reopenAccessLog() {
        core.accessLog?.reopen()
    }

    /// Lines waiting for a Python logger (`access_log = logger:NAME`).
    public func takeRelayedAccessLines() -> [[UInt8]] {
        core.accessLog?.takeRelayed() ?? []
    }
}

/// The options of every accepted connection, set synchronously in the child
/// channel initializer. ServerBootstrap's `childChannelOption`s are applied
/// through a chain of futures with type-erased values: about 27,000
/// instructions per connection for these three under callgrind, against a
/// few hundred here.
struct ChildChannelOptions {
    let recvAllocator: AdaptiveRecvByteBufferAllocator
    /// Reads while a large Content-Length body arrives (ConnectionHandler.adjustReadSize).
    static let bodyReadSize = 262_144
    let bodyRecvAllocator = FixedSizeRecvByteBufferAllocator(capacity: ChildChannelOptions.bodyReadSize)
    let writeBufferWaterMark: ChannelOptions.Types.WriteBufferWaterMark

    init(configuration: ServerConfiguration) {
        recvAllocator = AdaptiveRecvByteBufferAllocator(
            minimum: 1024, initial: max(1024, configuration.recvBytes),
            maximum: max(65536, configuration.recvBytes))
        writeBufferWaterMark = .init(
            low: max(1, configuration.outbufHighWatermark / 2),
            high: max(2, configuration.outbufHighWatermark))
    }

    /// On the child's event loop, before its handlers are added.
    /// (TCP_NODELAY is not set here: accepted sockets inherit it from the
    /// listener, which ServerBootstrap sets; NIO ignores it on Unix sockets.)
    func apply(to channel: Channel) throws {
        guard let options = channel.syncOptions else { throw ChannelError.operationUnsupported }
        try options.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        try options.setOption(ChannelOptions.recvAllocator, value: recvAllocator)
        try options.setOption(ChannelOptions.writeBufferWaterMark, value: writeBufferWaterMark)
    }
}
