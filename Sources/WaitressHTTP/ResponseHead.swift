#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The status and header fields an application gave to start_response, copied
/// into one byte array (the strings they came from may change afterwards).
public struct ResponseHeaders: Sendable {
    public var storage: [UInt8] = []
    public var entries: [(name: Range<Int>, value: Range<Int>)] = []

    public init() {
        self.init(reserving: true)
    }

    /// Headers with room for a typical response reserved, or none
    /// (`reserving: false`: an empty value that allocates nothing).
    public init(reserving: Bool) {
        if reserving {
            storage.reserveCapacity(256)
            entries.reserveCapacity(8)
        }
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
        write(
            request: request, status: status, headers: headers, contentLength: contentLength,
            forceClose: forceClose, ident: ident, date: date
        ) { size, fill in
            let start = out.count
            out.append(contentsOf: repeatElement(0, count: size))
            out.withUnsafeMutableBytes { fill(UnsafeMutableRawBufferPointer(rebasing: $0[start...])) }
        }
    }

    /// Decides the framing and writes the head through `emit`, which is given
    /// the head's exact size and a function that writes it into memory of at
    /// least that size (the caller's output buffer: no intermediate copy).
    ///
    /// This runs once per response: fields are referenced in place (no copies,
    /// no heap allocation), names are canonicalised as they are compared and
    /// written, and the bytes are stored through a pointer.
    public static func write(
        request: Request,
        status: UnsafeRawBufferPointer,
        headers: ResponseHeaders,
        contentLength: Int?,
        forceClose: Bool,
        ident: [UInt8]?,
        date: [UInt8],
        emit: (_ size: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Void) -> Void
    ) -> ResponseHead {
        let hasBody = statusHasBody(status)
        return headers.storage.withUnsafeBytes { appBytes in
            date.withUnsafeBytes { dateBytes in
                (ident ?? []).withUnsafeBytes { identBytes in
                    withUnsafeTemporaryAllocation(of: OutputField.self, capacity: headers.entries.count + 6) { fields in
                        var count = 0
                        var sawLength = false
                        var sawDate = false
                        var sawServer = false
                        for entry in headers.entries {
                            let name = UnsafeRawBufferPointer(rebasing: appBytes[entry.name])
                            switch SpecialResponseField(caseInsensitive: name) {
                            case .contentLength:
                                if !hasBody { continue }
                                sawLength = true
                            case .date: sawDate = true
                            case .server: sawServer = true
                            case .other: break
                            }
                            // Names already written canonically ("Content-Type", as apps
                            // usually write them) are sorted and copied as they are.
                            fields[count] = OutputField(
                                name: name, value: UnsafeRawBufferPointer(rebasing: appBytes[entry.value]),
                                canonicalise: !isCanonicalFieldName(name))
                            count += 1
                        }
                        func add(_ name: StaticString, _ value: UnsafeRawBufferPointer) {
                            fields[count] = OutputField(name: staticBytes(name), value: value, canonicalise: false)
                            count += 1
                        }
                        let addLength = !sawLength && hasBody && contentLength != nil
                        let hasLength = sawLength || addLength
                        var close = forceClose || !request.keepAlive
                        var framing: BodyFraming
                        var keepAliveHeader = false
                        switch request.version {
                        case .http10:
                            if request.keepAliveToken && hasLength && !close {
                                keepAliveHeader = true
                            } else {
                                close = true
                            }
                            framing = hasLength ? .contentLength(contentLength ?? 0) : .untilClose
                        case .http11:
                            if hasLength {
                                framing = .contentLength(contentLength ?? 0)
                            } else if hasBody {
                                add("Transfer-Encoding", staticBytes("chunked"))
                                framing = .chunked
                            } else {
                                framing = .none
                            }
                        }
                        if close {
                            add("Connection", staticBytes("close"))
                        } else if keepAliveHeader {
                            add("Connection", staticBytes("Keep-Alive"))
                        }
                        if !hasBody || request.isHead {
                            framing = .none
                        }
                        if !sawServer {
                            if !identBytes.isEmpty { add("Server", identBytes) }
                        } else if !identBytes.isEmpty {
                            add("Via", identBytes)
                        } else {
                            add("Via", staticBytes("waitress"))
                        }
                        if !sawDate {
                            add("Date", dateBytes)
                        }
                        let head = ResponseHead(framing: framing, closeAfter: close || framing == .untilClose)
                        // Room for Int.min's sign and 19 digits.
                        return withUnsafeTemporaryAllocation(byteCount: 20, alignment: 1) { digitSpace in
                            if addLength, let length = contentLength {
                                add("Content-Length", writeDecimal(length, into: digitSpace))
                            }
                            // Stable insertion sort by canonical name, as Python's sorted().
                            if count > 1 {
                                for i in 1..<count {
                                    let item = fields[i]
                                    var j = i
                                    while j > 0 && item.sortsBefore(fields[j - 1]) {
                                        fields[j] = fields[j - 1]
                                        j -= 1
                                    }
                                    fields[j] = item
                                }
                            }
                            // "HTTP/1.x " status, each "\r\n" name ": " value, "\r\n\r\n".
                            var size = 9 + status.count + 4
                            for i in 0..<count { size += fields[i].name.count + fields[i].value.count + 4 }
                            emit(size) { memory in
                                var at = memory.baseAddress!
                                func put(_ bytes: UnsafeRawBufferPointer) {
                                    if let base = bytes.baseAddress { at.copyMemory(from: base, byteCount: bytes.count) }
                                    at += bytes.count
                                }
                                put(staticBytes(request.version == .http10 ? "HTTP/1.0 " : "HTTP/1.1 "))
                                put(status)
                                for i in 0..<count {
                                    let field = fields[i]
                                    at.storeBytes(of: 0x0A0D, as: UInt16.self)
                                    at += 2
                                    if field.canonicalise {
                                        var atStart = true
                                        for b in field.name {
                                            at.storeBytes(of: atStart ? asciiUpper(b) : asciiLower(b), as: UInt8.self)
                                            at += 1
                                            atStart = b == UInt8(ascii: "-")
                                        }
                                    } else {
                                        put(field.name)
                                    }
                                    at.storeBytes(of: 0x203A, as: UInt16.self)
                                    at += 2
                                    put(field.value)
                                }
                                at.storeBytes(of: 0x0A0D_0A0D, as: UInt32.self)
                                at += 4
                                assert(at - memory.baseAddress! == size)
                            }
                            return head
                        }
                    }
                }
            }
        }
    }
}

