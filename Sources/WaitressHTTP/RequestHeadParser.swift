#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds and parses one request head (request line and header fields,
/// RFC 9112 §2-§5), strictly:
///
/// - Lines end in CRLF. A bare LF or a bare CR is an error at once, so a
///   client that uses them gets a 400 instead of a connection that waits
///   forever for a CRLFCRLF that never comes (Waitress waits).
/// - Field names are tokens followed directly by `:`; values hold no control
///   characters; obs-fold is rejected (RFC 9112 §5.2 allows that).
/// - Framing follows RFC 9112 §6: Content-Length is digits only; Transfer-Encoding
///   (all its lines as one list) must end in a single `chunked`; both together are
///   rejected, so the pair can never frame two different requests.
/// - The request-target has the form its method calls for (RequestTarget.swift);
///   Host appears at most once and is empty or a valid authority (RFC 9112 §3.2).
/// - The whole head, however it is split across reads, is bounded by
///   `maxHeaderSize` (431).
///
/// The parser keeps only a resume offset between calls; the caller keeps the
/// bytes (accumulated across reads) and passes them again, with more appended.
public struct RequestHeadParser: Sendable {
    public let maxHeaderSize: Int
    public let maxBodySize: Int
    /// Bytes of the current buffer already searched for the end of the head.
    private var scanned = 0
    /// Leading bytes already known to be blank lines (CRLF pairs).
    private var blankPrefix = 0

    public init(maxHeaderSize: Int, maxBodySize: Int) {
        self.maxHeaderSize = maxHeaderSize
        self.maxBodySize = maxBodySize
    }

    public enum Result: Sendable {
        /// No complete head yet; call again with more bytes appended.
        case needMore
        /// A complete head; `consumed` bytes of the buffer belong to it.
        case head(RequestHead, consumed: Int)
        /// The request is malformed or too large; `head` carries what was
        /// learnt (at least the version, for the error response) when known.
        case failure(RequestError, version: HTTPVersion)
    }

    /// Forget the resume offset: the caller's buffer now starts elsewhere.
    public mutating func reset() {
        scanned = 0
        blankPrefix = 0
    }

    public mutating func parse(_ buffer: UnsafeRawBufferPointer) -> Result {
        // RFC 9112 §2.2: ignore empty lines before the request line.
        var start = min(blankPrefix, buffer.count)
        while start + 1 < buffer.count, buffer[start] == 13, buffer[start + 1] == 10 {
            start += 2
        }
        blankPrefix = start
        if start == buffer.count || (start + 1 == buffer.count && buffer[start] == 13) {
            // Only blank lines so far: nothing to keep but the resume point.
            scanned = 0
            if start > maxHeaderSize { return .failure(.headerFieldsTooLarge(limit: maxHeaderSize), version: .http10) }
            return .needMore
        }
        guard let base = buffer.baseAddress else { return .needMore }
        if start > maxHeaderSize {
            // A flood of blank lines counts against the limit too.
            return .failure(.headerFieldsTooLarge(limit: maxHeaderSize), version: .http10)
        }
        // Only the first maxHeaderSize bytes of a head are ever looked at, so
        // the answer is the same however the bytes were split across reads.
        let limit = min(buffer.count, start + maxHeaderSize)
        var position = max(scanned, start)
        var end = -1
        while position < limit {
            guard let found = memchr(base + position, 10, limit - position) else {
                // No line end yet. A CR anywhere but in the last byte (which
                // may start a CRLF) is a bare CR: answer now rather than wait.
                if limit - 1 > position, memchr(base + position, 13, limit - 1 - position) != nil {
                    return .failure(.badRequest("Bare CR or LF found in HTTP message"), version: .http10)
                }
                position = max(position, limit - 1)
                break
            }
            let lf = base.distance(to: UnsafeRawPointer(found))
            if lf == start || buffer[lf - 1] != 13 {
                return .failure(.badRequest("Bare CR or LF found in HTTP message"), version: .http10)
            }
            // A CR inside the line (not its CRLF) is a bare CR: answer now, or
            // "\r\r\n" would never be seen as the end of the head.
            if lf - 1 > position, memchr(base + position, 13, lf - 1 - position) != nil {
                return .failure(.badRequest("Bare CR or LF found in HTTP message"), version: .http10)
            }
            // The head ends at an empty line: CRLF directly after the previous LF.
            if lf - 2 > start, buffer[lf - 2] == 10 {
                end = lf + 1
                break
            }
            position = lf + 1
        }
        if end < 0 {
            scanned = position
            if buffer.count - start >= maxHeaderSize {
                return .failure(.headerFieldsTooLarge(limit: maxHeaderSize), version: .http10)
            }
            return .needMore
        }
        scanned = 0
        blankPrefix = 0
        if end - start >= maxHeaderSize {
            return .failure(.headerFieldsTooLarge(limit: maxHeaderSize), version: .http10)
        }
        var storage = [UInt8](UnsafeRawBufferPointer(rebasing: buffer[start..<end]))
        switch Self.parseHead(&storage, maxBodySize: maxBodySize) {
        case .success(let head):
            return .head(head, consumed: end)
        case .failure(let failure):
            return .failure(failure.error, version: failure.version)
        }
    }

