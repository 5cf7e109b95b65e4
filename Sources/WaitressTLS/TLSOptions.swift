/// The TLS options of a server (Adjustments' ssl_* options, docs/tls.md),
/// already coerced by the Python package; files are read by `TLSContextLoader`.
public struct TLSOptions: Sendable {
    /// Client certificates (Adjustments' `ssl_verify`).
    public enum Verification: String, Sendable {
        /// None asked for.
        case none
        /// Asked for; one that is presented must verify against `caFile`.
        case optional
        /// The handshake fails without one that verifies against `caFile`.
        case required
    }

    public enum MinimumVersion: String, Sendable {
        case tls12 = "TLSv1.2"
        case tls13 = "TLSv1.3"
    }

    /// PEM: the server's certificate, then the intermediates of its chain.
    public var certificateFile: String
    /// PEM private key, possibly encrypted (`keyPassword`).
    public var keyFile: String
    public var keyPassword: String?
    /// PEM certificates of the authorities client certificates must chain to.
    public var caFile: String?
    public var verification = Verification.none
    public var minimumVersion = MinimumVersion.tls12
    /// TLS 1.2 cipher suites: an OpenSSL cipher string (`TLSCipherNames.select`);
    /// nil: swift-nio-ssl's defaults. TLS 1.3's suites are not configurable.
    public var ciphers: String?

    public init(certificateFile: String, keyFile: String) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }
}
