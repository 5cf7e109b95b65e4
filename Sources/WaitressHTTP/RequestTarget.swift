/// The request-target forms of RFC 9112 §3.2 and the authority syntax of
/// RFC 3986 §3.2 that Host and absolute-form share, checked on bytes.
///
/// Waitress hands any target to `urllib.parse.urlsplit` and serves what comes
/// out: `GET foo/bar`, `GET example.com:443`, `GET *` and `PUT s://]ufd/:` all
/// reach the app with some PATH_INFO. Here a target must have the form its
/// method calls for, or the request is a 400:
///
/// - origin-form (`/path?query`) for every method but CONNECT;
/// - absolute-form (`scheme://authority/path?query`, RFC 9112 §3.2.2) likewise,
///   with an authority that parses, a non-empty host (RFC 9110 §4.2.1) and no
///   userinfo (RFC 9110 §4.2.4);
/// - authority-form (`host:port`, RFC 9112 §3.2.3) for CONNECT only, and CONNECT
///   only with it: PATH_INFO and QUERY_STRING are empty, REQUEST_URI is the
///   authority, and the app decides what to answer (this server never tunnels);
/// - asterisk-form (exactly `*`, RFC 9112 §3.2.4) for OPTIONS only.
///
/// A fragment (`#`) never gets this far: it is not in the request-target's byte
/// class, so the request line is rejected where it is scanned.
enum RequestTarget {
    case parts(path: Range<Int>, query: Range<Int>)
    case invalid(StaticString)
}

/// Splits a request-target into its path and query (still percent-encoded), or
/// says why it does not fit `method`. The common case, origin-form for a method
/// other than CONNECT, costs one byte compare and the scan for `?`.
func splitTarget(
    _ bytes: UnsafeMutableRawBufferPointer, _ target: Range<Int>, method: Range<Int>
) -> RequestTarget {
    let isConnect = method.count == 7 && bytesEqual(UnsafeRawBufferPointer(rebasing: bytes[method]), "CONNECT")
    let first = bytes[target.lowerBound]
    if isConnect {
        // RFC 9112 §3.2.3: CONNECT takes authority-form only, with a port
        // (RFC 9110 §9.3.6: an empty or invalid port is rejected).
        guard isValidAuthority(UnsafeRawBufferPointer(rebasing: bytes[target]), requirePort: true) else {
            return .invalid("CONNECT requires an authority-form request-target (host:port)")
        }
        return .parts(path: target.upperBound..<target.upperBound, query: target.upperBound..<target.upperBound)
    }
    var pathStart = target.lowerBound
    let end = target.upperBound
    if first != UInt8(ascii: "/") {
        if first == UInt8(ascii: "*") && target.count == 1 {
            guard method.count == 7 && bytesEqual(UnsafeRawBufferPointer(rebasing: bytes[method]), "OPTIONS") else {
                return .invalid("Asterisk-form request-target is only allowed for OPTIONS")
            }
            return .parts(path: target, query: end..<end)
        }
        // absolute-form: scheme "://" authority path-abempty [ "?" query ],
        // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986 §3.1).
        var i = pathStart
        if isASCIILetter(first) {
            i += 1
            while i < end, isASCIILetter(bytes[i]) || isASCIIDigit(bytes[i])
                || bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: ".")
            {
                i += 1
            }
        }
        guard i > pathStart, i + 2 < end,
            bytes[i] == UInt8(ascii: ":"), bytes[i + 1] == UInt8(ascii: "/"), bytes[i + 2] == UInt8(ascii: "/")
        else {
            // Not origin-form nor absolute-form: `foo/bar`, `*foo`, `example.com:443`.
            if isValidAuthority(UnsafeRawBufferPointer(rebasing: bytes[target]), requirePort: true) {
                return .invalid("Authority-form request-target is only allowed for CONNECT")
            }
            return .invalid("Request-target is invalid")
        }
        i += 3
        let authorityStart = i
        while i < end, bytes[i] != UInt8(ascii: "/") && bytes[i] != UInt8(ascii: "?") { i += 1 }
        let authority = UnsafeRawBufferPointer(rebasing: bytes[authorityStart..<i])
        if authority.contains(UInt8(ascii: "@")) {
            return .invalid("Request-target must not contain userinfo")
        }
        guard isValidAuthority(authority, requirePort: false) else {
            return .invalid("Request-target is invalid")
        }
        pathStart = i
    }
    var i = pathStart
    while i < end, bytes[i] != UInt8(ascii: "?") { i += 1 }
    let path = pathStart..<i
    let query = i < end ? (i + 1)..<end : end..<end
    return .parts(path: path, query: query)
}

