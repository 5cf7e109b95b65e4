import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import WaitressServer

/// TLS for a server's TCP listeners, plugged into WaitressServer through its
/// `ConnectionSecurity` seam. Each accepted connection gets, from the socket
/// inwards: `PlainHTTPRejector` (a plain-HTTP client gets a 400 page, not a
/// hang), `ServerHelloObserver` (the negotiated cipher), swift-nio-ssl's
/// server handler, and `TLSSessionReporter` (the environ's SSL_* variables,
/// handshake failures closed quietly; it leaves once the handshake is done,
/// and a ragged EOF after it is told apart by `isQuietDisconnect`).
///
/// The context can be replaced while serving (`reload()`, SIGHUP): new
/// connections use the new one, established ones keep theirs.
public final class TLSSecurity: ConnectionSecurity {
    public let options: TLSOptions
    private let context: NIOLockedValueBox<NIOSSLContext>
    /// One array per distinct set of variables without a client certificate
    /// (a protocol and a cipher), at most `sharedSetLimit`: connections with
    /// the same set hand over the same array storage, by which WaitressPython
    /// finds the set's environ template without comparing strings.
    private let sharedSets = NIOLockedValueBox<[[(name: String, value: String)]]>([])
    static let sharedSetLimit = 64

    /// Reads and checks every file now; throws with a one-line message.
    public init(options: TLSOptions) throws(TLSSetupError) {
        self.options = options
        self.context = NIOLockedValueBox(try TLSContextLoader.load(options))
    }

    /// Reads the certificate and key files again. On failure the current
    /// context stays and the returned message says why; nil on success.
    public func reload() -> String? {
        do {
            let fresh = try TLSContextLoader.load(options)
            context.withLockedValue { $0 = fresh }
            return nil
        } catch {
            return "\(error.description); the previous certificate stays in use"
        }
    }

    public func secure(_ channel: Channel) throws {
        let sslContext = context.withLockedValue { $0 }
        let observer = ServerHelloObserver()
        let operations = channel.pipeline.syncOperations
        try operations.addHandler(PlainHTTPRejector())
        try operations.addHandler(observer)
        try operations.addHandler(NIOSSLServerHandler(context: sslContext))
        try operations.addHandler(TLSSessionReporter(observer: observer, security: self))
    }

    /// `variables` or an equal array handed out before (once per handshake).
    func shared(_ variables: [(name: String, value: String)]) -> [(name: String, value: String)] {
        sharedSets.withLockedValue { sets in
            for set in sets where set.elementsEqual(variables, by: { $0.name == $1.name && $0.value == $1.value }) {
                return set
            }
            if sets.count < Self.sharedSetLimit { sets.append(variables) }
            return variables
        }
    }

    /// A ragged EOF after the handshake (no close_notify) is a plain disconnect.
    public func isQuietDisconnect(_ error: Error) -> Bool {
        if let ssl = error as? NIOSSLError, case .uncleanShutdown = ssl { return true }
        return false
    }
}
