#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore

/// When the listeners accept. Three reasons pause them:
///
/// - Waitress's `connection_limit`: when that many connections are open,
///   accepting pauses (new clients wait in the listen backlog, nothing is
///   refused) and resumes as connections close.
/// - Out of descriptors (an accept failed with EMFILE or ENFILE): accepting
///   pauses for `backoff` and is then retried, or at once when a connection
///   closes (which frees a descriptor). One error line per episode, with the
///   limit, and one line when accepting works again. An episode ends only once
///   accepts have worked for `episodeQuiet` without another failure: with
///   descriptors hovering at the limit, each freed one lets a single accept
///   through before the next fails, and that is still the same episode.
/// - Under a supervisor, `balance`: this worker holds clearly more
///   connections than another worker that accepts from the same sockets, so
///   it lets that one accept for a moment (`AcceptBalance`).
///
/// One instance per server, shared by the handlers of all its listening
/// channels (descriptors are a process-wide resource); event loop only.
final class ConnectionLimiter {
    let limit: Int
    private(set) var open = 0
    private var paused = false
    private var backingOff = false
    private var yielding = false
    private var stopping = false
    private var yieldEnd: Scheduled<Void>?
    /// Yields in the current second (see `maxYieldsPerSecond`).
    private var yieldWindow = NIODeadline.uptimeNanoseconds(0)
    private var yieldsInWindow = 0
    private(set) var accepting = true
    private var listeners: [Channel] = []
    private var retry: Scheduled<Void>?
    /// When the current out-of-descriptors episode began, and failed accepts in it.
    private var episodeStart: NIODeadline?
    private var failures = 0
    /// The first accept since the episode's latest failure, if any.
    private var recovered: NIODeadline?
    private var episodeEndCheck: Scheduled<Void>?

    /// Connections accepted in one read of a listener at most (NIO's
    /// `maxMessagesPerRead` on the listening channel): never more than the
    /// connection limit leaves room for (`acceptBatch`), so the limit stays
    /// exact; 1 under a supervisor, so that balancing sees every accept.
    static let maxAcceptBatch = 16
    private var batch = 1

    static let backoff = TimeAmount.milliseconds(250)
    static let episodeQuiet = TimeAmount.seconds(1)
    /// A worker that publishes few connections but does not take any (its
    /// loop is stuck until worker_timeout replaces it) delays this one's
    /// accepts by at most this many `AcceptBalance.pause`s a second.
    static let maxYieldsPerSecond = 25

    let logs: LogRelay
    /// Shared with the other workers of a supervisor (nil in a lone process).
    let balance: AcceptBalance?

    let metrics: ServerMetrics?

    init(limit: Int, logs: LogRelay, balance: AcceptBalance? = nil, metrics: ServerMetrics? = nil) {
        self.limit = max(1, limit)
        self.logs = logs
        self.balance = balance
        self.metrics = metrics
    }

    /// The listeners accept from now on (publishes this worker's count).
    func started() { balance?.publish(open: open) }

    /// The listeners closed: other workers stop counting on this one.
    func stopped() {
        stopping = true
        balance?.withdraw()
        yieldEnd?.cancel()
        yieldEnd = nil
    }

    func add(listener: Channel) {
        listeners.append(listener)
        try? listener.syncOptions?.setOption(ChannelOptions.maxMessagesPerRead, value: UInt(batch))
        updateBatch()
    }

    /// How many connections one read of a listener may accept now. NIO fixes
    /// a read's count when the read begins (`1...maxMessagesPerRead`), and
    /// every accept of it passes through `opened()` before the next, on this
    /// loop, so a read begun with `limit - open` or fewer never goes past
    /// the limit; `opened()` pauses the listeners when it is reached.
    var acceptBatch: Int {
        balance != nil ? 1 : max(1, min(Self.maxAcceptBatch, limit - open))
    }

    private func updateBatch() {
        let wanted = acceptBatch
        guard wanted != batch else { return }
        batch = wanted
        for channel in listeners {
            try? channel.syncOptions?.setOption(ChannelOptions.maxMessagesPerRead, value: UInt(wanted))
        }
    }