/// authority without userinfo, RFC 3986 §3.2.2-§3.2.3: host [ ":" port ], where
/// host is an IP-literal (`[` IPv6 or IPvFuture `]`), an IPv4 address or a
/// reg-name (unreserved, pct-encoded, sub-delims; IPv4 is a reg-name too) and
/// port is *DIGIT. This is the Host field's syntax (RFC 9110 §7.2) and
/// absolute-form's authority. The host must not be empty (RFC 9110 §4.2.1);
/// `requirePort` asks for authority-form's `host ":" port` with a port of
/// 1 to 5 digits up to 65535 (RFC 9112 §3.2.3, RFC 9110 §9.3.6).
func isValidAuthority(_ bytes: UnsafeRawBufferPointer, requirePort: Bool) -> Bool {
    let count = bytes.count
    var i = 0
    if count > 0, bytes[0] == UInt8(ascii: "[") {
        guard let close = bytes.firstIndex(of: UInt8(ascii: "]")),
            isValidIPLiteral(UnsafeRawBufferPointer(rebasing: bytes[1..<close]))
        else { return false }
        i = close + 1
    } else {
        byteClassTable.withUnsafeBufferPointer { table in
            while i < count {
                let b = bytes[i]
                if table[Int(b)] & ByteClass.regName != 0 {
                    i += 1
                } else if b == UInt8(ascii: "%"), i + 2 < count,
                    table[Int(bytes[i + 1])] & ByteClass.hexDigit != 0, table[Int(bytes[i + 2])] & ByteClass.hexDigit != 0
                {
                    i += 3
                } else {
                    break
                }
            }
        }
        if i == 0 { return false }
    }
    if i == count { return !requirePort }
    guard bytes[i] == UInt8(ascii: ":") else { return false }
    i += 1
    let portStart = i
    var port = 0
    while i < count {
        guard isASCIIDigit(bytes[i]) else { return false }
        if requirePort {
            port = port * 10 + Int(bytes[i] - UInt8(ascii: "0"))
            if port > 65535 { return false }
        }
        i += 1
    }
    return !requirePort || i > portStart
}

/// A non-empty Host value (RFC 9110 §7.2) as `isValidAuthority` checks it, with
/// the usual `name` or `name:port` (reg-name, IPv4) decided inline on the
/// parser's byte table; IP-literals and pct-encoded names take the full check.
@inline(__always)
func isValidHost(_ value: UnsafeRawBufferPointer, _ table: UnsafeBufferPointer<UInt8>) -> Bool {
    let count = value.count
    var i = 0
    while i < count, table[Int(value[i])] & ByteClass.regName != 0 { i += 1 }
    if i == count { return true }
    if i > 0, value[i] == UInt8(ascii: ":") {
        i += 1
        while i < count, isASCIIDigit(value[i]) { i += 1 }
        if i == count { return true }
    }
    return isValidAuthority(value, requirePort: false)
}

/// The inside of `[...]`: IPv6address or IPvFuture (RFC 3986 §3.2.2).
func isValidIPLiteral(_ bytes: UnsafeRawBufferPointer) -> Bool {
    if let first = bytes.first, first == UInt8(ascii: "v") || first == UInt8(ascii: "V") {
        // IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
        var i = 1
        while i < bytes.count, hexValue(bytes[i]) != nil { i += 1 }
        guard i > 1, i < bytes.count, bytes[i] == UInt8(ascii: ".") else { return false }
        i += 1
        guard i < bytes.count else { return false }
        while i < bytes.count {
            let b = bytes[i]
            guard byteClassTable[Int(b)] & ByteClass.regName != 0 || b == UInt8(ascii: ":") else { return false }
            i += 1
        }
        return true
    }
    return isValidIPv6(bytes)
}

/// IPv6address of RFC 3986 §3.2.2: eight h16 pieces (1-4 hex digits) separated
/// by ":", the last two possibly an IPv4 address, with at most one "::" that
/// stands for one or more zero pieces.
func isValidIPv6(_ bytes: UnsafeRawBufferPointer) -> Bool {
    let count = bytes.count
    var pieces = 0
    var elided = false
    var i = 0
    if count >= 2, bytes[0] == UInt8(ascii: ":"), bytes[1] == UInt8(ascii: ":") {
        elided = true
        i = 2
    } else if count == 0 || bytes[0] == UInt8(ascii: ":") {
        return false
    }
    while i < count {
        var j = i
        while j < count, j - i < 5, hexValue(bytes[j]) != nil { j += 1 }
        if j < count, bytes[j] == UInt8(ascii: ".") {
            // ls32 as an IPv4 address: only as the last two pieces.
            guard isValidIPv4(UnsafeRawBufferPointer(rebasing: bytes[i..<count])) else { return false }
            pieces += 2
            break
        }
        guard j > i, j - i <= 4 else { return false }
        pieces += 1
        i = j
        if i == count { break }
        guard bytes[i] == UInt8(ascii: ":") else { return false }
        i += 1
        if i < count, bytes[i] == UInt8(ascii: ":") {
            guard !elided else { return false }
            elided = true
            i += 1
        } else if i == count {
            return false
        }
    }
    return elided ? pieces <= 7 : pieces == 8
}

/// IPv4address = dec-octet 3( "." dec-octet ), dec-octet 0-255 without leading zeros.
func isValidIPv4(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var octets = 0
    var i = 0
    while true {
        let start = i
        var value = 0
        while i < bytes.count, i - start < 4, isASCIIDigit(bytes[i]) {
            value = value * 10 + Int(bytes[i] - UInt8(ascii: "0"))
            i += 1
        }
        let digits = i - start
        guard digits >= 1, digits <= 3, value <= 255, digits == 1 || bytes[start] != UInt8(ascii: "0") else { return false }
        octets += 1
        if octets == 4 { return i == bytes.count }
        guard i < bytes.count, bytes[i] == UInt8(ascii: ".") else { return false }
        i += 1
    }
}

@inline(__always)
func isASCIILetter(_ b: UInt8) -> Bool {
    (b | 0x20) >= UInt8(ascii: "a") && (b | 0x20) <= UInt8(ascii: "z")
}

@inline(__always)
func isASCIIDigit(_ b: UInt8) -> Bool {
    b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")
}
