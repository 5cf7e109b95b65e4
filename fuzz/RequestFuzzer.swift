// libFuzzer target over the request parser and the body receivers: each
// input is fed the way a connection feeds it (whole, and again in pieces
// whose sizes come from the input itself), and the two runs must agree.
// Built by fuzz/run.sh with -sanitize=fuzzer,address.

private func run(_ data: UnsafeRawBufferPointer, pieces: [Int]?) -> [String] {
    var log: [String] = []
    var parser = RequestHeadParser(maxHeaderSize: 4096, maxBodySize: 1 << 16)
    var buffer: [UInt8] = []
    var offset = 0
    var pieceIndex = 0
    var body: (receiver: BodyReceiver, sink: OverflowableBuffer)? = nil
    var requests = 0
    while offset < data.count || !buffer.isEmpty {
        if offset < data.count {
            var size = data.count - offset
            if let pieces = pieces, !pieces.isEmpty {
                size = min(size, pieces[pieceIndex % pieces.count])
                pieceIndex += 1
            }
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: data[offset..<(offset + size)]))
            offset += size
        }
        var progressed = true
        while progressed && !buffer.isEmpty {
            progressed = false
            if var state = body {
                let consumed: Int
                do {
                    consumed = try buffer.withUnsafeBytes { bytes throws(RequestError) in
                        try state.receiver.receive(bytes, into: state.sink)
                    }
                } catch {
                    log.append("body error \((error as? RequestError)?.statusCode ?? 0)")
                    return log
                }
                precondition(consumed <= buffer.count)
                buffer.removeFirst(consumed)
                if state.receiver.isComplete {
                    let length = state.sink.count
                    switch state.sink.take() {
                    case .memory(let bytes): precondition(bytes.count == length)
                    case .file(let fd, let size): precondition(size == length); _ = close(fd)
                    }
                    log.append("body \(length)")
                    body = nil
                    progressed = true
                } else {
                    body = state
                    progressed = consumed > 0
                }
                continue
            }
            let result = buffer.withUnsafeBytes { parser.parse($0) }
            switch result {
            case .needMore:
                break
            case .failure(let error, _):
                log.append("error \(error.statusCode)")
                return log
            case .head(let head, let consumed):
                precondition(consumed > 0 && consumed <= buffer.count)
                buffer.removeFirst(consumed)
                parser.reset()
                for field in head.fields {
                    precondition(field.name.upperBound <= head.storage.count && field.value.upperBound <= head.storage.count)
                }
                log.append("head \(head.fields.count) \(head.contentLength) \(head.isChunked) \(head.keepAlive)")
                requests += 1
                if head.isChunked {
                    body = (.chunked(ChunkedReceiver(maxBodySize: 1 << 16, maxHeaderSize: 4096)), OverflowableBuffer(overflow: 512))
                } else if head.contentLength > 0 {
                    body = (.fixed(FixedLengthReceiver(length: head.contentLength)), OverflowableBuffer(overflow: 512))
                }
                progressed = true
            }
        }
        if offset >= data.count { break }
    }
    return log
}

#if canImport(Glibc)
import Glibc
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start = start else { return 0 }
    let data = UnsafeRawBufferPointer(start: start, count: count)
    let whole = run(data, pieces: nil)
    // Piece sizes from the first bytes: the same input split differently must
    // give the same requests, bodies and errors.
    let pieces = (0..<min(4, count)).map { Int(data[$0] % 7) + 1 }
    let split = run(data, pieces: pieces)
    precondition(whole == split, "split feeding disagrees: \(whole) vs \(split)")
    return 0
}
