import NIOCore

/// The seam a transport-security layer plugs into (the WaitressTLS target), as
/// Hummingbird keeps HummingbirdTLS out of its core: this target knows neither
/// TLS nor its library, only that some listeners' connections get handlers of
/// their own in front of `ConnectionHandler`.
///
/// Set as `ServerConfiguration.security`; every TCP listener is then secured
/// (`ListenerSpec.isSecure`), Unix sockets never are (docs/tls.md).
public protocol ConnectionSecurity: AnyObject, Sendable {
    /// Adds the handlers that secure a newly accepted connection; called on
    /// the connection's event loop before `ConnectionHandler` is added.
    func secure(_ channel: Channel) throws

    /// Whether `error`, caught on a secured connection after it was secured,
    /// only says that the peer went away without closing the security layer
    /// (a TLS ragged EOF, which many clients do): nothing is logged, and the
    /// input-closed event that follows ends the connection. The handlers
    /// `secure` added need not stay in the pipeline for this.
    func isQuietDisconnect(_ error: Error) -> Bool
}

extension ConnectionSecurity {
    public func isQuietDisconnect(_ error: Error) -> Bool { false }
}

/// Fired down the pipeline once the connection is secured (the TLS handshake
/// completed): the CGI variables that describe it (mod_ssl's names, such as
/// SSL_PROTOCOL), which every request's environ on the connection carries.
public struct ConnectionSecured: Sendable {
    public var variables: [(name: String, value: String)]

    public init(variables: [(name: String, value: String)]) {
        self.variables = variables
    }
}
