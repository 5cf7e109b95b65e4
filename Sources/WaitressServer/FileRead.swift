#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore

/// A file region on a secure connection, where sendfile cannot be used (the
/// bytes must be encrypted by the TLS handler in the pipeline): it is read
/// with pread in pieces of `pieceSize`, the next once the previous has been
/// written to the socket, so a `wsgi.file_wrapper` file or a spill file costs
/// one piece of memory per connection, whatever its size, and a slow client
/// holds back the reads as it would hold back sendfile.
struct FileRead {
    static let pieceSize = 131_072

    let file: SharedFile
    var offset: Int
    var remaining: Int
    /// Response output spilled to a file: its bytes count in the response
    /// channel's pending total until written.
    let spilled: Bool
}

extension ConnectionHandler {
    func startFileRead(_ read: FileRead, _ context: ChannelHandlerContext) {
        fileRead = read
        // What was written before the region goes first.
        flushIfNeeded()
        readNextPiece(context)
    }

    private func readNextPiece(_ context: ChannelHandlerContext) {
        guard var read = fileRead else { return }
        guard read.remaining > 0, context.channel.isActive else { return finishFileRead(written: read.remaining == 0) }
        let count = min(FileRead.pieceSize, read.remaining)
        var buffer = context.channel.allocator.buffer(capacity: count)
        var got = 0
        let offset = read.offset
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { space in
            got = read.file.withDescriptor { pread($0, space.baseAddress, count, off_t(offset)) }
            return max(got, 0)
        }
        guard got > 0 else {
            // The file shrank or cannot be read: the response's framing can
            // no longer be kept, so the connection ends (as a failed sendfile).
            let reason = got < 0 ? String(cString: strerror(errno)) : "file ended early"
            core.logs.post(.error, "Socket error: reading a response file for a TLS connection failed (\(reason))")
            context.close(promise: nil)
            return finishFileRead(written: false)
        }
        read.offset += got
        read.remaining -= got
        fileRead = read
        let promise = context.eventLoop.makePromise(of: Void.self)
        let channel = responseChannel!
        let spilled = read.spilled
        promise.futureResult.whenComplete { result in
            if spilled { channel.drained(memory: 0, total: got) }
            // A task of its own: a write that completes at once must not
            // recurse into the next piece.
            context.eventLoop.execute {
                if case .failure = result { return self.finishFileRead(written: false) }
                self.readNextPiece(context)
            }
        }
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(buffer)), promise: promise)
    }

    /// Ends the region (written out, or abandoned with the connection) and
    /// hands on the parts that waited for it.
    private func finishFileRead(written: Bool) {
        guard let read = fileRead else { return }
        if !written && read.spilled && read.remaining > 0 {
            responseChannel?.drained(memory: 0, total: read.remaining)
        }
        fileRead = nil
        withExtendedLifetime(read.file) {}
        while fileRead == nil, let part = partsAfterFile.popFirst() {
            handle(part)
        }
        flushIfNeeded()
    }
}
