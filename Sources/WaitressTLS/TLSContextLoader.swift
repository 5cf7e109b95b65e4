#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CWaitressBoringSSL
import NIOSSL

/// A TLS option that cannot be used, said in one line that names the option
/// and its file (the CLI prints it and exits 1; a reload logs it).
public struct TLSSetupError: Error, CustomStringConvertible {
    public var description: String
}

/// Builds the server's `NIOSSLContext` from `TLSOptions`, reading every file
/// itself first so that each failure says which file and why (BoringSSL's
/// own errors name neither).
enum TLSContextLoader {
    /// ALPN (RFC 7301): only HTTP/1.1 is served.
    static let applicationProtocols = ["http/1.1"]

    static func load(_ options: TLSOptions) throws(TLSSetupError) -> NIOSSLContext {
        let chain = try certificates("ssl_certfile", options.certificateFile)
        let key = try privateKey(options)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = options.minimumVersion == .tls13 ? .tlsv13 : .tlsv12
        configuration.applicationProtocols = applicationProtocols
        // A close waits this long for the client's close_notify.
        configuration.shutdownTimeout = .seconds(2)
        if let ciphers = options.ciphers {
            switch TLSCipherNames.select(ciphers) {
            case .success: configuration.cipherSuites = ciphers
            case .failure(let error): throw TLSSetupError(description: error.description)
            }
        }
        switch options.verification {
        case .none:
            configuration.certificateVerification = .none
        case .optional, .required:
            guard let caFile = options.caFile else {
                throw TLSSetupError(description: "ssl_verify=\(options.verification.rawValue) needs ssl_ca_certs")
            }
            let authorities = try certificates("ssl_ca_certs", caFile)
            configuration.trustRoots = .certificates(authorities)
            configuration.sendCANameList = true
            configuration.certificateVerification =
                options.verification == .required ? .noHostnameVerification : .optionalVerification
        }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch NIOSSLError.failedToLoadPrivateKey {
            // The key parsed above: BoringSSL refuses it for the certificate.
            throw TLSSetupError(
                description: "ssl_keyfile \(options.keyFile) does not match the certificate in ssl_certfile \(options.certificateFile)")
        } catch {
            throw TLSSetupError(description: "TLS set-up failed for ssl_certfile \(options.certificateFile): \(error)")
        }
        tune(context)
        return context
    }

    /// TLS 1.3 session tickets sent after a full handshake (BoringSSL's default is 2): one is
    /// enough for a client to resume its next connection, which brings it a new ticket.
    static let sessionTickets: UInt32 = 1

    /// What a new connection costs (`waitress_tls_tune_server_context`, docs/tls.md): set on
    /// the context's SSL_CTX before any connection is made from it. swift-nio-ssl keeps that
    /// pointer in a private stored property, read here by reflection once per context.
    static func tune(_ context: NIOSSLContext) {
        guard let sslContext = Mirror(reflecting: context).descendant("sslContext") as? OpaquePointer else {
            return
        }
        _ = waitress_tls_tune_server_context(UnsafeMutableRawPointer(sslContext), sessionTickets)
    }

    /// The whole file, or an error naming it and the system's reason.
    static func read(_ option: String, _ path: String) throws(TLSSetupError) -> [UInt8] {
        guard let file = fopen(path, "rb") else {
            throw TLSSetupError(description: "\(option): cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count > 0 { bytes.append(contentsOf: chunk[0..<count]) }
            if count < chunk.count {
                if ferror(file) != 0 {
                    throw TLSSetupError(description: "\(option): cannot read \(path): \(String(cString: strerror(errno)))")
                }
                return bytes
            }
            if bytes.count > 1 << 24 {
                throw TLSSetupError(description: "\(option): \(path) is larger than 16 MiB")
            }
        }
    }

    static func certificates(_ option: String, _ path: String) throws(TLSSetupError) -> [NIOSSLCertificate] {
        let bytes = try read(option, path)
        let chain = (try? NIOSSLCertificate.fromPEMBytes(bytes)) ?? []
        guard !chain.isEmpty else {
            throw TLSSetupError(description: "\(option): \(path) holds no PEM certificate")
        }
        return chain
    }

    static func privateKey(_ options: TLSOptions) throws(TLSSetupError) -> NIOSSLPrivateKey {
        let path = options.keyFile
        let bytes = try read("ssl_keyfile", path)
        // A callback always, even without a password: BoringSSL would
        // otherwise prompt on the terminal for an encrypted key.
        let password = Array((options.keyPassword ?? "").utf8)
        if let key = try? NIOSSLPrivateKey(bytes: bytes, format: .pem, passphraseCallback: { set in set(password) }) {
            return key
        }
        let encrypted = bytes.containsASCII("ENCRYPTED")
        if encrypted && options.keyPassword == nil {
            throw TLSSetupError(description: "ssl_keyfile: \(path) is encrypted; give its password (ssl_keyfile_password)")
        }
        if encrypted {
            throw TLSSetupError(description: "ssl_keyfile_password does not decrypt ssl_keyfile \(path)")
        }
        throw TLSSetupError(description: "ssl_keyfile: \(path) holds no PEM private key")
    }
}

extension Array where Element == UInt8 {
    fileprivate func containsASCII(_ text: String) -> Bool {
        let needle = Array(text.utf8)
        guard needle.count <= count else { return false }
        for start in 0...(count - needle.count) where self[start..<(start + needle.count)].elementsEqual(needle) {
            return true
        }
        return false
    }
}
