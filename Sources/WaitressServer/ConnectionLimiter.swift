import NIOCore

/// Waitress's `connection_limit`: when that many connections are open,
/// accepting pauses (new clients wait in the listen backlog, nothing is
/// refused) and resumes as connections close. One instance per server, shared
/// by the handlers of all its listening channels; used on the event loop only.
final class ConnectionLimiter {
    let limit: Int
    private(set) var open = 0
    private var paused = false
    private var listeners: [Channel] = []

    let logs: LogRelay

    init(limit: Int, logs: LogRelay) {
        self.limit = max(1, limit)
        self.logs = logs
    }

    func add(listener: Channel) { listeners.append(listener) }

    func opened() {
        open += 1
        if open >= limit && !paused {
            paused = true
            setAccepting(false)
            logs.post(.warning, "total open connections reached the connection limit, no longer accepting new connections")
        }
    }

    func closed() {
        open -= 1
        if open < limit && paused {
            paused = false
            setAccepting(true)
            logs.post(.info, "total open connections dropped below the connection limit, listening again")
        }
    }

    private func setAccepting(_ accepting: Bool) {
        for channel in listeners where channel.isActive {
            try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: accepting)
            if accepting { channel.read() }
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