    struct Failure: Error {
        var error: RequestError
        var version: HTTPVersion
    }

    /// Parses a complete head (ending in CRLFCRLF, no leading blank lines).
    typealias Joins = [(index: Int, value: Range<Int>)]

    static func parseHead(_ storage: inout [UInt8], maxBodySize: Int) -> Swift.Result<RequestHead, Failure> {
        let count = storage.count
        let parsed = storage.withUnsafeMutableBytes { bytes -> Swift.Result<(RequestHead, Joins), Failure> in
            byteClassTable.withUnsafeBufferPointer { table -> Swift.Result<(RequestHead, Joins), Failure> in
                func fail(_ message: String, _ version: HTTPVersion = .http10) -> Swift.Result<(RequestHead, Joins), Failure> {
                    .failure(Failure(error: .badRequest(message), version: version))
                }
                // Request line: method SP request-target SP HTTP-version CRLF.
                var i = 0
                while i < count, table[Int(bytes[i])] & ByteClass.token != 0 {
                    let b = bytes[i]
                    if b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z") {
                        // Waitress accepts only upper-case methods (all registered
                        // methods are; RFC 9110 §9.1 makes them case-sensitive).
                        while i < count, table[Int(bytes[i])] & ByteClass.token != 0 { i += 1 }
                        let method = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<i]), as: UTF8.self)
                        return fail("Malformed HTTP method \"\(method)\"")
                    }
                    i += 1
                }
                let method = 0..<i
                guard !method.isEmpty, i < count, bytes[i] == UInt8(ascii: " ") else {
                    return fail("Start line is invalid")
                }
                i += 1
                let targetStart = i
                while i < count, table[Int(bytes[i])] & ByteClass.target != 0 { i += 1 }
                let target = targetStart..<i
                guard !target.isEmpty, i < count, bytes[i] == UInt8(ascii: " ") else {
                    // RFC 9112 §3.2: no form of request-target has a fragment.
                    let fragment = i < count && bytes[i] == UInt8(ascii: "#")
                    return fail(fragment ? "Request-target must not contain a fragment" : "Start line is invalid")
                }
                i += 1
                // "HTTP/" DIGIT "." DIGIT CRLF
                guard i + 10 <= count,
                    bytes[i] == UInt8(ascii: "H"), bytes[i + 1] == UInt8(ascii: "T"),
                    bytes[i + 2] == UInt8(ascii: "T"), bytes[i + 3] == UInt8(ascii: "P"),
                    bytes[i + 4] == UInt8(ascii: "/"), bytes[i + 6] == UInt8(ascii: "."),
                    bytes[i + 8] == 13, bytes[i + 9] == 10,
                    (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i + 5]),
                    (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i + 7])
                else {
                    return fail("Start line is invalid")
                }
                let major = bytes[i + 5] - UInt8(ascii: "0")
                let minor = bytes[i + 7] - UInt8(ascii: "0")
                guard major == 1 else {
                    return .failure(
                        Failure(error: .versionNotSupported("HTTP/\(major).\(minor) is not supported"), version: .http11))
                }
                let version: HTTPVersion = minor == 0 ? .http10 : .http11
                i += 10

                let path: Range<Int>
                let query: Range<Int>
                switch splitTarget(bytes, target, method: method) {
                case .parts(let p, let q):
                    path = p
                    query = q
                case .invalid(let message):
                    return fail("\(message)", version)
                }

                var fields: [HeaderField] = []
                fields.reserveCapacity(16)
                var contentLength: Int? = nil
                var transferEncoding: Range<Int>? = nil
                var moreTransferEncodings: [Range<Int>] = []
                var host: Range<Int>? = nil
                var expect: Range<Int>? = nil
                var connection: [Range<Int>] = []
                var joins: [(index: Int, value: Range<Int>)] = []
                var nameIndex: [UInt64: [Int]] = [:]

                // Header fields, each "name:" OWS value OWS CRLF, until the empty line.
                while i < count - 2 {
                    let lineStart = i
                    if bytes[i] == UInt8(ascii: " ") || bytes[i] == 9 {
                        return fail("Malformed header line (obsolete line folding)", version)
                    }
                    var hasUnderscore = false
                    while i < count, table[Int(bytes[i])] & ByteClass.token != 0 {
                        let b = bytes[i]
                        if b == UInt8(ascii: "_") { hasUnderscore = true }
                        bytes[i] = b == UInt8(ascii: "-") ? UInt8(ascii: "_") : asciiUpper(b)
                        i += 1
                    }
                    let name = lineStart..<i
                    guard !name.isEmpty, i < count, bytes[i] == UInt8(ascii: ":") else {
                        return fail("Invalid header", version)
                    }
                    i += 1
                    while bytes[i] == UInt8(ascii: " ") || bytes[i] == 9 { i += 1 }
                    let valueStart = i
                    var valueEnd = i
                    while true {
                        let b = bytes[i]
                        if table[Int(b)] & ByteClass.fieldValue == 0 { break }
                        i += 1
                        if b != UInt8(ascii: " ") && b != 9 { valueEnd = i }
                    }
                    // The only byte allowed to end the value is the CR of CRLF
                    // (the caller guaranteed every LF is preceded by CR).
                    guard bytes[i] == 13, bytes[i + 1] == 10 else {
                        return fail("Invalid header value", version)
                    }
                    i += 2
                    if hasUnderscore {
                        // Waitress drops them: HTTP_FOO_BAR must never be forged
                        // by "Foo_Bar" to shadow the "Foo-Bar" a proxy vouched for.
                        continue
                    }
                    let value = valueStart..<valueEnd
                    let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[name])
                    if bytesEqual(nameBytes, "CONTENT_LENGTH") {
                        guard let parsed = parseContentLength(UnsafeRawBufferPointer(rebasing: bytes[value])) else {
                            return fail("Content-Length is invalid", version)
                        }
                        if contentLength != nil {
                            // Waitress joins repeats into "5, 5", which is not
                            // 1*DIGIT: any repeat is rejected, equal or not.
                            return fail("Content-Length is invalid", version)
                        }
                        contentLength = parsed
                    } else if bytesEqual(nameBytes, "TRANSFER_ENCODING") {
                        // Every line adds to one list (RFC 9110 §5.3), so the
                        // answer does not depend on how the codings are laid out.
                        if transferEncoding == nil {
                            transferEncoding = value
                        } else {
                            moreTransferEncodings.append(value)
                        }
                        continue
                    } else if bytesEqual(nameBytes, "HOST") {
                        // RFC 9112 §3.2: exactly one Host; Waitress would join two
                        // into "a, b", which names no host. An empty value is what a
                        // client sends when the target has no authority.
                        if host != nil {
                            return fail("More than one Host header is not allowed", version)
                        }
                        host = value
                    } else if bytesEqual(nameBytes, "EXPECT") {
                        expect = value
                    } else if bytesEqual(nameBytes, "CONNECTION") {
                        connection.append(value)
                    }
                    // Repeated names are joined with ", " (Waitress, RFC 9110 §5.3).
                    // A linear scan for the usual handful of fields; past that a
                    // hash index, so a head of thousands of names stays linear.
                    let base = bytes.baseAddress!
                    var existing: Int? = nil
                    if fields.count < 24 {
                        for (index, field) in fields.enumerated() where field.name.count == name.count {
                            if memcmp(base + field.name.lowerBound, base + name.lowerBound, name.count) == 0 {
                                existing = index
                                break
                            }
                        }
                    } else {
                        if nameIndex.isEmpty {
                            for (index, field) in fields.enumerated() {
                                nameIndex[hashName(base, field.name), default: []].append(index)
                            }
                        }
                        let hash = hashName(base, name)
                        for index in nameIndex[hash] ?? [] where fields[index].name.count == name.count {
                            if memcmp(base + fields[index].name.lowerBound, base + name.lowerBound, name.count) == 0 {
                                existing = index
                                break
                            }
                        }
                        if existing == nil {
                            nameIndex[hash, default: []].append(fields.count)
                        }
                    }
                    if let index = existing {
                        joins.append((index, value))
                    } else {
                        fields.append(HeaderField(name: name, value: value))
                    }
                }

                // Checked here rather than in the field loop, which stays small
                // for every field (callgrind: fewer instructions per request).
                if let host = host, !host.isEmpty, !isValidHost(UnsafeRawBufferPointer(rebasing: bytes[host]), table) {
                    return fail("Host is invalid", version)
                }
                var isChunked = false
                if let te = transferEncoding {
                    if version == .http10 {
                        // RFC 9112 §6.1: a 1.0 recipient can't rely on it; treat as faulty.
                        return fail("Transfer-Encoding is not allowed in HTTP/1.0 requests", version)
                    }
                    if contentLength != nil {
                        return fail("Content-Length and Transfer-Encoding together are not allowed", version)
                    }
                    var codings = TransferCodingList()
                    codings.add(UnsafeRawBufferPointer(rebasing: bytes[te]))
                    for more in moreTransferEncodings {
                        codings.add(UnsafeRawBufferPointer(rebasing: bytes[more]))
                    }
                    switch codings.kind {
                    case .chunked: isChunked = true
                    case .unsupported:
                        return .failure(
                            Failure(error: .notImplemented("Transfer-Encoding requested is not supported."), version: version))
                    case .malformed:
                        return fail("Transfer-Encoding is invalid", version)
                    }
                }
                let declared = contentLength ?? 0
                if !isChunked, declared > 0, declared >= maxBodySize {
                    return .failure(Failure(error: .entityTooLarge(limit: maxBodySize), version: version))
                }

                var closeToken = false
                var keepAliveToken = false
                for range in connection {
                    forEachListElement(UnsafeRawBufferPointer(rebasing: bytes[range])) { token in
                        if equalsLowercased(token, "close") { closeToken = true }
                        if equalsLowercased(token, "keep-alive") { keepAliveToken = true }
                    }
                }
                let keepAlive: Bool
                switch version {
                case .http11: keepAlive = !closeToken
                case .http10: keepAlive = keepAliveToken && !closeToken
                }
                let expectContinue =
                    version == .http11 && expect.map { equalsLowercased(UnsafeRawBufferPointer(rebasing: bytes[$0]), "100-continue") } == true

                let head = RequestHead(
                    storage: [], method: method, target: target, path: path, query: query, version: version,
                    fields: fields, contentLength: declared, isChunked: isChunked, expectContinue: expectContinue,
                    keepAlive: keepAlive, connectionKeepAliveToken: keepAliveToken)
                return .success((head, joins))
            }
        }
        return parsed.map { (head, joins) in
            var head = head
            head.storage = storage
            head.applyJoins(joins)
            return head
        }
    }
}

