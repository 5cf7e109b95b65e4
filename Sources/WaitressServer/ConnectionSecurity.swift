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
