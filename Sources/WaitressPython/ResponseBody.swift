@preconcurrency import CPython
import NIOCore
import WaitressHTTP
import WaitressServer

#if canImport(Glibc)
import Glibc
#endif

private let allocator = ByteBufferAllocator()

extension WSGITask {
    // MARK: body items, buffering and spill

    /// Writes one body item (Waitress's Task.write); false with a Python error set.
    func write(_ data: PyPtr, flush: Bool) -> Bool {
        guard complete else {
            raise(PyExc_RuntimeError, "start_response was not called before body written")
            return false
        }
        guard wp_is_bytes(data) != 0 else { return bodyTypeError(data) }
        if disconnected { return true }
        let size = wp_bytes_size(data)
        if !wroteHeader {
            if size == 0 && flush { return true }  // the head waits for a non-empty item
            writeHead(bodyHint: isHead ? 0 : size)
        }
        let bytes = UnsafeRawBufferPointer(start: wp_bytes_data(data), count: size)
        switch framing {
        case .none:
            if size > 0 && !isHead && !ResponseHead.statusHasBody(status.withUnsafeBytes { $0 }) {
                bodyWritten += size
                if !loggedNoBody {
                    loggedNoBody = true
                    app.warn(
                        "application-written content was ignored due to HTTP response that may not contain a message-body: (\(String(decoding: status, as: UTF8.self)))"
                    )
                }
            }
        case .contentLength(let length):
            let room = max(0, length - bodyWritten)
            let n = min(room, size)
            appendBody(data, UnsafeRawBufferPointer(rebasing: bytes[0..<n]))
            bodyWritten += n
            if n < size && !loggedExcess {
                loggedExcess = true
                app.warn(
                    "application-written content exceeded the number of bytes specified by Content-Length header (\(length))")
            }
        case .chunked:
            if size > 0 {
                var prefix: [UInt8] = []
                ChunkFraming.writePrefix(size, into: &prefix)
                prefix.withUnsafeBytes { appendPending($0) }
                appendBody(data, bytes)
                ChunkFraming.suffix.withUnsafeBytes { appendPending($0) }
                bodyWritten += size
            }
        case .untilClose:
            appendBody(data, bytes)
            bodyWritten += size
        }
        if flush { return flushPending() }
        return true
    }

    /// `expecting`: bytes known to follow at once (the first body item after
    /// the head), so the buffer is made big enough for both: growing it would
    /// double it, past malloc's mmap threshold for 64 KiB bodies, and every
    /// request would then pay fresh page faults (measured: a quarter of the CPU).
    func appendPending(_ bytes: UnsafeRawBufferPointer, expecting: Int = 0) {
        if pending == nil {
            pending = allocator.buffer(capacity: max(bytes.count + expecting, 512))
        }
        pending!.writeBytes(bytes)
    }

    /// Queues `bytes`, the start of the bytes object `data`'s contents:
    /// borrowed when large (BorrowedBytes.swift), else copied after the head.
    private func appendBody(_ data: PyPtr, _ bytes: UnsafeRawBufferPointer) {
        if bytes.count >= BorrowedBytes.threshold {
            appendBorrowed(data, count: bytes.count)
        } else {
            appendPending(bytes)
        }
    }

    /// Queues `count` bytes of the bytes object `data` without copying them
    /// (BorrowedBytes.swift), after what is pending.
    private func appendBorrowed(_ data: PyPtr, count: Int) {
        if let before = pending {
            pending = nil
            sealed.append(before)
            sealedBytes += before.readableBytes
        }
        sealed.append(BorrowedBytes.buffer(data, count: count))
        sealedBytes += count
    }

    /// Drops whatever output is not yet handed to the connection.
    func discardPending() {
        pending = nil
        if !sealed.isEmpty {
            sealed.removeAll()
            sealedBytes = 0
        }
    }

    /// Hands pending bytes to the connection: in memory up to
    /// `outbuf_overflow` pending, past that through a spill file (sent with
    /// sendfile); then waits (GIL released) while more than
    /// `outbuf_high_watermark` is pending and the client is too far behind.
    func flushPending() -> Bool {
        guard pending != nil || !sealed.isEmpty else { return true }
        let connection = request.connection
        if !connection.isOpen {
            discardPending()
            disconnected = true
            return true
        }
        if spill != nil, connection.pendingTotal - connection.pendingMemory <= 0 {
            // The client caught up with the spill file: give its space back
            // (it closes once its last region is written).
            spill = nil
        }
        for part in sealed { handOver(part) }
        if let buffer = pending { handOver(buffer) }
        discardPending()
        // Never waits on the event loop itself (dispatch=inline): the loop is
        // what drains the output. There the spill file past outbuf_overflow
        // bounds the memory instead.
        if !connection.waitForRoomWithoutBlocking() && !request.eventLoop.inEventLoop {
            let state = PyEval_SaveThread()
            let open = connection.waitForRoom()
            PyEval_RestoreThread(state)
            if !open { disconnected = true }
        }
        return true
    }

