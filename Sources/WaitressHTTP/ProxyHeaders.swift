// Proxy headers: what Waitress 3.0.2's proxy_headers middleware does to the
// WSGI environ, as a pure function.
//
// Behind a reverse proxy the TCP peer is the proxy, not the client. A proxy
// the operator trusts (`trusted_proxy`) reports the client's address, the Host
// it asked for and the scheme it used in X-Forwarded-* headers or in the
// standard `Forwarded` header (RFC 7239). Waitress then rewrites REMOTE_ADDR,
// SERVER_NAME, SERVER_PORT, HTTP_HOST and wsgi.url_scheme from the hops it
// trusts (`trusted_proxy_count`, counted from the right, since each proxy
// appends its own hop), and by default deletes the proxy headers it did not
// trust, so an application can never read a client-forged X-Forwarded-For.
//
// Waitress wraps the application in this middleware whenever `trusted_proxy`
// is set or `clear_untrusted_proxy_headers` is true (its default), so it runs
// on every request by default. It reads only REMOTE_ADDR, wsgi.url_scheme and
// the six proxy headers; when a request carries none of them the result is
// always "no change", which callers can use to skip it.

/// One of the six headers Waitress treats as proxy headers
/// (proxy_headers.PROXY_HEADERS). The raw value is the name used in
/// `trusted_proxy_headers`.
public enum ProxyHeader: String, CaseIterable, Hashable, Sendable {
    case xForwardedFor = "x-forwarded-for"
    case xForwardedHost = "x-forwarded-host"
    case xForwardedProto = "x-forwarded-proto"
    case xForwardedPort = "x-forwarded-port"
    /// Never interpreted; trusting it only keeps it in the environ.
    case xForwardedBy = "x-forwarded-by"
    /// RFC 7239. Waitress's Adjustments refuse to trust it together with any
    /// X-Forwarded-* header ("mutually exclusive"); the bare middleware
    /// accepts the combination, and `applyProxyHeaders` reproduces what the
    /// middleware then does.
    case forwarded = "forwarded"

    /// The name as the environ spells it without the `HTTP_` prefix:
    /// `X_FORWARDED_FOR`.
    public var wsgiName: String {
        switch self {
        case .xForwardedFor: return "X_FORWARDED_FOR"
        case .xForwardedHost: return "X_FORWARDED_HOST"
        case .xForwardedProto: return "X_FORWARDED_PROTO"
        case .xForwardedPort: return "X_FORWARDED_PORT"
        case .xForwardedBy: return "X_FORWARDED_BY"
        case .forwarded: return "FORWARDED"
        }
    }

    /// The environ key: `HTTP_X_FORWARDED_FOR`.
    public var environKey: String { "HTTP_" + wsgiName }

    /// The name as Waitress's log lines write it: `X-Forwarded-For`.
    public var displayName: String {
        switch self {
        case .xForwardedFor: return "X-Forwarded-For"
        case .xForwardedHost: return "X-Forwarded-Host"
        case .xForwardedProto: return "X-Forwarded-Proto"
        case .xForwardedPort: return "X-Forwarded-Port"
        case .xForwardedBy: return "X-Forwarded-By"
        case .forwarded: return "Forwarded"
        }
    }

    /// The header whose WSGI name (`X_FORWARDED_FOR`) this is, if any.
    public init?(wsgiName: String) {
        guard let header = ProxyHeader.allCases.first(where: { $0.wsgiName == wsgiName }) else { return nil }
        self = header
    }

    /// The header whose environ key (`HTTP_X_FORWARDED_FOR`) this is, if any.
    public init?(environKey: String) {
        guard environKey.hasPrefix("HTTP_") else { return nil }
        self.init(wsgiName: String(environKey.dropFirst(5)))
    }
}

/// What the middleware reads from the environ.
public struct ProxyInput: Equatable, Sendable {
    /// REMOTE_ADDR: the peer's IP address, or `"localhost"` on a Unix socket.
    public var remoteAddr: String
    /// wsgi.url_scheme before the middleware (the `url_scheme` option).
    public var urlScheme: String
    /// The proxy headers the request carries, with their environ values
    /// (latin-1 decoded; repeated fields already joined with ", ").
    public var headers: [ProxyHeader: String]

