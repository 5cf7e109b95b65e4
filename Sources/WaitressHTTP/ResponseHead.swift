/// The status and header fields an application gave to start_response, copied
/// into one byte array (the strings they came from may change afterwards).
public struct ResponseHeaders: Sendable {
    public var storage: [UInt8] = []
    public var entries: [(name: Range<Int>, value: Range<Int>)] = []

    public init() {
        storage.reserveCapacity(256)
        entries.reserveCapacity(8)
    }

    public mutating func removeAll() {
        storage.removeAll(keepingCapacity: true)
        entries.removeAll(keepingCapacity: true)
    }

    public mutating func append(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        let nameStart = storage.count
        storage.append(contentsOf: name)
        let valueStart = storage.count
        storage.append(contentsOf: value)
        entries.append((nameStart..<valueStart, valueStart..<storage.count))
    }

    public mutating func append(name: String, value: String) {
        var n = name
        var v = value
        n.withUTF8 { nb in v.withUTF8 { vb in append(name: UnsafeRawBufferPointer(nb), value: UnsafeRawBufferPointer(vb)) } }
    }
}

/// How the body of a response is delimited (RFC 9112 §6.3).
public enum BodyFraming: Sendable, Equatable {
    /// No body bytes at all: HEAD, 1xx, 204, 304.
    case none
    case contentLength(Int)
    case chunked
    /// HTTP/1.0 without a length: the end of the body is the end of the connection.
    case untilClose
}

/// Decides a response's framing and connection persistence and writes its
/// head, following Waitress's `Task.build_response_header`: header names are
/// capitalised per dash-separated part and sorted; Content-Length is kept or
/// added when known; HTTP/1.0 keeps the connection only for `Connection:
/// keep-alive` with a length; `Server` (or `Via` when the app set Server) and
/// `Date` are added.
///
/// Deliberate differences (docs/differences.md): an HTTP/1.1 response without
/// a length is chunked and the connection stays open, where Waitress closes it
/// after every such response; a HEAD response gets the headers a GET would have
/// and never a body.
public struct ResponseHead {
    public var framing: BodyFraming
    public var closeAfter: Bool

    public struct Request {
        public var version: HTTPVersion
        public var isHead: Bool
        public var keepAlive: Bool
        public var keepAliveToken: Bool

        public init(version: HTTPVersion, isHead: Bool, keepAlive: Bool, keepAliveToken: Bool) {
            self.version = version
            self.isHead = isHead
            self.keepAlive = keepAlive
            self.keepAliveToken = keepAliveToken
        }
    }

    /// Whether a status allows a body (RFC 9110 §6.4.1; Waitress's `has_body`).
    public static func statusHasBody(_ status: UnsafeRawBufferPointer) -> Bool {
        guard let first = status.first else { return true }
        if first == UInt8(ascii: "1") { return false }
        if status.count >= 3 {
            let code = (status[0], status[1], status[2])
            if code == (UInt8(ascii: "2"), UInt8(ascii: "0"), UInt8(ascii: "4")) { return false }
            if code == (UInt8(ascii: "3"), UInt8(ascii: "0"), UInt8(ascii: "4")) { return false }
        }
        return true
    }

