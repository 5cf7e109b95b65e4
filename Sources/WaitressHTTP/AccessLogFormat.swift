#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What one access-log line is made from: the request (its parsed head, or
/// the raw first line when the engine refused it before a head was parsed),
/// the peer, the response's status, headers and body size, and its timing.
public struct AccessLogEntry: Sendable {
    /// The parsed head; an empty one when `hasHead` is false.
    public var head: RequestHead
    public var hasHead: Bool
    /// The request line as received, for requests answered before a head was
    /// parsed (a 400 or 431 from the parser); may be empty.
    public var rawRequestLine: [UInt8] = []
    public var remoteHost: [UInt8]
    /// Digits, or "None" on a Unix socket (Waitress's REMOTE_PORT).
    public var remotePort: [UInt8]
    /// Wall-clock seconds since the epoch when the request's first byte arrived.
    public var startTime: Double
    /// Seconds from the request's first byte to the response's last.
    public var duration: Double
    public var status: Int
    /// The response's headers, when the format needs them (else empty).
    public var responseHeaders: ResponseHeaders
    /// The response's Content-Length as a number (`AccessLogFormat.note`), or
    /// `noContentLength`, or `contentLengthInHeaders`: look in the headers.
    public var contentLength: Int
    /// Body bytes of the response (not the head).
    public var bodyBytes: Int

    public static let noContentLength = -1
    public static let contentLengthInHeaders = -2
    @usableFromInline static let emptyHead = RequestHead(
        storage: [], method: 0..<0, target: 0..<0, path: 0..<0, query: 0..<0, version: .http11, fields: [],
        contentLength: 0, isChunked: false, expectContinue: false, keepAlive: false, connectionKeepAliveToken: false)
    public static let noHeaders = ResponseHeaders(reserving: false)

    @inlinable
    public init(
        head: RequestHead?, rawRequestLine: [UInt8] = [], remoteHost: [UInt8], remotePort: [UInt8], startTime: Double,
        duration: Double, status: Int, responseHeaders: ResponseHeaders?, contentLength: Int = contentLengthInHeaders,
        bodyBytes: Int
    ) {
        if let head = consume head {
            self.hasHead = true
            self.head = head
        } else {
            self.hasHead = false
            self.head = Self.emptyHead
        }
        self.rawRequestLine = rawRequestLine
        self.remoteHost = remoteHost
        self.remotePort = remotePort
        self.startTime = startTime
        self.duration = duration
        self.status = status
        self.responseHeaders = responseHeaders ?? Self.noHeaders
        self.contentLength = contentLength
        self.bodyBytes = bodyBytes
    }
}

public struct AccessLogFormatError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// An access-log line format: `combined` (Apache's combined format as Paste's
/// TransLogger writes it), `common`, `json` (one JSON object per line), or a
/// format string of gunicorn's atoms (`%(h)s %(t)s "%(r)s" %(s)s %(D)s`,
/// `%({user-agent}i)s`, `%({content-type}o)s`, ...; docs/access-log.md lists them).
///
/// Values that came from the client are escaped as Apache does (`\"`, `\\`,
/// `\xHH` for bytes outside printable ASCII), so a line is always one line and
/// a field cannot forge another; JSON strings are escaped as JSON.
public struct AccessLogFormat: Sendable {
    enum Atom: Sendable, Equatable {
        case literal([UInt8])
        case remoteAddress, remoteLogname, remoteUser, time, requestLine, method, path, query, proto
        case status, bytesOrDash, bytes, referer, userAgent
        case seconds, microseconds, milliseconds, decimalSeconds, pid, remotePort
        /// A request field, by its WSGI-form name (`USER_AGENT`).
        case requestField([UInt8])
        /// A response header, by its lower-case name.
        case responseField([UInt8])
        /// TransLogger's request: the decoded path quoted again as Python's
        /// `urllib.parse.quote` does, `?` and the query, SERVER_PROTOCOL.
        case quotedRequest
        /// TransLogger's bytes: the response's Content-Length header or `-`.
        case contentLengthOrDash
    }

