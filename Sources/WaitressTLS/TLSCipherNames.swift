import NIOSSL

/// Cipher suite names as OpenSSL (and so mod_ssl's SSL_CIPHER, gunicorn's
/// `--ciphers`) writes them, for the suites BoringSSL offers. The list is
/// explicit because BoringSSL stops the process on a cipher string that
/// selects nothing: `ssl_ciphers` takes names from this table only.
enum TLSCipherNames {
    static let tls12: [(name: String, cipher: NIOTLSCipher)] = [
        ("ECDHE-ECDSA-AES128-GCM-SHA256", .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
        ("ECDHE-RSA-AES128-GCM-SHA256", .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
        ("ECDHE-ECDSA-AES256-GCM-SHA384", .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
        ("ECDHE-RSA-AES256-GCM-SHA384", .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
        ("ECDHE-ECDSA-CHACHA20-POLY1305", .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
        ("ECDHE-RSA-CHACHA20-POLY1305", .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
        ("ECDHE-ECDSA-AES128-SHA", .TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA),
        ("ECDHE-RSA-AES128-SHA", .TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA),
        ("ECDHE-ECDSA-AES256-SHA", .TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA),
        ("ECDHE-RSA-AES256-SHA", .TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA),
        ("AES128-GCM-SHA256", .TLS_RSA_WITH_AES_128_GCM_SHA256),
        ("AES256-GCM-SHA384", .TLS_RSA_WITH_AES_256_GCM_SHA384),
        ("AES128-SHA", .TLS_RSA_WITH_AES_128_CBC_SHA),
        ("AES256-SHA", .TLS_RSA_WITH_AES_256_CBC_SHA),
    ]

    static let tls13: [(name: String, cipher: NIOTLSCipher)] = [
        ("TLS_AES_128_GCM_SHA256", .TLS_AES_128_GCM_SHA256),
        ("TLS_AES_256_GCM_SHA384", .TLS_AES_256_GCM_SHA384),
        ("TLS_CHACHA20_POLY1305_SHA256", .TLS_CHACHA20_POLY1305_SHA256),
    ]

    /// The OpenSSL name of a negotiated suite (from the ServerHello).
    static func name(of value: UInt16) -> String? {
        (tls12 + tls13).first { $0.cipher.rawValue == value }?.name
    }

    /// `ssl_ciphers` as BoringSSL's cipher string, or the first unknown name.
    static func cipherString(_ list: String) -> Result<String, UnknownCipher> {
        var names: [String] = []
        for item in list.split(separator: ":", omittingEmptySubsequences: true) {
            let name = item.trimmingSpaces()
            guard tls12.contains(where: { $0.name == name }) else { return .failure(UnknownCipher(name: name)) }
            names.append(name)
        }
        guard !names.isEmpty else { return .failure(UnknownCipher(name: list)) }
        return .success(names.joined(separator: ":"))
    }

    struct UnknownCipher: Error {
        var name: String
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