    public init(remoteAddr: String, urlScheme: String, headers: [ProxyHeader: String] = [:]) {
        self.remoteAddr = remoteAddr
        self.urlScheme = urlScheme
        self.headers = headers
    }

    /// Builds the input from header fields in WSGI form (`X_FORWARDED_FOR`,
    /// value). Other names are ignored. A name given more than once is joined
    /// with ", ", as Waitress's parser joins repeated fields.
    public init<S: Sequence>(remoteAddr: String, urlScheme: String, wsgiHeaders: S)
    where S.Element == (name: String, value: String) {
        var headers: [ProxyHeader: String] = [:]
        for field in wsgiHeaders {
            guard let header = ProxyHeader(wsgiName: field.name) else { continue }
            if let earlier = headers[header] {
                headers[header] = earlier + ", " + field.value
            } else {
                headers[header] = field.value
            }
        }
        self.init(remoteAddr: remoteAddr, urlScheme: urlScheme, headers: headers)
    }
}

/// The environ changes to make before calling the application. `nil` means
/// "leave as is"; nothing is ever deleted except the proxy headers in
/// `removedHeaders`.
public struct ProxyChanges: Equatable, Sendable {
    /// New REMOTE_ADDR, also the new REMOTE_HOST (Waitress keeps them equal).
    /// IPv6 addresses come without brackets.
    public var remoteAddr: String?
    /// New REMOTE_PORT, when the trusted hop carried a port.
    public var remotePort: String?
    public var serverName: String?
    public var serverPort: String?
    /// New HTTP_HOST (added if the request had no Host).
    public var httpHost: String?
    /// New wsgi.url_scheme: `"http"` or `"https"`.
    public var urlScheme: String?
    /// Trusted X-Forwarded-For, X-Forwarded-Host and Forwarded values cut to
    /// the trusted hops: Waitress stores them back so the application sees
    /// only what it may believe. Set even when the value is unchanged.
    public var rewrittenHeaders: [ProxyHeader: String]
    /// Proxy headers present in the request and removed from the environ, in
    /// `ProxyHeader.allCases` order (Waitress's order is set iteration order,
    /// which varies between processes).
    public var removedHeaders: [ProxyHeader]
    /// Messages to log at WARNING on the "waitress" logger, in order:
    /// "Unknown Forwarded token: ..." and "Removed untrusted headers (...)...".
    public var warnings: [String]

    public init(
        remoteAddr: String? = nil,
        remotePort: String? = nil,
        serverName: String? = nil,
        serverPort: String? = nil,
        httpHost: String? = nil,
        urlScheme: String? = nil,
        rewrittenHeaders: [ProxyHeader: String] = [:],
        removedHeaders: [ProxyHeader] = [],
        warnings: [String] = []
    ) {
        self.remoteAddr = remoteAddr
        self.remotePort = remotePort
        self.serverName = serverName
        self.serverPort = serverPort
        self.httpHost = httpHost
        self.urlScheme = urlScheme
        self.rewrittenHeaders = rewrittenHeaders
        self.removedHeaders = removedHeaders
        self.warnings = warnings
    }

    /// True when there is nothing to set, delete or log.
    public var isEmpty: Bool { self == ProxyChanges() }

    /// The environ items to set, in the order Waitress assigns them (which
    /// matters only for HTTP_HOST, the one key that may be new).
    public var environAssignments: [(key: String, value: String)] {
        var items: [(key: String, value: String)] = []
        for header in [ProxyHeader.xForwardedFor, .xForwardedHost, .forwarded] {
            if let value = rewrittenHeaders[header] { items.append((header.environKey, value)) }
        }
        if let urlScheme { items.append(("wsgi.url_scheme", urlScheme)) }
        if let serverName { items.append(("SERVER_NAME", serverName)) }
        if let httpHost { items.append(("HTTP_HOST", httpHost)) }
        if let serverPort { items.append(("SERVER_PORT", serverPort)) }
        if let remoteAddr { items.append(("REMOTE_ADDR", remoteAddr)) }
        if let remotePort { items.append(("REMOTE_PORT", remotePort)) }
        if let remoteAddr { items.append(("REMOTE_HOST", remoteAddr)) }
        return items
    }

