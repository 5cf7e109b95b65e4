import NIOCore
import WaitressHTTP

/// The `metrics_listen` socket's connections: `GET /metrics` (or HEAD) is
/// answered with the Prometheus text of the whole server; other paths get
/// 404, other methods 405, a malformed request 400 and a close. Keep-alive
/// works as a scraper expects. Served on the event loop: a scrape renders a
/// few kilobytes from memory and reads /proc, it never waits for a worker
/// thread or the GIL, so a server whose threads are all busy still answers.
final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let maxHeadBytes = 8192
    /// Open scrape connections beyond this are closed at once.
    static let maxConnections = 32

    let metrics: ServerMetrics
    let listeners: [MetricsListener]
    let ident: String?
    let tracker: MetricsConnections
    private var buffer: ByteBuffer?
    private var parser = RequestHeadParser(maxHeaderSize: MetricsHandler.maxHeadBytes, maxBodySize: 0)
    private var dateCache = HTTPDateCache()
    /// The current request asked for keep-alive with a Connection token (HTTP/1.0).
    private var keepAliveToken = false

    init(metrics: ServerMetrics, listeners: [MetricsListener], ident: String?, tracker: MetricsConnections) {
        self.metrics = metrics
        self.listeners = listeners
        self.ident = ident
        self.tracker = tracker
    }

    func channelActive(context: ChannelHandlerContext) {
        tracker.open += 1
        if tracker.open > Self.maxConnections { context.close(promise: nil) }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        tracker.open -= 1
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffer == nil { buffer = incoming } else { buffer!.writeBuffer(&incoming) }
        while var pending = buffer, pending.readableBytes > 0, context.channel.isActive {
            let result = pending.withUnsafeReadableBytes { parser.parse($0) }
            switch result {
            case .needMore:
                return
            case .failure(let error, let version):
                buffer = nil
                respond(context, version: version, status: "\(error.statusCode) \(error.reason)", body: [],
                        keepAlive: false, isHead: false)
                return
            case .head(let head, let consumed):
                pending.moveReaderIndex(forwardBy: consumed)
                buffer = pending.readableBytes > 0 ? pending : nil
                answer(context, head)
            }
        }
    }

    private func answer(_ context: ChannelHandlerContext, _ head: RequestHead) {
        let (method, path) = head.storage.withUnsafeBytes { bytes in
            (Array(bytes[head.method]), Array(bytes[head.path]))
        }
        // A request with a body is answered, then the connection closes (the
        // body is not read).
        let keepAlive = head.keepAlive && head.contentLength == 0 && !head.isChunked
        keepAliveToken = head.connectionKeepAliveToken
        let isGet = method == Array("GET".utf8) || method == Array("HEAD".utf8)
        if path != Array("/metrics".utf8) {
            respond(context, version: head.version, status: "404 Not Found", body: Array("Not Found: scrape /metrics\n".utf8),
                    keepAlive: keepAlive, isHead: head.isHead)
        } else if !isGet {
            respond(context, version: head.version, status: "405 Method Not Allowed", body: Array("Method Not Allowed\n".utf8),
                    keepAlive: keepAlive, isHead: false, extra: [("Allow", "GET, HEAD")])
        } else {
            respond(context, version: head.version, status: "200 OK", body: metrics.render(listeners: listeners),
                    keepAlive: keepAlive, isHead: head.isHead, contentType: ServerMetrics.contentType)
        }
    }

    private func respond(
        _ context: ChannelHandlerContext, version: HTTPVersion, status: String, body: [UInt8], keepAlive: Bool,
        isHead: Bool, contentType: String = "text/plain; charset=utf-8", extra: [(String, String)] = []
    ) {
        var headers = ResponseHeaders()
        headers.append(name: "Content-Type", value: contentType)
        for (name, value) in extra { headers.append(name: name, value: value) }
        var out: [UInt8] = []
        out.reserveCapacity(256 + body.count)
        let ident = self.ident.map { Array($0.utf8) }
        _ = Array(status.utf8).withUnsafeBytes { statusBytes in
            ResponseHead.write(
                into: &out,
                request: .init(version: version, isHead: isHead, keepAlive: keepAlive, keepAliveToken: keepAliveToken),
                status: statusBytes, headers: headers, contentLength: body.count, forceClose: !keepAlive,
                ident: ident, date: dateCache.current())
        }
        if !isHead { out.append(contentsOf: body) }
        var bytes = context.channel.allocator.buffer(capacity: out.count)
        bytes.writeBytes(out)
        let written = context.writeAndFlush(wrapOutboundOut(bytes))
        if !keepAlive {
            buffer = nil
            written.whenComplete { _ in context.close(promise: nil) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent || (event as? ChannelEvent) == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Scrape connections open on one server (event loop only).
final class MetricsConnections {
    var open = 0
}
