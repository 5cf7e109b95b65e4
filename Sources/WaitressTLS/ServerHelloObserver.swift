import NIOCore

/// Reads the cipher suite the server chose from its ServerHello, the first
/// handshake message it writes and one sent in the clear in TLS 1.2 and 1.3
/// alike (RFC 8446 §4.1.3, RFC 5246 §7.4.1.3): swift-nio-ssl does not expose
/// the negotiated cipher, and mod_ssl's SSL_CIPHER needs it. Sits between the
/// socket and the TLS handler and looks at the first write only;
/// `TLSSessionReporter` removes it once the handshake is done (removing
/// itself from inside that write loses the flight).
final class ServerHelloObserver: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// The cipher suite's IANA number; nil until seen (or if unreadable).
    private(set) var cipherSuite: UInt16?
    private var seen = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !seen, case .byteBuffer(let buffer) = unwrapOutboundIn(data) else {
            return context.write(data, promise: promise)
        }
        seen = true
        cipherSuite = Self.cipherSuite(inServerHello: buffer)
        context.write(data, promise: promise)
    }

    /// The cipher_suite field of a ServerHello at the start of `buffer`.
    static func cipherSuite(inServerHello buffer: ByteBuffer) -> UInt16? {
        var view = buffer
        // Record: type 22 (handshake), version, length.
        guard view.readInteger(as: UInt8.self) == 22, view.readInteger(as: UInt16.self) != nil,
            view.readInteger(as: UInt16.self) != nil,
            // Handshake message: type 2 (server_hello), 24-bit length.
            view.readInteger(as: UInt8.self) == 2, view.readSlice(length: 3) != nil,
            // legacy_version, random[32], legacy_session_id<0..32>.
            view.readInteger(as: UInt16.self) != nil, view.readSlice(length: 32) != nil,
            let sessionIDLength = view.readInteger(as: UInt8.self), view.readSlice(length: Int(sessionIDLength)) != nil
        else { return nil }
        return view.readInteger(as: UInt16.self)
    }
}
