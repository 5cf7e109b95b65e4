/// One header field of a parsed request, as ranges into `RequestHead.storage`.
/// The name has already been turned into its WSGI form (upper case, `-` as `_`).
public struct HeaderField: Sendable, Equatable {
    public var name: Range<Int>
    public var value: Range<Int>
}

/// A parsed request head. Bytes stay bytes: the head is copied once into
/// `storage` and everything else is a range into it, so parsing allocates two
/// arrays per request whatever the number of fields.
public struct RequestHead: Sendable {
    public var storage: [UInt8]
    public var method: Range<Int>
    /// The request-target as sent (REQUEST_URI).
    public var target: Range<Int>
    /// The path of the target, still percent-encoded; for absolute-form the path
    /// after the authority; empty for CONNECT's authority-form.
    public var path: Range<Int>
    public var query: Range<Int>
    public var version: HTTPVersion
    /// Fields in arrival order; repeated names joined into the first with ", ",
    /// names containing `_` dropped, Transfer-Encoding removed (the body reaches
    /// the app de-chunked, with CONTENT_LENGTH).
    public var fields: [HeaderField]
    /// Declared Content-Length, 0 when absent; unused when `isChunked`.
    public var contentLength: Int
    public var isChunked: Bool
    public var expectContinue: Bool
    /// Whether the client wants the connection kept open after this request
    /// (RFC 9112 §9.3: the version's default, then the Connection tokens).
    public var keepAlive: Bool
    /// Whether the request's Connection header listed `keep-alive`; an HTTP/1.0
    /// response then says `Connection: Keep-Alive`.
    public var connectionKeepAliveToken: Bool

    @inlinable
    public func withBytes<R>(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    public func bytes(_ range: Range<Int>) -> [UInt8] { Array(storage[range]) }

    public var isHead: Bool {
        method.count == 4 && storage[method.lowerBound] == UInt8(ascii: "H")
            && storage[method.lowerBound + 1] == UInt8(ascii: "E")
            && storage[method.lowerBound + 2] == UInt8(ascii: "A")
            && storage[method.lowerBound + 3] == UInt8(ascii: "D")
    }

    /// Whether a field is one of the six proxy headers (X-Forwarded-For,
    /// -Host, -Proto, -Port, -By, Forwarded): only then can the proxy rules
    /// change anything.
    public var hasProxyHeaderField: Bool {
        storage.withUnsafeBytes { bytes in
            fields.contains { field in
                let name = UnsafeRawBufferPointer(rebasing: bytes[field.name])
                if name.count == 9 { return bytesEqual(name, "FORWARDED") }
                guard name.count >= 14, bytesEqual(UnsafeRawBufferPointer(rebasing: name[0..<12]), "X_FORWARDED_") else {
                    return false
                }
                let rest = UnsafeRawBufferPointer(rebasing: name[12...])
                return bytesEqual(rest, "FOR") || bytesEqual(rest, "HOST") || bytesEqual(rest, "PROTO")
                    || bytesEqual(rest, "PORT") || bytesEqual(rest, "BY")
            }
        }
    }

    /// The value of the first field with this WSGI-form name, if any.
    public func field(_ wsgiName: String) -> [UInt8]? {
        let name = Array(wsgiName.utf8)
        for field in fields where field.name.count == name.count && storage[field.name].elementsEqual(name) {
            return Array(storage[field.value])
        }
        return nil
    }
}
