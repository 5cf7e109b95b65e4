import CWaitressBoringSSL

/// `ssl_ciphers` and cipher suite names, by BoringSSL itself (the BoringSSL linked into the
/// extension, through CWaitressBoringSSL): names are OpenSSL's, as mod_ssl's SSL_CIPHER and
/// gunicorn's `--ciphers` write them.
enum TLSCipherNames {
    /// The OpenSSL name of a negotiated suite (from the ServerHello).
    static func name(of value: UInt16) -> String? {
        waitress_tls_cipher_name(value).map { String(cString: $0) }
    }

    /// The TLS 1.2 suites an OpenSSL cipher string (`ECDHE+AESGCM:!aNULL`, `HIGH:!MD5`, a list
    /// of names) selects, in order, checked with BoringSSL's parser on a scratch context: the
    /// string given to swift-nio-ssl then cannot be refused (which would stop the process).
    static func select(_ list: String) -> Result<[String], CipherListError> {
        var names = [CChar](repeating: 0, count: 4096)
        var reason = [CChar](repeating: 0, count: 128)
        let count = waitress_tls_cipher_list(list, &names, names.count, &reason, reason.count)
        guard count > 0 else {
            let why = String(cString: reason)
            return .failure(CipherListError(list: list, selectsNothing: why == "NO_CIPHER_MATCH", reason: why))
        }
        return .success(String(cString: names).split(separator: ":").map(String.init))
    }

    struct CipherListError: Error, CustomStringConvertible {
        var list: String
        /// The string parsed but names no suite BoringSSL has for TLS 1.2.
        var selectsNothing: Bool
        var reason: String

        var description: String {
            selectsNothing
                ? "ssl_ciphers: '\(list)' selects no TLS 1.2 cipher suite (TLS 1.3's are not configurable; see docs/tls.md)"
                : "ssl_ciphers: '\(list)' is not an OpenSSL cipher string (\(reason); see docs/tls.md)"
        }
    }
}