extension RequestHead {
    /// Builds each joined value ("first, second, ...") once, at the end of
    /// `storage`, and points the first field at it: linear in the head size
    /// however many repeats there are.
    mutating func applyJoins(_ joins: RequestHeadParser.Joins) {
        guard !joins.isEmpty else { return }
        var extra: [Int: [Range<Int>]] = [:]
        var order: [Int] = []
        for (index, value) in joins {
            if extra[index] == nil { order.append(index) }
            extra[index, default: []].append(value)
        }
        var appended: [UInt8] = []
        var newRanges: [(Int, Range<Int>)] = []
        let base = storage.count
        for index in order {
            let start = base + appended.count
            appended.append(contentsOf: storage[fields[index].value])
            for value in extra[index]! {
                appended.append(UInt8(ascii: ","))
                appended.append(UInt8(ascii: " "))
                appended.append(contentsOf: storage[value])
            }
            newRanges.append((index, start..<(base + appended.count)))
        }
        storage.append(contentsOf: appended)
        for (index, range) in newRanges {
            fields[index].value = range
        }
    }
}

/// FNV-1a over a field name, for the name index of very large heads.
@inline(__always)
func hashName(_ base: UnsafeMutableRawPointer, _ range: Range<Int>) -> UInt64 {
    var hash: UInt64 = 14_695_981_039_346_656_037
    for i in range {
        hash = (hash ^ UInt64(base.load(fromByteOffset: i, as: UInt8.self))) &* 1_099_511_628_211
    }
    return hash
}

