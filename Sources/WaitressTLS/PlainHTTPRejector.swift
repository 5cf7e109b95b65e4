import NIOCore

/// The first handler of a TLS connection: every TLS client starts with a
/// handshake record (content type 22, RFC 8446 §5.1). A client that starts
/// with anything else is most likely speaking plain HTTP to the TLS port: as
/// nginx does, it gets a plain-text 400 that says so, and the connection is
/// closed, where the TLS handler would only fail the handshake. Once the
/// first byte has been seen the handler removes itself.
final class PlainHTTPRejector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let handshakeRecord: UInt8 = 22

    static let page: [UInt8] = {
        let body = "Bad Request\n\nThis port speaks HTTPS: a plain HTTP request was sent to it.\n"
        let head =
            "HTTP/1.0 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n"
        return Array((head + body).utf8)
    }()

    private var decided = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if decided { return }  // after the 400: dropped until the close
        let buffer = unwrapInboundIn(data)
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return }
        decided = true
        if first == Self.handshakeRecord {
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        // Only a letter can start an HTTP request line; other bytes get no page.
        let isLetter = (first >= 65 && first <= 90) || (first >= 97 && first <= 122)
        guard isLetter else {
            context.close(promise: nil)
            return
        }
        var page = context.channel.allocator.buffer(capacity: Self.page.count)
        page.writeBytes(Self.page)
        // Written from here, below the TLS handler: it goes out as it is.
        context.writeAndFlush(wrapOutboundOut(page)).whenComplete { _ in
            context.close(mode: .output, promise: nil)
            // What the client still sends is read and dropped for a moment
            // (a close with unread bytes would reset the connection and
            // could lose the page).
            context.eventLoop.scheduleTask(in: .seconds(2)) { context.close(promise: nil) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Still here: the client closed before a handshake, or after the 400.
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
