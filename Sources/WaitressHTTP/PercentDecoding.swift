/// Percent-decodes a path to bytes (RFC 3986 §2.1), as urllib's
/// `unquote_to_bytes` does: a `%` not followed by two hex digits stays as is.
/// PATH_INFO is these bytes decoded as latin-1 (PEP 3333).
public func percentDecode(_ bytes: UnsafeRawBufferPointer, into out: inout [UInt8]) {
    out.reserveCapacity(bytes.count)
    var i = 0
    while i < bytes.count {
        let b = bytes[i]
        if b == UInt8(ascii: "%"), i + 2 < bytes.count + 0, let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2]) {
            out.append(UInt8(hi << 4 | lo))
            i += 3
        } else {
            out.append(b)
            i += 1
        }
    }
}

/// Whether the bytes contain a `%` (the common path needs no decoding).
public func needsPercentDecoding(_ bytes: UnsafeRawBufferPointer) -> Bool {
    bytes.contains(UInt8(ascii: "%"))
}
