import NIOCore
import NIOSSL
import NIOTLS
import WaitressServer

/// Between the TLS handler and `ConnectionHandler`: once the handshake is
/// done it tells the connection what the environ says of it, with mod_ssl's
/// variable names (the convention Apache, mod_wsgi and uWSGI share):
/// HTTPS=on is set per listener; here SSL_PROTOCOL, SSL_CIPHER and, with a
/// verified client certificate, SSL_CLIENT_S_DN and SSL_CLIENT_CERT.
///
/// A handshake that fails (an old protocol version, no client certificate
/// where one is required, a client that gave up) closes the connection
/// without a "Socket error" log line: it never became an HTTP connection.
///
/// Once the handshake is done and reported it removes itself (with the
/// `ServerHelloObserver`): each request's reads then go from the TLS handler
/// straight to `ConnectionHandler`, one pipeline hop fewer (about 200
/// instructions per keep-alive request under callgrind). A client that then
/// closes without close_notify (many do) is a plain disconnect:
/// `TLSSecurity.isQuietDisconnect` tells `ConnectionHandler` so.
final class TLSSessionReporter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let observer: ServerHelloObserver
    private let security: TLSSecurity
    private var established = false

    init(observer: ServerHelloObserver, security: TLSSecurity) {
        self.observer = observer
        self.security = security
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
            established = true
            let secured = ConnectionSecured(variables: variables(context))
            context.pipeline.syncOperations.removeHandler(observer, promise: nil)
            context.fireUserInboundEventTriggered(secured)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if !established {
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
    }

    private func variables(_ context: ChannelHandlerContext) -> [(name: String, value: String)] {
        guard let handler = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self) else {
            return []
        }
        var result: [(name: String, value: String)] = []
        switch handler.tlsVersion {
        case .tlsv13: result.append(("SSL_PROTOCOL", "TLSv1.3"))
        case .tlsv12: result.append(("SSL_PROTOCOL", "TLSv1.2"))
        case .tlsv11: result.append(("SSL_PROTOCOL", "TLSv1.1"))
        case .tlsv1: result.append(("SSL_PROTOCOL", "TLSv1"))
        case .none: break
        }
        if let suite = observer.cipherSuite, let name = TLSCipherNames.name(of: suite) {
            result.append(("SSL_CIPHER", name))
        }
        guard let certificate = handler.peerCertificate else {
            return security.shared(result)
        }
        result.append(("SSL_CLIENT_S_DN", ClientCertificateText.distinguishedName(certificate.subjectName)))
        if let der = try? certificate.toDERBytes() {
            result.append(("SSL_CLIENT_CERT", ClientCertificateText.pem(der)))
        }
        return result
    }
}