    /// Writes the head to `out` and returns the framing decision.
    /// `contentLength` is the length the body will have when known (from the
    /// app's Content-Length header or computed), nil otherwise.
    public static func write(
        into out: inout [UInt8],
        request: Request,
        status: UnsafeRawBufferPointer,
        headers: ResponseHeaders,
        contentLength: Int?,
        forceClose: Bool,
        ident: [UInt8]?,
        date: [UInt8]
    ) -> ResponseHead {
        let hasBody = statusHasBody(status)
        // Canonical names ("content-type" -> "Content-Type"), into a scratch copy.
        var names = headers.storage
        var sawLength = false
        var sawDate = false
        var sawServer = false
        var lines: [(name: Range<Int>, value: Range<Int>)] = []
        lines.reserveCapacity(headers.entries.count + 5)
        for entry in headers.entries {
            var atStart = true
            for i in entry.name {
                let b = names[i]
                names[i] = atStart ? asciiUpper(b) : asciiLower(b)
                atStart = b == UInt8(ascii: "-")
            }
            let name = names[entry.name]
            if name.elementsEqual("Content-Length".utf8) {
                if !hasBody { continue }
                sawLength = true
            } else if name.elementsEqual("Date".utf8) {
                sawDate = true
            } else if name.elementsEqual("Server".utf8) {
                sawServer = true
            }
            lines.append(entry)
        }
        var extra = ResponseHeaders()
        var hasLength = sawLength
        if !sawLength, hasBody, let length = contentLength {
            extra.append(name: "Content-Length", value: String(length))
            hasLength = true
        }
        var close = forceClose || !request.keepAlive
        var framing: BodyFraming
        switch request.version {
        case .http10:
            if request.keepAliveToken && hasLength && !close {
                extra.append(name: "Connection", value: "Keep-Alive")
            } else {
                close = true
            }
            framing = hasLength ? .contentLength(contentLength ?? 0) : .untilClose
        case .http11:
            if hasLength {
                framing = .contentLength(contentLength ?? 0)
            } else if hasBody {
                extra.append(name: "Transfer-Encoding", value: "chunked")
                framing = .chunked
            } else {
                framing = .none
            }
        }
        if close {
            extra.append(name: "Connection", value: "close")
        }
        if !hasBody || request.isHead {
            framing = .none
        }
        if !sawServer {
            if let ident = ident, !ident.isEmpty {
                ident.withUnsafeBytes { extra.append(name: UnsafeRawBufferPointer(start: "Server", count: 6), value: $0) }
            }
        } else {
            let via = (ident?.isEmpty == false) ? ident! : Array("waitress".utf8)
            via.withUnsafeBytes { extra.append(name: UnsafeRawBufferPointer(start: "Via", count: 3), value: $0) }
        }
        if !sawDate {
            date.withUnsafeBytes { extra.append(name: UnsafeRawBufferPointer(start: "Date", count: 4), value: $0) }
        }

        // Merge app and server headers, sorted by name; stable, as Python's sort.
        var all: [(fromApp: Bool, name: Range<Int>, value: Range<Int>)] = []
        all.reserveCapacity(lines.count + extra.entries.count)
        for line in lines { all.append((true, line.name, line.value)) }
        for line in extra.entries { all.append((false, line.name, line.value)) }
        let sorted = names.withUnsafeBytes { appBytes in
            extra.storage.withUnsafeBytes { extraBytes in
                stableSorted(all) { a, b in
                    let an = UnsafeRawBufferPointer(rebasing: (a.fromApp ? appBytes : extraBytes)[a.name])
                    let bn = UnsafeRawBufferPointer(rebasing: (b.fromApp ? appBytes : extraBytes)[b.name])
                    return an.lexicographicallyPrecedes(bn)
                }
            }
        }
        out.append(contentsOf: "HTTP/".utf8)
        out.append(contentsOf: request.version == .http10 ? "1.0 ".utf8 : "1.1 ".utf8)
        out.append(contentsOf: status)
        for line in sorted {
            out.append(13)
            out.append(10)
            if line.fromApp {
                out.append(contentsOf: names[line.name])
                out.append(contentsOf: ": ".utf8)
                out.append(contentsOf: names[line.value])
            } else {
                out.append(contentsOf: extra.storage[line.name])
                out.append(contentsOf: ": ".utf8)
                out.append(contentsOf: extra.storage[line.value])
            }
        }
        out.append(contentsOf: "\r\n\r\n".utf8)
        return ResponseHead(framing: framing, closeAfter: close || framing == .untilClose)
    }
}

/// Insertion sort: stable and fastest for the handful of fields a response has.
func stableSorted<T>(_ items: [T], by less: (T, T) -> Bool) -> [T] {
    var result = items
    if result.count < 2 { return result }
    for i in 1..<result.count {
        let item = result[i]
        var j = i
        while j > 0 && less(item, result[j - 1]) {
            result[j] = result[j - 1]
            j -= 1
        }
        result[j] = item
    }
    return result
}

/// Chunk framing for a chunked response body (RFC 9112 §7.1): the size in
/// upper-case hex, as Waitress writes it.
public enum ChunkFraming {
    public static func writePrefix(_ size: Int, into out: inout [UInt8]) {
        let digits = Array("0123456789ABCDEF".utf8)
        var buffer = [UInt8]()
        var value = size
        repeat {
            buffer.append(digits[value & 15])
            value >>= 4
        } while value > 0
        out.append(contentsOf: buffer.reversed())
        out.append(13)
        out.append(10)
    }

    public static let suffix: [UInt8] = [13, 10]
    public static let terminator: [UInt8] = Array("0\r\n\r\n".utf8)
}
