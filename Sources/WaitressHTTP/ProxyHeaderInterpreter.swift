// Interpreting the proxy headers of a trusted peer: Waitress 3.0.2's
// parse_proxy_headers, step for step, including its quirks (they are
// observable by applications, so they are kept; each is noted where it occurs).

/// One forwarded-element of a `Forwarded` header (RFC 7239 §4): the
/// parameters Waitress knows, lowercased and unquoted, "" when absent.
private struct ForwardedElement {
    var by: ProxyScalars = []  // RFC 7239 §5.1; parsed (so it must be well quoted) but unused
    var forAddress: ProxyScalars = []  // §5.2
    var host: ProxyScalars = []  // §5.3
    var proto: ProxyScalars = []  // §5.4
}

/// Runs once per request for a trusted peer; `changes` collects the environ
/// updates and warnings as they are decided.
struct ProxyHeaderInterpreter {
    let input: ProxyInput
    let config: ProxyConfiguration
    private(set) var changes = ProxyChanges()

    // The state parse_proxy_headers threads through its steps.
    private var forwardedHost: ProxyScalars = []
    private var forwardedProto: ProxyScalars = []
    private var forwardedPort: ProxyScalars = []
    private var clientAddr: ProxyScalars = []
    /// Which header `clientAddr` came from, to name it if it proves unusable.
    private var clientAddrSource = ProxyHeader.xForwardedFor

    init(input: ProxyInput, config: ProxyConfiguration) {
        self.input = input
        self.config = config
    }

    /// Interprets the trusted headers and returns the proxy headers that
    /// remain untrusted (to be cleared).
    mutating func run() throws(MalformedProxyHeader) -> Set<ProxyHeader> {
        var untrusted = Set(ProxyHeader.allCases)

        if config.isTrusted(.xForwardedFor), let raw = input.headers[.xForwardedFor] {
            try readForwardedFor(raw)
            untrusted.remove(.xForwardedFor)
        }
        if config.isTrusted(.xForwardedHost), let raw = input.headers[.xForwardedHost] {
            try readForwardedHost(raw)
            untrusted.remove(.xForwardedHost)
        }
        // Proto and port count as trusted (and so are never cleared) even when
        // absent; an absent one reads as "".
        if config.isTrusted(.xForwardedProto) {
            forwardedProto = try singleValue(.xForwardedProto)
            untrusted.remove(.xForwardedProto)
        }
        if config.isTrusted(.xForwardedPort) {
            forwardedPort = try singleValue(.xForwardedPort)
            untrusted.remove(.xForwardedPort)
        }
        if config.isTrusted(.xForwardedBy) {
            untrusted.remove(.xForwardedBy)
        }

        // Trusting Forwarded makes every X-Forwarded-* header untrusted again
        // (only reachable through the bare middleware; Adjustments forbids
        // trusting both kinds).
        var forwarded: ProxyScalars = []
        if config.isTrusted(.forwarded) {
            forwarded = input.headers[.forwarded].map(ProxyText.scalars) ?? []
            untrusted = Set(ProxyHeader.allCases)
            untrusted.remove(.forwarded)
        }
        // A present, non-empty Forwarded header takes priority.
        if !forwarded.isEmpty {
            try readForwarded(forwarded)
        }

        try applyProto(fromForwarded: !forwarded.isEmpty)
        applyHost()
        if !forwardedPort.isEmpty {
            changes.serverPort = ProxyText.string(forwardedPort)
        }
        try applyClientAddress()
        return untrusted
    }

    // MARK: - X-Forwarded-*

    /// X-Forwarded-For: `client, proxy1, proxy2`; each hop is stripped and
    /// unquoted, and one with a colon but no dot and no closing bracket is
    /// taken for a bare IPv6 address and bracketed (so "2001:db8::1" stays
    /// whole, while "192.0.2.1:8080" later splits into address and port). The
    /// leftmost trusted hop is the client.
    private mutating func readForwardedFor(_ raw: String) throws(MalformedProxyHeader) {
        let hops = ProxyText.split(ProxyText.scalars(raw), on: ",")
        var addresses: [ProxyScalars] = []
        for hop in hops {
            let address = try unquote(ProxyText.strip(hop), .xForwardedFor, raw)
            if !address.contains("."), address.contains(":"), address.last != "]" {
                addresses.append(["["] + address + ["]"])
            } else {
                addresses.append(address)
            }
        }
        guard let client = ProxyHops.trusted(addresses, count: config.trustedProxyCount).first else {
            throw malformed(.xForwardedFor, Self.emptyHopsReason, raw)
        }
        clientAddr = client
        clientAddrSource = .xForwardedFor
        changes.rewrittenHeaders[.xForwardedFor] = Self.trustedHopsText(hops, count: config.trustedProxyCount)
    }