/// The bytes of a static string, in place.
@inline(__always)
func staticBytes(_ s: StaticString) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)
}

/// `value` in decimal at the end of `space` (20 bytes or more); returns the
/// digits written (a minus sign first for a negative value).
@inline(__always)
func writeDecimal(_ value: Int, into space: UnsafeMutableRawBufferPointer) -> UnsafeRawBufferPointer {
    var end = 20
    var rest = value.magnitude
    repeat {
        end -= 1
        space[end] = UInt8(truncatingIfNeeded: 48 + rest % 10)
        rest /= 10
    } while rest > 0
    if value < 0 {
        end -= 1
        space[end] = UInt8(ascii: "-")
    }
    return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(space)[end..<20])
}

/// A field of the response head, referenced in place while the head is written.
struct OutputField {
    var name: UnsafeRawBufferPointer
    var value: UnsafeRawBufferPointer
    /// App-provided names are written capitalised per dash-separated part
    /// (Waitress: "-".join(part.capitalize() ...)); server names already are.
    var canonicalise: Bool

    @inline(__always)
    func canonicalByte(_ i: Int) -> UInt8 {
        let b = name[i]
        guard canonicalise else { return b }
        return (i == 0 || name[i - 1] == UInt8(ascii: "-")) ? asciiUpper(b) : asciiLower(b)
    }

    func sortsBefore(_ other: OutputField) -> Bool {
        let n = min(name.count, other.name.count)
        if !canonicalise && !other.canonicalise {
            let order = n == 0 ? 0 : memcmp(name.baseAddress!, other.name.baseAddress!, n)
            return order != 0 ? order < 0 : name.count < other.name.count
        }
        for i in 0..<n {
            let a = canonicalByte(i)
            let b = other.canonicalByte(i)
            if a != b { return a < b }
        }
        return name.count < other.name.count
    }
}

/// Whether `name` is already as Waitress writes it: each dash-separated part
/// capitalised ("Content-Type", "X-Request-Id").
@inline(__always)
func isCanonicalFieldName(_ name: UnsafeRawBufferPointer) -> Bool {
    var atStart = true
    for b in name {
        if b != (atStart ? asciiUpper(b) : asciiLower(b)) { return false }
        atStart = b == UInt8(ascii: "-")
    }
    return true
}

/// The response fields the framing logic looks at, by canonical name.
enum SpecialResponseField {
    case contentLength, date, server, other

    @inline(__always)
    init(caseInsensitive name: UnsafeRawBufferPointer) {
        switch name.count {
        case 14: self = equalsLowercased(name, "content-length") ? .contentLength : .other
        case 4: self = equalsLowercased(name, "date") ? .date : .other
        case 6: self = equalsLowercased(name, "server") ? .server : .other
        default: self = .other
        }
    }
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
