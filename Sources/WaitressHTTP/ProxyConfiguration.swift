// The proxy-header options (trusted_proxy, trusted_proxy_count,
// trusted_proxy_headers, clear_untrusted_proxy_headers,
// log_untrusted_proxy_headers) that decide what `applyProxyHeaders` believes.

/// The proxy options of Waitress's Adjustments, as the middleware receives them.
public struct ProxyConfiguration: Equatable, Sendable {
    /// The peer address whose proxy headers are believed: compared for exact
    /// equality with REMOTE_ADDR. `"*"` trusts every peer. Clients on a Unix
    /// socket have REMOTE_ADDR `"localhost"`, so `"localhost"` trusts them
    /// (and nothing else: a TCP peer's REMOTE_ADDR is an IP address).
    public var trustedProxy: String?
    /// How many hops, counted from the right of X-Forwarded-For /
    /// X-Forwarded-Host / Forwarded, come from trusted proxies. Used as
    /// Python's `hops[-count:]`: 0 keeps every hop, and a negative count drops
    /// that many hops from the left (the bare middleware does not validate it).
    public var trustedProxyCount: Int
    /// Lower-case names from `ProxyHeader`'s raw values. Matched exactly, like
    /// the middleware; unknown names are ignored (Adjustments rejects them).
    public var trustedProxyHeaders: Set<String>
    /// Remove the proxy headers that were not trusted (`clear_untrusted_proxy_headers`).
    public var clearUntrustedHeaders: Bool
    /// Log a warning naming the removed headers (`log_untrusted_proxy_headers`).
    public var logUntrusted: Bool

    /// The defaults are the middleware's own (`proxy_headers_middleware`).
    /// Adjustments differ in one place: with `trusted_proxy` set and no
    /// `trusted_proxy_headers`, it trusts `x-forwarded-proto` (with a
    /// DeprecationWarning); pass the headers it settled on.
    public init(
        trustedProxy: String? = nil,
        trustedProxyCount: Int = 1,
        trustedProxyHeaders: Set<String> = [],
        clearUntrustedHeaders: Bool = true,
        logUntrusted: Bool = false
    ) {
        self.trustedProxy = trustedProxy
        self.trustedProxyCount = trustedProxyCount
        self.trustedProxyHeaders = trustedProxyHeaders
        self.clearUntrustedHeaders = clearUntrustedHeaders
        self.logUntrusted = logUntrusted
    }

    /// Whether the peer's proxy headers are interpreted at all.
    public func trusts(remoteAddr: String) -> Bool {
        guard let trustedProxy else { return false }
        return trustedProxy == "*" || ProxyText.scalars(trustedProxy) == ProxyText.scalars(remoteAddr)
    }

    func isTrusted(_ header: ProxyHeader) -> Bool {
        trustedProxyHeaders.contains(header.rawValue)
    }
}