    func opened() {
        open += 1
        updateBatch()
        if let metrics = metrics {
            metrics.add(.connectionsAccepted)
            metrics.set(.connectionsOpen, open)
        }
        if let balance = balance, !stopping {
            balance.publish(open: open)
            if !yielding && balance.shouldYield(open: open) { yieldToOthers() }
        }
        if episodeStart != nil {
            if recovered == nil { recovered = .now() }
            scheduleEpisodeEndCheck(in: Self.episodeQuiet)
        }
        if open >= limit && !paused {
            paused = true
            metrics?.add(.acceptPausesLimit)
            update()
            logs.post(.warning, "total open connections reached the connection limit, no longer accepting new connections")
        }
    }

    func closed() {
        open -= 1
        updateBatch()
        metrics?.set(.connectionsOpen, open)
        if let balance = balance, !stopping {
            balance.publish(open: open)
            if yielding && !balance.shouldYield(open: open + 1) {
                yieldEnd?.cancel()
                endYield()
            }
        }
        if open < limit && paused {
            paused = false
            update()
            logs.post(.info, "total open connections dropped below the connection limit, listening again")
        }
        if backingOff {
            // A descriptor was freed: try again now rather than at the deadline.
            retry?.cancel()
            endBackoff()
        }
    }

    private func scheduleEpisodeEndCheck(in delay: TimeAmount) {
        guard episodeEndCheck == nil, let loop = listeners.first?.eventLoop else { return }
        episodeEndCheck = loop.scheduleTask(in: delay) { [self] in
            episodeEndCheck = nil
            checkEpisodeEnd()
        }
    }

    /// Ends the out-of-descriptors episode once accepts have worked for
    /// `episodeQuiet` since the latest failure; until then it looks again
    /// (a failure meanwhile clears `recovered`, and the next accept sets it).
    private func checkEpisodeEnd() {
        guard let start = episodeStart, let since = recovered else { return }
        let quiet = NIODeadline.now() - since
        if quiet < Self.episodeQuiet {
            scheduleEpisodeEndCheck(in: Self.episodeQuiet - quiet)
            return
        }
        let tenths = (since - start).nanoseconds / 100_000_000
        logs.post(
            .info,
            "accepting connections again after \(tenths / 10).\(tenths % 10) s (\(failures) failed accept attempts)")
        episodeStart = nil
        recovered = nil
        failures = 0
    }

    func acceptFailed(errno code: Int32, eventLoop: EventLoop) {
        failures += 1
        recovered = nil
        if episodeStart == nil {
            episodeStart = .now()
            let name = code == EMFILE ? "EMFILE" : code == ENFILE ? "ENFILE" : "errno \(code)"
            logs.post(
                .error,
                "cannot accept connections: \(String(cString: strerror(code))) (\(name); open-file limit \(openFileLimitDescription())); retrying every \(Self.backoff.nanoseconds / 1_000_000) ms, new clients wait in the listen queue"
            )
        }
        guard !backingOff else { return }
        backingOff = true
        metrics?.add(.acceptPausesDescriptors)
        update()
        retry = eventLoop.scheduleTask(in: Self.backoff) { [self] in
            endBackoff()
        }
    }

    private func endBackoff() {
        retry = nil
        backingOff = false
        update()
    }

    private func yieldToOthers() {
        guard let loop = listeners.first?.eventLoop else { return }
        let now = loop.now
        if now - yieldWindow >= .seconds(1) {
            yieldWindow = now
            yieldsInWindow = 0
        }
        guard yieldsInWindow < Self.maxYieldsPerSecond else { return }
        yieldsInWindow += 1
        yielding = true
        metrics?.add(.acceptPausesBalance)
        update()
        yieldEnd = loop.scheduleTask(in: AcceptBalance.pause) { [self] in
            endYield()
        }
    }

    private func endYield() {
        yieldEnd = nil
        yielding = false
        update()
    }

    private func update() {
        let wanted = !paused && !backingOff && !yielding
        guard wanted != accepting else { return }
        accepting = wanted
        metrics?.set(.acceptingPaused, wanted ? 0 : 1)
        for channel in listeners where channel.isActive {
            try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: wanted)
            if wanted { channel.read() }
        }
    }
}

/// Counts accepted connections for the ConnectionLimiter.
final class AcceptCounter: ChannelInboundHandler {
    typealias InboundIn = Channel
    let limiter: ConnectionLimiter

    init(limiter: ConnectionLimiter) { self.limiter = limiter }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let child = unwrapInboundIn(data)
        limiter.opened()
        let limiter = self.limiter
        child.closeFuture.whenComplete { _ in limiter.closed() }
        context.fireChannelRead(data)
    }
}