@inline(__always)
func bytesEqual(_ bytes: UnsafeRawBufferPointer, _ upper: StaticString) -> Bool {
    guard bytes.count == upper.utf8CodeUnitCount else { return false }
    return memcmp(bytes.baseAddress!, upper.utf8Start, bytes.count) == 0
}

/// Content-Length = 1*DIGIT (RFC 9110 §8.6), guarded against overflow: more than
/// 18 significant digits can't be a length this server accepts, so it is invalid.
func parseContentLength(_ bytes: UnsafeRawBufferPointer) -> Int? {
    guard !bytes.isEmpty else { return nil }
    // Leading zeros carry no value ("0005" is 5); count only the rest.
    var first = 0
    while first < bytes.count - 1, bytes[first] == UInt8(ascii: "0") { first += 1 }
    guard bytes.count - first <= 18 else { return nil }
    var value = 0
    for b in bytes[first...] {
        guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
        value = value * 10 + Int(b - UInt8(ascii: "0"))
    }
    return value
}

enum TransferEncodingKind { case chunked, unsupported, malformed }

/// The transfer codings of all Transfer-Encoding lines of a request, read as one
/// list (RFC 9110 §5.3), classified as RFC 9112 §6.1 asks, in this order:
/// an element that is not a token (a parameter, a quoted string) is malformed;
/// then any coding other than `chunked` is 501, as Waitress answers; then the
/// structure: `chunked` exactly once and last, and no line without a coding,
/// or the request is malformed.
struct TransferCodingList {
    private var codings = 0
    private var chunkedCount = 0
    private var lastIsChunked = false
    private var unsupported = false
    private var notToken = false
    private var emptyLine = false