    let atoms: [Atom]
    /// `atoms` as written: payload arrays moved to `texts`, one array, and
    /// referred to by range, so that writing a line copies no references
    /// (measured with callgrind: the copies were a tenth of a line's cost).
    let steps: [Step]
    let texts: [UInt8]
    let isJSON: Bool
    let pid: [UInt8]
    /// What the format prints of a response's headers.
    public let responseNeeds: ResponseNeeds

    public enum ResponseNeeds: Sendable {
        /// Nothing.
        case nothing
        /// Only Content-Length (`%(C)s`, as in `combined` and `common`).
        case contentLength
        /// Named headers (`%({name}o)s`).
        case headers
    }

    enum Step {
        case literal(Range<Int>)
        case requestField(Range<Int>)
        case responseField(Range<Int>)
        case plain(Plain)
    }

    /// The atoms without a payload, as a trivial type.
    enum Plain: UInt8 {
        case remoteAddress, remoteLogname, remoteUser, time, requestLine, method, path, query, proto
        case status, bytesOrDash, bytes, referer, userAgent
        case seconds, microseconds, milliseconds, decimalSeconds, pid, remotePort
        case quotedRequest, contentLengthOrDash

        init?(_ atom: Atom) {
            switch atom {
            case .literal, .requestField, .responseField: return nil
            case .remoteAddress: self = .remoteAddress
            case .remoteLogname: self = .remoteLogname
            case .remoteUser: self = .remoteUser
            case .time: self = .time
            case .requestLine: self = .requestLine
            case .method: self = .method
            case .path: self = .path
            case .query: self = .query
            case .proto: self = .proto
            case .status: self = .status
            case .bytesOrDash: self = .bytesOrDash
            case .bytes: self = .bytes
            case .referer: self = .referer
            case .userAgent: self = .userAgent
            case .seconds: self = .seconds
            case .microseconds: self = .microseconds
            case .milliseconds: self = .milliseconds
            case .decimalSeconds: self = .decimalSeconds
            case .pid: self = .pid
            case .remotePort: self = .remotePort
            case .quotedRequest: self = .quotedRequest
            case .contentLengthOrDash: self = .contentLengthOrDash
            }
        }
    }

    static let refererName: StaticString = "REFERER"
    static let userAgentName: StaticString = "USER_AGENT"
    static let authorizationName: StaticString = "AUTHORIZATION"
    static let contentLengthName: StaticString = "content-length"
    static let contentLengthCanonical: StaticString = "Content-Length"

    public static let combinedSpec =
        "%(h)s - %(u)s %(t)s \"%(Q)s\" %(s)s %(C)s \"%(f)s\" \"%(a)s\""
    public static let commonSpec = "%(h)s - %(u)s %(t)s \"%(Q)s\" %(s)s %(C)s"

    public init(_ spec: String) throws(AccessLogFormatError) {
        pid = Array(String(getpid()).utf8)
        switch spec {
        case "combined", "":
            atoms = try Self.parse(Self.combinedSpec)
            isJSON = false
        case "common":
            atoms = try Self.parse(Self.commonSpec)
            isJSON = false
        case "json":
            atoms = []
            isJSON = true
        default:
            atoms = try Self.parse(spec)
            isJSON = false
        }
        var texts: [UInt8] = []
        func text(_ bytes: [UInt8]) -> Range<Int> {
            texts.append(contentsOf: bytes)
            return texts.count - bytes.count..<texts.count
        }
        steps = atoms.map { atom in
            switch atom {
            case .literal(let bytes): return .literal(text(bytes))
            case .requestField(let name): return .requestField(text(name))
            case .responseField(let name): return .responseField(text(name))
            default:
                return .plain(Plain(atom)!)
            }
        }
        self.texts = texts
        if atoms.contains(where: { if case .responseField = $0 { return true } else { return false } }) {
            responseNeeds = .headers
        } else {
            responseNeeds = atoms.contains(.contentLengthOrDash) ? .contentLength : .nothing
        }
    }

