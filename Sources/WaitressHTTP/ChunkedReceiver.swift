/// De-chunks a `Transfer-Encoding: chunked` body (RFC 9112 §7.1), strictly:
///
///     chunk      = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
///     chunk-size = 1*HEXDIG            (bounded: no overflow)
///     chunk-ext  = *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )
///     last-chunk = 1*("0") [ chunk-ext ] CRLF, then trailer fields, then CRLF
///
/// Bare LF, bare CR, a missing CRLF after chunk data, anything but BWS ";"
/// after the size digits, or a malformed extension is a 400; data beyond `maxBodySize` is a 413 as soon as it is announced;
/// trailer fields are read, checked, bounded by `maxHeaderSize` and dropped.
public struct ChunkedReceiver: Sendable {
    enum State: Sendable {
        case sizeLine
        case data(remaining: Int)
        case dataCR
        case dataLF
        case trailerLine
        case done
    }

    let maxBodySize: Int
    let maxHeaderSize: Int
    var state: State = .sizeLine
    /// The control line being collected (size line or trailer line), without CRLF.
    var line: [UInt8] = []
    var sawCR = false
    var trailerBytes = 0
    public private(set) var bodyLength = 0

    /// The longest chunk-size line accepted, extensions included.
    static let maxSizeLine = 4096

    public init(maxBodySize: Int, maxHeaderSize: Int) {
        self.maxBodySize = maxBodySize
        self.maxHeaderSize = maxHeaderSize
    }

    public var isComplete: Bool {
        if case .done = state { return true }
        return false
    }

    public mutating func receive(_ bytes: UnsafeRawBufferPointer, into sink: OverflowableBuffer) throws(RequestError) -> Int {
        var i = 0
        while i < bytes.count {
            switch state {
            case .done:
                return i
            case .data(let remaining):
                let n = min(remaining, bytes.count - i)
                do {
                    try sink.append(UnsafeRawBufferPointer(rebasing: bytes[i..<(i + n)]))
                } catch {
                    throw RequestError(spilling: error)
                }
                i += n
                state = remaining == n ? .dataCR : .data(remaining: remaining - n)
            case .dataCR:
                guard bytes[i] == 13 else { throw .badRequest("Chunk not properly terminated") }
                i += 1
                state = .dataLF
            case .dataLF:
                guard bytes[i] == 10 else { throw .badRequest("Chunk not properly terminated") }
                i += 1
                state = .sizeLine
            case .sizeLine, .trailerLine:
                let b = bytes[i]
                i += 1
                if sawCR {
                    guard b == 10 else { throw .badRequest("Bare CR found in chunked body") }
                    sawCR = false
                    try finishLine()
                } else if b == 13 {
                    sawCR = true
                } else if b == 10 {
                    throw .badRequest("Bare LF found in chunked body")
                } else {
                    line.append(b)
                    if case .sizeLine = state, line.count > Self.maxSizeLine {
                        throw .badRequest("Chunk size line too long")
                    }
                    if case .trailerLine = state, trailerBytes + line.count >= maxHeaderSize {
                        throw .headerFieldsTooLarge(limit: maxHeaderSize)
                    }
                }
            }
        }
        return i
    }

    private mutating func finishLine() throws(RequestError) {
        defer { line.removeAll(keepingCapacity: true) }
        switch state {
        case .sizeLine:
            let size = try Self.parseSizeLine(line, maxBodySize: maxBodySize)
            if size == 0 {
                state = .trailerLine
                return
            }
            bodyLength += size
            if bodyLength >= maxBodySize {
                throw .entityTooLarge(limit: maxBodySize)
            }
            state = .data(remaining: size)
        case .trailerLine:
            if line.isEmpty {
                state = .done
                return
            }
            trailerBytes += line.count + 2
            guard Self.isValidTrailerField(line) else { throw .badRequest("Invalid trailer field") }
        default:
            break
        }
    }

    static func parseSizeLine(_ line: [UInt8], maxBodySize: Int) throws(RequestError) -> Int {
        var i = 0
        var size = 0
        while i < line.count, let digit = hexValue(line[i]) {
            // A size this large can never be accepted: stop before overflowing.
            if size > (Int.max >> 5) { throw .entityTooLarge(limit: maxBodySize) }
            size = size << 4 | digit
            i += 1
        }
        guard i > 0 else { throw .badRequest("Invalid chunk size") }
        // After the digits: the end of the line, or BWS and a ";" that starts
        // an extension. Anything else (`0x20`, `5 `, `5z`) is a bad size, as
        // Waitress words it; whitespace is allowed only before a ";".
        var j = i
        while j < line.count, line[j] == 32 || line[j] == 9 { j += 1 }
        if j == line.count ? j > i : line[j] != UInt8(ascii: ";") {
            throw .badRequest("Invalid chunk size")
        }
        try validateExtensions(line, from: i)
        return size
    }

    /// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
    static func validateExtensions(_ line: [UInt8], from start: Int) throws(RequestError) {
        var i = start
        func skipWhitespace() { while i < line.count, line[i] == 32 || line[i] == 9 { i += 1 } }
        func token() -> Bool {
            let s = i
            while i < line.count, byteClassTable[Int(line[i])] & ByteClass.token != 0 { i += 1 }
            return i > s
        }
        while true {
            skipWhitespace()
            if i == line.count { return }
            guard line[i] == UInt8(ascii: ";") else { throw .badRequest("Invalid chunk extension") }
            i += 1
            skipWhitespace()
            guard token() else { throw .badRequest("Invalid chunk extension") }
            skipWhitespace()
            if i < line.count, line[i] == UInt8(ascii: "=") {
                i += 1
                skipWhitespace()
                if i < line.count, line[i] == UInt8(ascii: "\"") {
                    i += 1
                    var closed = false
                    while i < line.count {
                        let b = line[i]
                        if b == UInt8(ascii: "\"") { closed = true; i += 1; break }
                        if b == UInt8(ascii: "\\") {
                            i += 1
                            guard i < line.count, byteClassTable[Int(line[i])] & ByteClass.fieldValue != 0 else {
                                throw .badRequest("Invalid chunk extension")
                            }
                        } else if byteClassTable[Int(b)] & ByteClass.fieldValue == 0 {
                            throw .badRequest("Invalid chunk extension")
                        }
                        i += 1
                    }
                    guard closed else { throw .badRequest("Invalid chunk extension") }
                } else if !token() {
                    throw .badRequest("Invalid chunk extension")
                }
            }
        }
    }

    static func isValidTrailerField(_ line: [UInt8]) -> Bool {
        var i = 0
        while i < line.count, byteClassTable[Int(line[i])] & ByteClass.token != 0 { i += 1 }
        guard i > 0, i < line.count, line[i] == UInt8(ascii: ":") else { return false }
        for b in line[(i + 1)...] where byteClassTable[Int(b)] & ByteClass.fieldValue == 0 {
            return false
        }
        return true
    }
}