    mutating func add(_ value: UnsafeRawBufferPointer) {
        let before = codings
        forEachListElement(value) { token in
            codings += 1
            if equalsLowercased(token, "chunked") {
                chunkedCount += 1
                lastIsChunked = true
            } else {
                lastIsChunked = false
                for b in token where byteClassTable[Int(b)] & ByteClass.token == 0 { notToken = true }
                unsupported = true
            }
        }
        if codings == before { emptyLine = true }
    }

    var kind: TransferEncodingKind {
        if notToken { return .malformed }
        if unsupported { return .unsupported }
        if emptyLine || chunkedCount != 1 || !lastIsChunked { return .malformed }
        return .chunked
    }
}

/// Calls `body` with each element of a comma-separated list, OWS trimmed;
/// empty elements (",,") are skipped as RFC 9110 §5.6.1 allows.
func forEachListElement(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
    var start = 0
    var i = 0
    while i <= value.count {
        if i == value.count || value[i] == UInt8(ascii: ",") {
            var s = start
            var e = i
            while s < e, value[s] == UInt8(ascii: " ") || value[s] == 9 { s += 1 }
            while e > s, value[e - 1] == UInt8(ascii: " ") || value[e - 1] == 9 { e -= 1 }
            if e > s { body(UnsafeRawBufferPointer(rebasing: value[s..<e])) }
            start = i + 1
        }
        i += 1
    }
}