    /// The environ keys to delete (`HTTP_X_FORWARDED_FOR`, ...).
    public var environRemovals: [String] { removedHeaders.map(\.environKey) }
}

/// A trusted proxy header that could not be interpreted: Waitress answers
/// 400 Bad Request and does not call the application.
public struct MalformedProxyHeader: Error, Equatable, Sendable {
    /// Names the culprit in the response body: `X-Forwarded-For`,
    /// `X-Forwarded-Host`, `X-Forwarded-Proto`, `X-Forwarded-Port`,
    /// `Forwarded`, or `Forwarded Proto=` for an unsupported proto= value.
    public var header: String
    /// Why, as Waitress logs it ("Invalid quoting in value", ...).
    public var reason: String
    /// The offending value as Waitress logs it (the whole header, or the
    /// lowercased proto).
    public var value: String
    /// REMOTE_ADDR of the proxy that sent it.
    public var remotePeer: String
    /// Messages to log at WARNING, in order; the last is the
    /// "Malformed proxy header" line (earlier ones are unknown Forwarded tokens
    /// met before the error).
    public var warnings: [String]

    public init(header: String, reason: String, value: String, remotePeer: String, warnings: [String]) {
        self.header = header
        self.reason = reason
        self.value = value
        self.remotePeer = remotePeer
        self.warnings = warnings
    }

    /// The detail of the 400 page: `Header "X-Forwarded-For" malformed.`
    public var detail: String { "Header \"\(header)\" malformed." }
}

public enum ProxyOutcome: Equatable, Sendable {
    /// Make these changes, log `warnings`, then call the application.
    case apply(ProxyChanges)
    /// Log `warnings` and answer 400 Bad Request with `detail` (Waitress's
    /// BadRequest error page); the application is not called.
    case badRequest(MalformedProxyHeader)

    /// The messages to log at WARNING, whichever the outcome.
    public var warnings: [String] {
        switch self {
        case .apply(let changes): return changes.warnings
        case .badRequest(let malformed): return malformed.warnings
        }
    }
}

/// Applies Waitress 3.0.2's proxy_headers_middleware to one request.
///
/// 1. If the peer is trusted (`ProxyConfiguration.trusts`), the trusted
///    headers are interpreted (see `ProxyHeaderInterpreter`); a malformed one
///    ends the request with 400.
/// 2. If `clearUntrustedHeaders`, every proxy header that was not trusted
///    (all six for an untrusted peer) is removed, and with `logUntrusted` the
///    removal is logged.
public func applyProxyHeaders(_ input: ProxyInput, _ config: ProxyConfiguration) -> ProxyOutcome {
    if input.headers.isEmpty { return .apply(ProxyChanges()) }

    var interpreter = ProxyHeaderInterpreter(input: input, config: config)
    var untrusted = Set(ProxyHeader.allCases)
    if config.trusts(remoteAddr: input.remoteAddr) {
        do {
            untrusted = try interpreter.run()
        } catch {
            var malformed = error
            malformed.warnings = interpreter.changes.warnings + [
                "Malformed proxy header \"\(error.header)\" from \"\(input.remoteAddr)\": "
                    + "\(error.reason) value: \(error.value)"
            ]
            return .badRequest(malformed)
        }
    }

    var changes = interpreter.changes
    if config.clearUntrustedHeaders {
        changes.removedHeaders = ProxyHeader.allCases.filter { untrusted.contains($0) && input.headers[$0] != nil }
        for header in changes.removedHeaders { changes.rewrittenHeaders[header] = nil }
        if config.logUntrusted && !changes.removedHeaders.isEmpty {
            let names = changes.removedHeaders.map(\.displayName).joined(separator: ", ")
            changes.warnings.append(
                "Removed untrusted headers (\(names)). Waitress recommends these be removed upstream.")
        }
    }
    return .apply(changes)
}