    /// X-Forwarded-Host: like X-Forwarded-For, without the IPv6 handling; the
    /// leftmost trusted hop is the host the client asked for.
    private mutating func readForwardedHost(_ raw: String) throws(MalformedProxyHeader) {
        let hops = ProxyText.split(ProxyText.scalars(raw), on: ",")
        var hosts: [ProxyScalars] = []
        for hop in hops {
            hosts.append(try unquote(ProxyText.strip(hop), .xForwardedHost, raw))
        }
        guard let host = ProxyHops.trusted(hosts, count: config.trustedProxyCount).first else {
            throw malformed(.xForwardedHost, Self.emptyHopsReason, raw)
        }
        forwardedHost = host
        changes.rewrittenHeaders[.xForwardedHost] = Self.trustedHopsText(hops, count: config.trustedProxyCount)
    }

    /// X-Forwarded-Proto and X-Forwarded-Port carry one value: it is unquoted
    /// (not stripped) and may not contain a comma.
    private func singleValue(_ header: ProxyHeader) throws(MalformedProxyHeader) -> ProxyScalars {
        let raw = input.headers[header] ?? ""
        let value = try unquote(ProxyText.scalars(raw), header, raw)
        if value.contains(",") {
            throw malformed(header, "Unspecified behavior for multiple values found in header", raw)
        }
        return value
    }

    // MARK: - Forwarded (RFC 7239)

    /// `Forwarded: for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8::1]:4711"`
    ///
    /// Elements are split on "," and pairs on ";" before any unquoting
    /// (Waitress's simplification: a quoted value containing either breaks
    /// apart). Each pair is lowercased whole, value included (RFC 7239 §4 makes
    /// only the parameter name case-insensitive), must contain "=", and may
    /// not have whitespace around the name or the value. Empty pairs are
    /// skipped; unknown parameters are logged and ignored. Obfuscated
    /// identifiers (§6.3, `_hidden`) and `unknown` (§6.2) are taken as they
    /// are.
    ///
    /// Of the trusted elements, the oldest (leftmost) one that has a `for`,
    /// `host` or `proto` supplies it. Waitress never takes a port from
    /// Forwarded except through `host`, and ignores X-Forwarded-Port once a
    /// Forwarded header is interpreted.
    private mutating func readForwarded(_ forwarded: ProxyScalars) throws(MalformedProxyHeader) {
        let raw = input.headers[.forwarded] ?? ""
        let rawElements = ProxyText.split(forwarded, on: ",")
        var elements: [ForwardedElement] = []
        for rawElement in rawElements {
            var element = ForwardedElement()
            for rawPair in ProxyText.split(ProxyText.strip(rawElement), on: ";") {
                let pair = ProxyText.lower(rawPair)
                if pair.isEmpty { continue }
                guard let equals = pair.firstIndex(of: "=") else {
                    throw malformed(.forwarded, "Invalid forwarded-pair missing \"=\"", raw)
                }
                let name = Array(pair[..<equals])
                let value = Array(pair[(equals + 1)...])
                if ProxyText.strip(name) != name {
                    throw malformed(.forwarded, "Token may not be surrounded by whitespace", raw)
                }
                if ProxyText.strip(value) != value {
                    throw malformed(.forwarded, "Value may not be surrounded by whitespace", raw)
                }
                switch ProxyText.string(name) {
                case "by": element.by = try unquote(value, .forwarded, raw)
                case "for": element.forAddress = try unquote(value, .forwarded, raw)
                case "host": element.host = try unquote(value, .forwarded, raw)
                case "proto": element.proto = try unquote(value, .forwarded, raw)
                default: changes.warnings.append("Unknown Forwarded token: " + ProxyText.string(name))
                }
            }
            elements.append(element)
        }

        // Waitress parses into the same variables it falls back on below, so
        // the last element's host and proto (trusted or not) are the defaults
        // and any X-Forwarded-Port value is gone.
        forwardedHost = elements.last?.host ?? []
        forwardedProto = elements.last?.proto ?? []
        forwardedPort = []

        changes.rewrittenHeaders[.forwarded] = Self.trustedHopsText(rawElements, count: config.trustedProxyCount)
        for element in ProxyHops.trusted(elements, count: config.trustedProxyCount).reversed() {
            if !element.forAddress.isEmpty {
                clientAddr = element.forAddress
                clientAddrSource = .forwarded
            }
            if !element.host.isEmpty { forwardedHost = element.host }
            if !element.proto.isEmpty { forwardedProto = element.proto }
        }
    }

    // MARK: - Environ updates

    /// The scheme must be http or https (in any case); it sets wsgi.url_scheme
    /// and, when no port was given, implies the port (80 or 443).
    private mutating func applyProto(fromForwarded: Bool) throws(MalformedProxyHeader) {
        guard !forwardedProto.isEmpty else { return }
        let proto = ProxyText.lower(forwardedProto)
        let scheme = ProxyText.string(proto)
        guard scheme == "http" || scheme == "https" else {
            throw MalformedProxyHeader(
                header: fromForwarded ? "Forwarded Proto=" : ProxyHeader.xForwardedProto.displayName,
                reason: "unsupported proto value", value: scheme, remotePeer: input.remoteAddr, warnings: [])
        }
        changes.urlScheme = scheme
        if forwardedPort.isEmpty {
            forwardedPort = ProxyText.scalars(scheme == "http" ? "80" : "443")
        }
    }

