/// Receives a request body (RFC 9112 §6.3) into an OverflowableBuffer: either
/// a fixed Content-Length or the chunked coding, de-chunked.
public enum BodyReceiver: Sendable {
    case fixed(FixedLengthReceiver)
    case chunked(ChunkedReceiver)

    public var isComplete: Bool {
        switch self {
        case .fixed(let r): return r.isComplete
        case .chunked(let r): return r.isComplete
        }
    }

    /// Consumes bytes of the body; returns how many belonged to it. Throws the
    /// error to answer with when the body is malformed or too large.
    /// The answer to a malformed body of which `received` bytes (framing
    /// included, and everything already read after the fault) have arrived:
    /// Waitress checks that count against `max_request_body_size` before it
    /// looks at the chunked framing, so a malformed chunked body that is
    /// also over the limit is a 413, not a 400.
    public func answer(to error: RequestError, received: Int, maxBodySize: Int) -> RequestError {
        if case .chunked = self, case .badRequest = error, received >= maxBodySize {
            return .entityTooLarge(limit: maxBodySize)
        }
        return error
    }

    public mutating func receive(_ bytes: UnsafeRawBufferPointer, into sink: OverflowableBuffer) throws(RequestError) -> Int {
        switch self {
        case .fixed(var r):
            let n = try r.receive(bytes, into: sink)
            self = .fixed(r)
            return n
        case .chunked(var r):
            let n = try r.receive(bytes, into: sink)
            self = .chunked(r)
            return n
        }
    }
}

public struct FixedLengthReceiver: Sendable {
    public private(set) var remaining: Int

    public init(length: Int) { remaining = length }

    public var isComplete: Bool { remaining == 0 }

    public mutating func receive(_ bytes: UnsafeRawBufferPointer, into sink: OverflowableBuffer) throws(RequestError) -> Int {
        let n = min(remaining, bytes.count)
        do {
            try sink.append(UnsafeRawBufferPointer(rebasing: bytes[0..<n]))
        } catch {
            throw RequestError(spilling: error)
        }
        remaining -= n
        return n
    }
}