    /// Sends one piece of output: in memory, or through the spill file once
    /// the memory pending would pass `outbuf_overflow`.
    private func handOver(_ buffer: ByteBuffer) {
        let connection = request.connection
        if !spillFailed && (spill != nil || connection.pendingMemory + buffer.readableBytes > connection.overflow) {
            spillOut(buffer)
        } else {
            // Output that cannot spill waits on the watermark in memory.
            connection.send(.data(buffer))
        }
    }

    /// Appends output to this response's spill file (an unlinked temporary
    /// file) and queues that region. Every `spillRotation` bytes the next
    /// output starts a new file, and a file is closed once its last region is
    /// sent, so a slow reader costs about `outbuf_high_watermark` plus one
    /// file of disk, not the whole response (Waitress rotates its outbufs at
    /// the watermark). A file that cannot be created or written (a full disk)
    /// is logged once and the output stays in memory instead, bounded by the
    /// watermark wait: the response is not cut short.
    private func spillOut(_ buffer: ByteBuffer) {
        let connection = request.connection
        if spill != nil && spillLength >= max(connection.overflow, connection.highWatermark / 4) {
            spill = nil
        }
        if spill == nil {
            do {
                spill = SharedFile(descriptor: try OverflowableBuffer.makeTemporaryFile())
                spillLength = 0
                if !spillCounted, let metrics = connection.metrics {
                    spillCounted = true
                    metrics.responseSpilled()
                }
            } catch {
                spillFailure(error)
                connection.send(.data(buffer))
                return
            }
        }
        let file = spill!
        let offset = spillLength
        let failure: Error? = buffer.withUnsafeReadableBytes { bytes in
            let state = PyEval_SaveThread()
            defer { PyEval_RestoreThread(state) }
            do {
                try file.withDescriptor { try OverflowableBuffer.writeAll($0, bytes) }
                return nil
            } catch {
                return error
            }
        }
        if let failure = failure {
            // What was written of this piece is not referenced by any region.
            spill = nil
            spillFailure(failure)
            connection.send(.data(buffer))
            return
        }
        spillLength += buffer.readableBytes
        connection.send(.file(file, offset: offset, length: buffer.readableBytes, spilled: true))
    }

    private func spillFailure(_ error: Error) {
        spillFailed = true
        var reason = "\(error)"
        if case OverflowableBuffer.SpillError.io(let code) = error { reason = String(cString: strerror(code)) }
        app.error(
            "could not write response output to a temporary file in \(OverflowableBuffer.temporaryDirectory) (\(reason)) while serving \(app.pathForLog(request)); keeping it in memory, bounded by outbuf_high_watermark"
        )
    }

    func writeHead(bodyHint: Int = 0, forceClose: Bool = false) {
        // Read in place: a copy of the whole head costs a retain and a release per array.
        let decision = status.withUnsafeBytes { statusBytes in
            ResponseHead.write(
                request: .init(
                    version: request.head.version, isHead: request.head.isHead, keepAlive: request.head.keepAlive,
                    keepAliveToken: request.head.connectionKeepAliveToken),
                status: statusBytes, headers: headers, contentLength: contentLength,
                forceClose: forceClose || request.connection.serverDraining,
                ident: app.ident, date: app.currentDate()
            ) { size, fill in
                // Straight into the output buffer, with room for the body that follows.
                if pending == nil {
                    pending = allocator.buffer(capacity: max(size + bodyHint + 16, 512))
                }
                pending!.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { memory in
                    fill(memory)
                    return size
                }
            }
        }
        framing = decision.framing
        closeAfter = decision.closeAfter
        wroteHeader = true
    }

    func bodyTypeError(_ chunk: PyPtr) -> Bool {
        let typeName = swiftString(PyObject_Str(PyObject_Type(chunk)) ?? wp_none()) ?? "?"
        raise(PyExc_TypeError, "response body items must be bytes, not \(typeName)")
        return false
    }
}