    /// A forwarded host becomes SERVER_NAME and HTTP_HOST. A port in it
    /// ("example.com:8443", "[::1]:8080") wins over X-Forwarded-Port and the
    /// proto's default port, even when empty ("example.com:" leaves
    /// SERVER_PORT alone). Without one, HTTP_HOST gains ":port" unless the
    /// port is the default of the (possibly just forwarded) scheme. A
    /// bracketed IPv6 host keeps its brackets in SERVER_NAME.
    private mutating func applyHost() {
        guard !forwardedHost.isEmpty else { return }
        let hostText = ProxyText.string(forwardedHost)
        if forwardedHost.contains(":"), forwardedHost.last != "]" {
            let (name, port) = ProxyText.splitAtLastColon(forwardedHost)
            forwardedPort = port
            changes.serverName = ProxyText.string(ProxyText.strip(name))
            changes.httpHost = hostText
            return
        }
        changes.serverName = hostText
        changes.httpHost = hostText
        guard !forwardedPort.isEmpty else { return }
        let port = ProxyText.string(forwardedPort)
        let scheme = ProxyText.scalars(changes.urlScheme ?? input.urlScheme)
        let isSchemeDefault =
            (port == "80" && scheme == ProxyText.scalars("http"))
            || (port == "443" && scheme == ProxyText.scalars("https"))
        if !isSchemeDefault {
            changes.httpHost = hostText + ":" + port
        }
    }

    /// The client address becomes REMOTE_ADDR and REMOTE_HOST, brackets
    /// removed from an IPv6 address (RFC 7239 §6: `"[2001:db8::1]:4711"`). A
    /// colon not inside brackets starts a port, which becomes REMOTE_PORT
    /// (so an unbracketed IPv6 address in Forwarded loses its last group to
    /// the port, as in Waitress).
    private mutating func applyClientAddress() throws(MalformedProxyHeader) {
        guard !clientAddr.isEmpty else { return }
        let address: ProxyScalars
        if clientAddr.contains(":"), clientAddr.last != "]" {
            let (name, port) = ProxyText.splitAtLastColon(clientAddr)
            address = ProxyText.strip(name)
            changes.remotePort = ProxyText.string(ProxyText.strip(port))
        } else {
            address = ProxyText.strip(clientAddr)
        }
        // Waitress indexes the first character here and fails with IndexError
        // (a 500 from the server) when nothing is left, e.g. for `for=":80"`
        // or a quoted all-blank hop; this answers 400 for the header instead.
        guard !address.isEmpty else {
            throw malformed(clientAddrSource, "string index out of range", input.headers[clientAddrSource] ?? "")
        }
        changes.remoteAddr = ProxyText.string(Self.stripBrackets(address))
    }

    // MARK: - Helpers

    /// Python's IndexError text when `trustedProxyCount` is negative enough
    /// to leave no hop (Waitress catches it as a malformed header).
    private static let emptyHopsReason = "list index out of range"

    private static func stripBrackets(_ address: ProxyScalars) -> ArraySlice<Unicode.Scalar> {
        if address.count >= 2, address.first == "[", address.last == "]" {
            return address.dropFirst().dropLast()
        }
        return address[...]
    }

    /// The raw hops kept in the environ: the trusted ones joined with "," and
    /// stripped at both ends (inner spacing stays as it was).
    private static func trustedHopsText(_ hops: [ProxyScalars], count: Int) -> String {
        ProxyText.string(ProxyText.strip(ProxyText.join(ProxyHops.trusted(hops, count: count), with: ",")))
    }

    private func unquote(
        _ value: ProxyScalars, _ header: ProxyHeader, _ raw: String
    ) throws(MalformedProxyHeader) -> ProxyScalars {
        do {
            return try ProxyQuoting.undquote(value)
        } catch {
            throw malformed(header, InvalidQuoting.reason, raw)
        }
    }

    private func malformed(_ header: ProxyHeader, _ reason: String, _ value: String) -> MalformedProxyHeader {
        MalformedProxyHeader(
            header: header.displayName, reason: reason, value: value, remotePeer: input.remoteAddr, warnings: [])
    }
}

enum ProxyHops {
    /// Python's `hops[-count:]`: the last `count` hops; all of them when
    /// `count` is 0 (since -0 is 0); with a negative count, all but the first
    /// `-count`.
    static func trusted<T>(_ hops: [T], count: Int) -> ArraySlice<T> {
        if count == 0 { return hops[...] }
        if count > 0 { return hops.suffix(count) }
        return hops.dropFirst(Int(clamping: count.magnitude))
    }
}