    static func parse(_ spec: String) throws(AccessLogFormatError) -> [Atom] {
        let bytes = Array(spec.utf8)
        var atoms: [Atom] = []
        var literal: [UInt8] = []
        var i = 0
        func flush() {
            if !literal.isEmpty { atoms.append(.literal(literal)); literal = [] }
        }
        while i < bytes.count {
            guard bytes[i] == UInt8(ascii: "%"), i + 1 < bytes.count else {
                literal.append(bytes[i])
                i += 1
                continue
            }
            if bytes[i + 1] == UInt8(ascii: "%") {
                literal.append(UInt8(ascii: "%"))
                i += 2
                continue
            }
            guard bytes[i + 1] == UInt8(ascii: "(") else {
                literal.append(bytes[i])
                i += 1
                continue
            }
            guard let close = bytes[(i + 2)...].firstIndex(of: UInt8(ascii: ")")), close + 1 < bytes.count,
                bytes[close + 1] == UInt8(ascii: "s")
            else {
                throw AccessLogFormatError(description: "access_log_format: an atom must look like %(name)s: \(spec)")
            }
            let name = Array(bytes[(i + 2)..<close])
            flush()
            atoms.append(try atom(name))
            i = close + 2
        }
        flush()
        return atoms
    }

    static func atom(_ name: [UInt8]) throws(AccessLogFormatError) -> Atom {
        if name.count > 3, name.first == UInt8(ascii: "{"), name[name.count - 2] == UInt8(ascii: "}") {
            let field = name[1..<(name.count - 2)]
            switch name.last! {
            case UInt8(ascii: "i"):
                return .requestField(
                    field.map { $0 == UInt8(ascii: "-") ? UInt8(ascii: "_") : ($0 >= 97 && $0 <= 122 ? $0 - 32 : $0) })
            case UInt8(ascii: "o"):
                return .responseField(field.map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 })
            case UInt8(ascii: "e"):
                switch String(decoding: field, as: UTF8.self) {
                case "REMOTE_ADDR": return .remoteAddress
                case "REMOTE_PORT": return .remotePort
                case "REQUEST_METHOD": return .method
                case "QUERY_STRING": return .query
                case "SERVER_PROTOCOL": return .proto
                default: break
                }
            default: break
            }
        }
        switch String(decoding: name, as: UTF8.self) {
        case "h": return .remoteAddress
        case "l": return .remoteLogname
        case "u": return .remoteUser
        case "t": return .time
        case "r": return .requestLine
        case "m": return .method
        case "U": return .path
        case "q": return .query
        case "H": return .proto
        case "s": return .status
        case "b": return .bytesOrDash
        case "B": return .bytes
        case "f": return .referer
        case "a": return .userAgent
        case "T": return .seconds
        case "D": return .microseconds
        case "M": return .milliseconds
        case "L": return .decimalSeconds
        case "p": return .pid
        case "P": return .remotePort
        case "Q": return .quotedRequest
        case "C": return .contentLengthOrDash
        default:
            throw AccessLogFormatError(
                description: "access_log_format: unknown atom %(\(String(decoding: name, as: UTF8.self)))s")
        }
    }

    /// Appends the line for `entry`, with its final newline.
    public func write(_ entry: borrowing AccessLogEntry, into out: inout [UInt8], clock: inout AccessLogClock) {
        var bytes = LogBytes()
        write(entry, into: &bytes, clock: &clock)
        out.append(contentsOf: bytes.bytes)
    }

    /// Appends the line for `entry`, with its final newline.
    public func write(_ entry: borrowing AccessLogEntry, into out: inout LogBytes, clock: inout AccessLogClock) {
        // Every value is read through raw pointers into the head's and the
        // response headers' storage: no slices, no copies of the head, no
        // reference counting per field (measured with callgrind: those were a
        // third of a line's cost).
        entry.head.storage.withUnsafeBytes { request in
            entry.head.fields.withUnsafeBufferPointer { fields in
                entry.responseHeaders.storage.withUnsafeBytes { response in
                    entry.responseHeaders.entries.withUnsafeBufferPointer { responseEntries in
                    let line = Line(entry, request: request, fields: fields, response: response,
                                    responseEntries: responseEntries)
                    if isJSON {
                        writeJSON(entry, line, into: &out, clock: &clock)
                        return
                    }
                    texts.withUnsafeBytes { texts in
                        steps.withUnsafeBufferPointer { steps in
                            for step in steps {
                                switch step {
                                case .literal(let range): out.append(UnsafeRawBufferPointer(rebasing: texts[range]))
                                case .requestField(let range):
                                    Self.escapedOrDash(
                                        line.field(UnsafeRawBufferPointer(rebasing: texts[range])), into: &out)
                                case .responseField(let range):
                                    Self.escapedOrDash(
                                        line.responseField(UnsafeRawBufferPointer(rebasing: texts[range])), into: &out)
                                case .plain(let atom): write(atom, entry, line, into: &out, clock: &clock)
                                }
                            }
                        }
                    }
                    }
                }
            }
        }
        out.append(10)
    }

    /// One entry's bytes, borrowed for the time a line is written, and the
    /// head's trivial parts (so that no atom copies the head).
    struct Line {
        let hasHead: Bool
        let request: UnsafeRawBufferPointer
        let fields: UnsafeBufferPointer<HeaderField>
        let response: UnsafeRawBufferPointer
        let responseEntries: UnsafeBufferPointer<(name: Range<Int>, value: Range<Int>)>
        let method: Range<Int>
        let target: Range<Int>
        let path: Range<Int>
        let query: Range<Int>
        let version: HTTPVersion

        init(
            _ entry: borrowing AccessLogEntry, request: UnsafeRawBufferPointer, fields: UnsafeBufferPointer<HeaderField>,
            response: UnsafeRawBufferPointer, responseEntries: UnsafeBufferPointer<(name: Range<Int>, value: Range<Int>)>
        ) {
            hasHead = entry.hasHead
            self.request = request
            self.fields = fields
            self.response = response
            self.responseEntries = responseEntries
            method = entry.head.method
            target = entry.head.target
            path = entry.head.path
            query = entry.head.query
            version = entry.head.version
        }

        @inline(__always)
        func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: request[range]) }

        /// The first request field with this WSGI-form name.
        func field(_ name: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
            for field in fields where field.name.count == name.count
                && memcmp(request.baseAddress! + field.name.lowerBound, name.baseAddress!, name.count) == 0
            {
                return bytes(field.value)
            }
            return nil
        }

        func field(_ name: StaticString) -> UnsafeRawBufferPointer? {
            field(staticBytes(name))
        }

        /// The last response header with this lower-case name.
        func responseField(_ lowerName: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
            AccessLogFormat.lastValue(responseEntries, response, lowerName).map {
                UnsafeRawBufferPointer(rebasing: response[$0])
            }
        }

        func responseField(_ lowerName: StaticString) -> UnsafeRawBufferPointer? {
            responseField(staticBytes(lowerName))
        }
    }

    /// Where the value of the last header with this lower-case name is, as
    /// TransLogger takes it.
    static func lastValue(
        _ entries: UnsafeBufferPointer<(name: Range<Int>, value: Range<Int>)>, _ storage: UnsafeRawBufferPointer,
        _ wanted: UnsafeRawBufferPointer
    ) -> Range<Int>? {
        let count = wanted.count
        guard count > 0 else { return nil }
        let want = wanted.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var i = entries.count
        search: while i > 0 {
            i -= 1
            let name = entries[i].name
            guard name.count == count, name.upperBound <= storage.count else { continue }
            // Unchecked reads: the name's range was just checked against the storage.
            let have = storage.baseAddress!.assumingMemoryBound(to: UInt8.self) + name.lowerBound
            for j in 0..<count {
                let b = have[j]
                if (b >= 65 && b <= 90 ? b | 0x20 : b) != want[j] { continue search }
            }
            return entries[i].value
        }
        return nil
    }

    /// The same, first looking for the name as most applications spell it
    /// (one memcmp per field instead of a folded comparison).
    static func lastValue(
        _ entries: UnsafeBufferPointer<(name: Range<Int>, value: Range<Int>)>, _ storage: UnsafeRawBufferPointer,
        _ wanted: StaticString, spelledAs usual: StaticString
    ) -> Range<Int>? {
        let count = usual.utf8CodeUnitCount
        var i = entries.count
        var other = false
        while i > 0 {
            i -= 1
            let name = entries[i].name
            guard name.count == count, name.upperBound <= storage.count else { continue }
            if memcmp(storage.baseAddress! + name.lowerBound, usual.utf8Start, count) == 0 {
                // The last one spelled so; one spelled otherwise after it wins.
                return other ? lastValue(entries, storage, wanted) : entries[i].value
            }
            other = true
        }
        return other ? lastValue(entries, storage, wanted) : nil
    }

    static func lastValue(
        _ entries: UnsafeBufferPointer<(name: Range<Int>, value: Range<Int>)>, _ storage: UnsafeRawBufferPointer,
        _ wanted: StaticString
    ) -> Range<Int>? {
        lastValue(entries, storage, staticBytes(wanted))
    }

    private func write(
        _ atom: Plain, _ e: borrowing AccessLogEntry, _ line: Line, into out: inout LogBytes,
        clock: inout AccessLogClock
    ) {
        switch atom {
        case .remoteAddress: Self.escaped(e.remoteHost, into: &out)
        case .remoteLogname: out.append(UInt8(ascii: "-"))
        case .remoteUser:
            if let user = Self.basicUser(line) { Self.escaped(user, into: &out) } else { out.append(UInt8(ascii: "-")) }
        case .time: clock.appendBracketed(e.startTime, into: &out)
        case .requestLine:
            if line.hasHead {
                Self.escaped(line.bytes(line.method), into: &out)
                out.append(32)
                Self.escaped(line.bytes(line.target), into: &out)
                out.append(32)
                Self.appendProtocol(line.version, into: &out)
            } else {
                Self.escaped(e.rawRequestLine, into: &out)
            }
        case .method: Self.escapedOrDash(line.hasHead ? line.bytes(line.method) : nil, into: &out)
        case .path: Self.escapedOrDash(line.hasHead ? line.bytes(line.path) : nil, into: &out)
        case .query: Self.escaped(line.bytes(line.query), into: &out)
        case .proto:
            if line.hasHead { Self.appendProtocol(line.version, into: &out) } else { out.append(UInt8(ascii: "-")) }
        case .status: out.append(decimal: e.status)
        case .bytesOrDash:
            if e.bodyBytes > 0 { out.append(decimal: e.bodyBytes) } else { out.append(UInt8(ascii: "-")) }
        case .bytes: out.append(decimal: e.bodyBytes)
        case .referer: Self.escapedOrDash(line.field(Self.refererName), into: &out)
        case .userAgent: Self.escapedOrDash(line.field(Self.userAgentName), into: &out)
        case .seconds: out.append(decimal: Int(e.duration))
        case .microseconds: out.append(decimal: Int(e.duration * 1e6))
        case .milliseconds: out.append(decimal: Int(e.duration * 1e3))
        case .decimalSeconds:
            let micros = Int(e.duration * 1e6)
            out.append(decimal: micros / 1_000_000)
            out.append(UInt8(ascii: "."))
            let fraction = micros % 1_000_000
            var digits = 100_000
            while digits > 0 {
                out.append(UInt8(ascii: "0") + UInt8((fraction / digits) % 10))
                digits /= 10
            }
        case .pid: out.append(pid)
        case .remotePort: Self.escaped(e.remotePort, into: &out)
        case .quotedRequest:
            guard line.hasHead else {
                Self.escaped(e.rawRequestLine, into: &out)
                return
            }
            Self.escaped(line.bytes(line.method), into: &out)
            out.append(32)
            Self.pythonQuote(line.bytes(line.path), into: &out)
            if !line.query.isEmpty {
                out.append(UInt8(ascii: "?"))
                Self.escaped(line.bytes(line.query), into: &out)
            }
            out.append(32)
            Self.appendProtocol(line.version, into: &out)
        case .contentLengthOrDash:
            if e.contentLength >= 0 {
                out.append(decimal: e.contentLength)
            } else if e.contentLength == AccessLogEntry.noContentLength {
                out.append(UInt8(ascii: "-"))
            } else {
                Self.escapedOrDash(line.responseField(Self.contentLengthName), into: &out)
            }
        }
    }

    private static func key(_ name: StaticString, first: Bool = false, into out: inout LogBytes) {
        if !first { out.append(UInt8(ascii: ",")) }
        out.append(UInt8(ascii: "\""))
        out.append(name)
        out.append(UInt8(ascii: "\""))
        out.append(UInt8(ascii: ":"))
    }

    /// A JSON string, or null.
    private static func string(_ value: UnsafeRawBufferPointer?, into out: inout LogBytes) {
        if let value = value { jsonString(value, into: &out) } else { out.append("null") }
    }

    private static func string(_ value: [UInt8]?, into out: inout LogBytes) {
        guard let value = value else { return out.append("null") }
        value.withUnsafeBytes { jsonString($0, into: &out) }
    }

    private func writeJSON(
        _ e: borrowing AccessLogEntry, _ line: Line, into out: inout LogBytes, clock: inout AccessLogClock
    ) {
        out.append(UInt8(ascii: "{"))
        Self.key("time", first: true, into: &out)
        out.append(UInt8(ascii: "\""))
        clock.appendISO8601(e.startTime, into: &out)
        out.append(UInt8(ascii: "\""))
        Self.key("remote_addr", into: &out)
        Self.string(e.remoteHost, into: &out)
        Self.key("remote_port", into: &out)
        if !e.remotePort.isEmpty, e.remotePort.allSatisfy({ $0 >= 48 && $0 <= 57 }) {
            out.append(e.remotePort)
        } else {
            out.append("null")
        }
        Self.key("method", into: &out)
        Self.string(line.hasHead ? line.bytes(line.method) : nil, into: &out)
        Self.key("target", into: &out)
        Self.string(line.hasHead ? line.bytes(line.target) : nil, into: &out)
        Self.key("protocol", into: &out)
        if line.hasHead {
            out.append(UInt8(ascii: "\""))
            Self.appendProtocol(line.version, into: &out)
            out.append(UInt8(ascii: "\""))
        } else {
            out.append("null")
        }
        if !line.hasHead {
            Self.key("request_line", into: &out)
            Self.string(e.rawRequestLine, into: &out)
        }
        Self.key("status", into: &out)
        out.append(decimal: e.status)
        Self.key("bytes", into: &out)
        out.append(decimal: e.bodyBytes)
        Self.key("duration_us", into: &out)
        out.append(decimal: Int(e.duration * 1e6))
        Self.key("referer", into: &out)
        Self.string(line.field(Self.refererName), into: &out)
        Self.key("user_agent", into: &out)
        Self.string(line.field(Self.userAgentName), into: &out)
        Self.key("user", into: &out)
        Self.string(Self.basicUser(line), into: &out)
        out.append(UInt8(ascii: "}"))
    }

    // MARK: pieces

    private static func appendProtocol(_ version: HTTPVersion, into out: inout LogBytes) {
        out.append("HTTP/")
        out.append(version.text)
    }

    /// How a response's headers are noted for this format (the worker notes
    /// them, the event loop writes the line): kept whole only when the format
    /// prints response headers; for `%(C)s` alone the Content-Length value is
    /// taken as a number, so the headers need not outlive the task.
    /// Returns (keep the headers, `AccessLogEntry.contentLength`).
    public func note(_ headers: ResponseHeaders) -> (keep: Bool, contentLength: Int) {
        Self.note(headers, responseNeeds)
    }

    /// `note(_:)` for a format's `responseNeeds`.
    public static func note(_ headers: ResponseHeaders, _ needs: ResponseNeeds) -> (keep: Bool, contentLength: Int) {
        switch needs {
        case .headers: return (true, AccessLogEntry.contentLengthInHeaders)
        case .nothing: return (false, AccessLogEntry.noContentLength)
        case .contentLength: break
        }
        return headers.storage.withUnsafeBytes { storage in
            guard let range = headers.entries.withUnsafeBufferPointer({
                Self.lastValue($0, storage, Self.contentLengthName, spelledAs: Self.contentLengthCanonical)
            }) else {
                return (false, AccessLogEntry.noContentLength)
            }
            // Digits as a number print back the same only without leading
            // zeros; anything else is printed from the kept headers.
            let value = UnsafeRawBufferPointer(rebasing: storage[range])
            guard !value.isEmpty, value.count <= 18, value.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                value.count == 1 || value[0] != 48
            else {
                return (true, AccessLogEntry.contentLengthInHeaders)
            }
            return (false, value.reduce(0) { $0 * 10 + Int($1 - 48) })
        }
    }

    /// The user name of a Basic Authorization (RFC 7617), as gunicorn's %(u)s.
    static func basicUser(_ line: Line) -> [UInt8]? {
        guard let value = line.field(Self.authorizationName), value.count > 6 else { return nil }
        let scheme = value.prefix(6).map { $0 | 0x20 }
        guard scheme.elementsEqual("basic ".utf8) else { return nil }
        guard let decoded = base64Decode(value.dropFirst(6).drop(while: { $0 == 32 })) else { return nil }
        let user = decoded.prefix(while: { $0 != UInt8(ascii: ":") })
        return user.isEmpty ? nil : Array(user)
    }
    static func base64Decode<C: Collection>(_ text: C) -> [UInt8]? where C.Element == UInt8 {
        var out: [UInt8] = []
        var accumulator: UInt32 = 0
        var bits = 0
        for c in text {
            let v: UInt32
            switch c {
            case 65...90: v = UInt32(c - 65)
            case 97...122: v = UInt32(c - 97 + 26)
            case 48...57: v = UInt32(c - 48 + 52)
            case UInt8(ascii: "+"): v = 62
            case UInt8(ascii: "/"): v = 63
            case UInt8(ascii: "="): continue
            default: return nil
            }
            accumulator = (accumulator << 6) | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((accumulator >> UInt32(bits)) & 0xFF))
            }
        }
        return out
    }

    /// `urllib.parse.quote(SCRIPT_NAME + PATH_INFO)` as TransLogger computes
    /// it: the path percent-decoded (PATH_INFO, latin-1), then encoded as
    /// UTF-8 with everything but letters, digits, `_.-~/` escaped.
    static func pythonQuote(_ path: UnsafeRawBufferPointer, into out: inout LogBytes) {
        // Most paths have no escapes and nothing to quote: as they are.
        if !path.contains(where: { !Self.isUnquoted($0) }) {
            out.append(path)
            return
        }
        var decoded: [UInt8] = []
        percentDecode(path, into: &decoded)
        func escape(_ b: UInt8) {
            out.append(UInt8(ascii: "%"))
            out.append(hexDigit(b >> 4, upper: true))
            out.append(hexDigit(b & 15, upper: true))
        }
        for b in decoded {
            switch b {
            case _ where isUnquoted(b):
                out.append(b)
            case 0x80...:
                escape(0xC0 | (b >> 6))
                escape(0x80 | (b & 0x3F))
            default:
                escape(b)
            }
        }
    }

    /// What `urllib.parse.quote` leaves as it is: letters, digits, `_.-~/`.
    @inline(__always)
    static func isUnquoted(_ b: UInt8) -> Bool {
        switch b {
        case 48...57, 65...90, 97...122, UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "~"),
            UInt8(ascii: "/"):
            return true
        default:
            return false
        }
    }

    private static func escapedOrDash(_ value: UnsafeRawBufferPointer?, into out: inout LogBytes) {
        if let value = value { escaped(value, into: &out) } else { out.append(UInt8(ascii: "-")) }
    }

    private static func escaped(_ value: [UInt8], into out: inout LogBytes) {
        value.withUnsafeBytes { escaped($0, into: &out) }
    }

    /// Apache's escaping of logged values: `"` and `\` backslashed, bytes
    /// outside printable ASCII as `\xHH`.
    private static func escaped(_ value: UnsafeRawBufferPointer, into out: inout LogBytes) {
        // Most values need no escaping: appended in one piece.
        if let base = value.baseAddress?.assumingMemoryBound(to: UInt8.self) {
            var i = 0
            while i < value.count, !needsEscape(base[i]) { i += 1 }
            if i == value.count { return out.append(value) }
        }
        for b in value {
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
                out.append(UInt8(ascii: "\\"))
                out.append(b)
            } else if b < 0x20 || b >= 0x7F {
                out.append(UInt8(ascii: "\\"))
                out.append(UInt8(ascii: "x"))
                out.append(hexDigit(b >> 4, upper: false))
                out.append(hexDigit(b & 15, upper: false))
            } else {
                out.append(b)
            }
        }
    }

    /// Outside printable ASCII, or `"` or `\\`.
    @inline(__always)
    static func needsEscape(_ b: UInt8) -> Bool {
        b &- 0x20 >= 0x5F || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\")
    }

    /// A JSON string of latin-1 bytes (as the environ decodes them).
    static func jsonString(_ value: UnsafeRawBufferPointer, into out: inout LogBytes) {
        out.append(UInt8(ascii: "\""))
        for b in value {
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                out.append(UInt8(ascii: "\\"))
                out.append(b)
            case 0..<0x20, 0x7F...:
                out.append("\\u00")
                out.append(hexDigit(b >> 4, upper: false))
                out.append(hexDigit(b & 15, upper: false))
            default:
                out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// The hex digit for `v` (0...15).
@inline(__always)
func hexDigit(_ v: UInt8, upper: Bool) -> UInt8 {
    v < 10 ? UInt8(ascii: "0") + v : (upper ? UInt8(ascii: "A") : UInt8(ascii: "a")) + v - 10
}

@inline(__always)
func appendInt(_ value: Int, into out: inout [UInt8]) {
    if value < 0 {
        out.append(UInt8(ascii: "-"))
        appendInt(-value, into: &out)
        return
    }
    if value < 10 {
        out.append(UInt8(ascii: "0") + UInt8(value))
        return
    }
    appendInt(value / 10, into: &out)
    out.append(UInt8(ascii: "0") + UInt8(value % 10))
}

/// Local-time stamps for log lines, formatted once per second:
/// `[03/Dec/2026:07:02:33 +0000]` (Apache, TransLogger, gunicorn) and
/// `2026-12-03T07:02:33+00:00` (JSON). The zone is the process's (TZ).
public struct AccessLogClock: Sendable {
    private var second: time_t = -1
    private var bracketedText: [UInt8] = []
    private var isoText: [UInt8] = []

    public init() {}

    mutating func appendBracketed(_ t: Double, into out: inout LogBytes) {
        update(t)
        out.append(bracketedText)
    }

    mutating func appendISO8601(_ t: Double, into out: inout LogBytes) {
        update(t)
        out.append(isoText)
    }

    static let months: [StaticString] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    private mutating func update(_ t: Double) {
        var seconds = time_t(t.rounded(.down))
        guard seconds != second else { return }
        second = seconds
        var parts = tm()
        localtime_r(&seconds, &parts)
        func two(_ v: Int, _ out: inout [UInt8]) {
            out.append(UInt8(ascii: "0") + UInt8(v / 10 % 10))
            out.append(UInt8(ascii: "0") + UInt8(v % 10))
        }
        func clock(_ out: inout [UInt8]) {
            two(Int(parts.tm_hour), &out)
            out.append(UInt8(ascii: ":"))
            two(Int(parts.tm_min), &out)
            out.append(UInt8(ascii: ":"))
            two(Int(parts.tm_sec), &out)
        }
                let offset = Int(parts.tm_gmtoff) / 60
        let sign = offset < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+")
        let hours = abs(offset) / 60
        let minutes = abs(offset) % 60
        let year = Int(parts.tm_year) + 1900
        var b: [UInt8] = [UInt8(ascii: "[")]
        two(Int(parts.tm_mday), &b)
        b.append(UInt8(ascii: "/"))
        let month = Self.months[Int(parts.tm_mon)]
        b.append(contentsOf: UnsafeBufferPointer(start: month.utf8Start, count: 3))
        b.append(UInt8(ascii: "/"))
        appendInt(year, into: &b)
        b.append(UInt8(ascii: ":"))
        clock(&b)
        b.append(32)
        b.append(sign)
        two(hours, &b)
        two(minutes, &b)
        b.append(UInt8(ascii: "]"))
        bracketedText = b
        var j: [UInt8] = []
        appendInt(year, into: &j)
        j.append(UInt8(ascii: "-"))
        two(Int(parts.tm_mon) + 1, &j)
        j.append(UInt8(ascii: "-"))
        two(Int(parts.tm_mday), &j)
        j.append(UInt8(ascii: "T"))
        clock(&j)
        j.append(sign)
        two(hours, &j)
        j.append(UInt8(ascii: ":"))
        two(minutes, &j)
        isoText = j
    }
}
