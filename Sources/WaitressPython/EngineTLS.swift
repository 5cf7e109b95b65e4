@preconcurrency import CPython
import WaitressServer
import WaitressTLS

/// TLS's Python side: reading the ssl_* adjustments into `TLSOptions`, the
/// `check_tls(adj)` module function, and `Engine.reload_certificates()`.
enum TLSBridge {
    /// The options, nil when ssl_certfile is unset; a Python error for a
    /// value of the wrong type.
    static func options(_ string: (String, String?) -> String?) -> TLSOptions?? {
        guard let certificate = string("ssl_certfile", nil) else { return .some(nil) }
        var options = TLSOptions(certificateFile: certificate, keyFile: string("ssl_keyfile", nil) ?? certificate)
        options.keyPassword = string("ssl_keyfile_password", nil)
        options.caFile = string("ssl_ca_certs", nil)
        options.ciphers = string("ssl_ciphers", nil)
        let verify = string("ssl_verify", "none") ?? "none"
        let version = string("ssl_min_version", "TLSv1.2") ?? "TLSv1.2"
        guard let verification = TLSOptions.Verification(rawValue: verify) else {
            _ = raise(PyExc_ValueError, "ssl_verify must be none, optional or required, not '\(verify)'")
            return nil
        }
        guard let minimum = TLSOptions.MinimumVersion(rawValue: version) else {
            _ = raise(PyExc_ValueError, "ssl_min_version must be TLSv1.2 or TLSv1.3, not '\(version)'")
            return nil
        }
        options.verification = verification
        options.minimumVersion = minimum
        return .some(options)
    }

    /// The security layer for `options`, or nil with ValueError set (its
    /// message names the file).
    static func security(_ options: TLSOptions) -> TLSSecurity? {
        do {
            return try TLSSecurity(options: options)
        } catch {
            _ = raise(PyExc_ValueError, error.description)
            return nil
        }
    }

    /// `check_tls(adj)`: reads every TLS file the adjustments name; raises
    /// ValueError saying which one cannot be used.
    static let check: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, adj in
        guard let adj = adj else { return nil }
        guard let parsed = options({ EngineType.stringAttribute(adj, $0, $1) }) else { return nil }
        if let options = parsed, security(options) == nil { return nil }
        return wp_new_none()
    }
}
