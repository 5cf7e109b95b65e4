@preconcurrency import CPython
import NIOCore
import WaitressHTTP
import WaitressServer

#if canImport(Glibc)
import Glibc
#endif

/// What start_response must check about a header field name.
private enum FieldCheck {
    case contentLength, forbidden, crlfInName, crlfInValue, other

    /// Hop-by-hop fields an application may not set (PEP 3333; Waitress's list).
    static let hopByHopNames: [[UInt8]] = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
        "transfer-encoding", "upgrade",
    ].map { Array($0.utf8) }
    static let contentLengthName = Array("content-length".utf8)

    init(name: UnsafeRawBufferPointer) {
        func matches(_ lower: [UInt8]) -> Bool {
            guard lower.count == name.count else { return false }
            for i in 0..<lower.count where asciiLowerByte(name[i]) != lower[i] { return false }
            return true
        }
        if matches(Self.contentLengthName) {
            self = .contentLength
        } else if Self.hopByHopNames.contains(where: matches) {
            self = .forbidden
        } else {
            self = .other
        }
    }
}

private let allocator = ByteBufferAllocator()

/// One request in service on a worker thread, with the GIL held: builds the
/// environ, calls the application, validates start_response, drives the
/// app_iter and frames the response (Waitress's WSGITask and Task).
final class WSGITask {
    let app: WSGIApplication
    let request: Request
    private var status: [UInt8] = []
    private var headers = ResponseHeaders()
    private var contentLength: Int?
    private var complete = false
    private var wroteHeader = false
    private var framing = BodyFraming.none
    private var closeAfter = false
    private var bodyWritten = 0
    private var loggedExcess = false
    private var loggedNoBody = false
    /// Bytes not yet handed to the connection (head and body coalesced).
    private var pending: ByteBuffer?
    /// Whether the connection went away while streaming.
    private var disconnected = false
    /// Set once the response's end went to the connection: nothing more may
    /// be written for it.
    private var ended = false
    /// Output past `outbuf_overflow` goes here, then out with sendfile.
    private var spill: SharedFile?
    private var spillLength = 0

    /// The worker's batch: response ends wait there until the worker has
    /// drained its queue (or 16 of them), then reach the loop together.
    let batch: ResponseBatch

    /// Output that is all available at once (a list's items, a file's blocks)
    /// is handed to the connection in pieces of about this size.
    static let coalesceLimit = 262_144

    init(app: WSGIApplication, request: Request, batch: ResponseBatch) {
        self.app = app
        self.request = request
        self.batch = batch
    }

    var isHead: Bool { request.head.isHead }

    // MARK: running

    func run() {
        var rejected: String? = nil
        guard let environ = app.buildEnviron(for: request, rejected: &rejected) else {
            handleException(wp_err_fetch())
            return
        }
        defer { wp_decref(environ) }
        if let detail = rejected {
            respondMalformedProxyHeader(detail)
            return
        }
        // Weak: an app may keep these callables after its request is over.
        guard let startResponse = NativeCallable.make({ [weak self] args, kwargs in
            guard let self = self, !self.ended else {
                return raise(PyExc_RuntimeError, "start_response called after the response ended")
            }
            return self.startResponse(args, kwargs)
        }) else {
            handleException(wp_err_fetch())
            return
        }
        defer { wp_decref(startResponse) }
        guard let result = callObject(app.application, [environ, startResponse]) else {
            handleException(wp_err_fetch())
            return
        }
        var failure: PyPtr? = nil
        if !drive(result) {
            failure = wp_err_fetch()
        }
        // close() is called on every app_iter that has it (PEP 3333), also after
        // errors and disconnects.
        if wp_is_exact_list(result) == 0 && wp_is_exact_tuple(result) == 0,
            PyObject_HasAttr(result, app.keys.closeName) == 1
        {
            if let closed = callMethod(result, "close") {
                wp_decref(closed)
            } else if failure == nil {
                failure = wp_err_fetch()
            } else {
                PyErr_Clear()
            }
        }
        wp_decref(result)
        if let failure = failure {
            handleException(failure)
            return
        }
        if disconnected {
            logClientDisconnected()
            sendEnd(close: true)
            return
        }
        if !finish() {
            handleException(wp_err_fetch())
        }
    }

    /// Iterates the app_iter, writing what it yields; false with a Python error set.
    private func drive(_ result: PyPtr) -> Bool {
        if let wrapperType = app.fileWrapperType, wp_type_check(result, wrapperType) != 0 {
            return driveFileWrapper(result)
        }
        // A list or tuple is all there: coalesce it into as few writes as
        // possible (a hop to the event loop per 256 KiB, and the memory and
        // watermark bounds still apply between them).
        if wp_is_exact_list(result) != 0 || wp_is_exact_tuple(result) != 0 {
            let isList = wp_is_exact_list(result) != 0
            let count = isList ? wp_list_size(result) : wp_tuple_size(result)
            for i in 0..<count {
                let chunk = isList ? wp_list_item(result, i)! : wp_tuple_item(result, i)!
                if i == 0 && count == 1 && contentLength == nil {
                    guard wp_is_bytes(chunk) != 0 else { return bodyTypeError(chunk) }
                    contentLength = wp_bytes_size(chunk)
                }
                guard write(chunk, flush: (pending?.readableBytes ?? 0) >= Self.coalesceLimit) else { return false }
                if disconnected { break }
            }
            return true
        }
        guard let iterator = PyObject_GetIter(result) else { return false }
        defer { wp_decref(iterator) }
        var first = true
        while let chunk = PyIter_Next(iterator) {
            defer { wp_decref(chunk) }
            if first {
                first = false
                // start_response may come with the first item (PEP 3333), so
                // the one-item length rule is checked here.
                if contentLength == nil, PyObject_HasAttr(result, app.keys.lenName) == 1, PyObject_Size(result) == 1 {
                    guard wp_is_bytes(chunk) != 0 else { return bodyTypeError(chunk) }
                    contentLength = wp_bytes_size(chunk)
                }
                PyErr_Clear()
            }
            guard write(chunk, flush: true) else { return false }
            if disconnected { return true }
        }
        return PyErr_Occurred() == nil
    }

    /// wsgi.file_wrapper: a seekable file gets Content-Length from its
    /// remaining size (Waitress's ReadOnlyFileBasedBuffer.prepare), then goes out
    /// in block_size pieces.
    private func driveFileWrapper(_ wrapper: PyPtr) -> Bool {
        guard let file = getAttribute(wrapper, "file") else { return false }
        defer { wp_decref(file) }
        var blockSize = 32768
        if let size = getAttribute(wrapper, "block_size") {
            blockSize = max(1, PyLong_AsLong(size))
            wp_decref(size)
            if PyErr_Occurred() != nil { return false }
        }
        var remaining: Int? = nil
        var startOffset: Int? = nil
        guard let seekable = isSeekable(file) else { return false }
        if seekable {
            guard let start = callMethod(file, "tell") else { return false }
            defer { wp_decref(start) }
            guard let zero = PyLong_FromLong(0), let two = PyLong_FromLong(2) else { return false }
            defer { wp_decref(zero); wp_decref(two) }
            guard let moved = callMethod(file, "seek", [zero, two]) else { return false }
            wp_decref(moved)
            guard let end = callMethod(file, "tell") else { return false }
            defer { wp_decref(end) }
            guard let back = callMethod(file, "seek", [start]) else { return false }
            wp_decref(back)
            let size = PyLong_AsLong(end) - PyLong_AsLong(start)
            if PyErr_Occurred() != nil { return false }
            startOffset = PyLong_AsLong(start)
            remaining = min(size, contentLength ?? size)
            if let r = remaining, r > 0, contentLength != r {
                removeContentLengthHeader()
                contentLength = r
            }
        }
        if let length = remaining, length > 0, let start = startOffset,
            let descriptor = regularFileDescriptor(file)
        {
            // A real file: the head now, then the file itself with sendfile.
            writeHead()
            let shared = SharedFile(descriptor: descriptor)
            guard flushPending() else { return false }
            if case .contentLength = framing, !disconnected {
                request.connection.send(.file(shared, offset: start, length: length, spilled: false))
                bodyWritten += length
            }
            return true
        }
        guard let block = PyLong_FromLong(blockSize) else { return false }
        defer { wp_decref(block) }
        while remaining.map({ $0 > 0 }) ?? true {
            guard let chunk = callMethod(file, "read", [block]) else { return false }
            defer { wp_decref(chunk) }
            guard wp_is_bytes(chunk) != 0 else { return bodyTypeError(chunk) }
            let size = wp_bytes_size(chunk)
            if size == 0 { break }
            remaining = remaining.map { $0 - size }
            // A file's blocks are all there to read: hand them over in pieces
            // (coalesceLimit), not one hop to the event loop per block.
            guard write(chunk, flush: (pending?.readableBytes ?? 0) >= Self.coalesceLimit) else { return false }
            if disconnected { return true }
        }
        return true
    }

    /// Waitress's test: the file's own `seekable()` when it has one (an
    /// `io.RawIOBase` subclass or a pipe has seek/tell but answers False),
    /// else whether it has both `seek` and `tell`. nil with a Python error set.
    private func isSeekable(_ file: PyPtr) -> Bool? {
        if PyObject_HasAttrString(file, "seekable") == 1 {
            guard let answer = callMethod(file, "seekable") else { return nil }
            defer { wp_decref(answer) }
            let truth = PyObject_IsTrue(answer)
            return truth < 0 ? nil : truth == 1
        }
        return PyObject_HasAttrString(file, "seek") == 1 && PyObject_HasAttrString(file, "tell") == 1
    }

    /// A duplicate of the file's descriptor when it is a regular file that
    /// sendfile can read, else nil (and no Python error left set).
    private func regularFileDescriptor(_ file: PyPtr) -> Int32? {
        guard PyObject_HasAttrString(file, "fileno") == 1, let number = callMethod(file, "fileno") else {
            PyErr_Clear()
            return nil
        }
        defer { wp_decref(number) }
        let fd = PyLong_AsLong(number)
        if PyErr_Occurred() != nil {
            PyErr_Clear()
            return nil
        }
        var info = stat()
        guard fstat(Int32(fd), &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        let copy = dup(Int32(fd))
        return copy >= 0 ? copy : nil
    }

    private func removeContentLengthHeader() {
        var kept = ResponseHeaders()
        for entry in headers.entries {
            let name = headers.storage[entry.name]
            if name.count == 14 && name.map(asciiLowerByte).elementsEqual("content-length".utf8) { continue }
            headers.storage.withUnsafeBytes { bytes in
                kept.append(
                    name: UnsafeRawBufferPointer(rebasing: bytes[entry.name]),
                    value: UnsafeRawBufferPointer(rebasing: bytes[entry.value]))
            }
        }
        headers = kept
    }

    private func bodyTypeError(_ chunk: PyPtr) -> Bool {
        let typeName = swiftString(PyObject_Str(PyObject_Type(chunk)) ?? wp_none()) ?? "?"
        raise(PyExc_TypeError, "response body items must be bytes, not \(typeName)")
        return false
    }

    // MARK: start_response and write

    private func startResponse(_ args: PyPtr, _ kwargs: PyPtr?) -> PyPtr? {
        let count = wp_tuple_size(args)
        var excInfo: PyPtr? = count >= 3 ? wp_tuple_item(args, 2) : nil
        if let kwargs = kwargs {
            if let value = PyDict_GetItemString(kwargs, "exc_info") {
                excInfo = value
            }
            if PyDict_Size(kwargs) > (PyDict_GetItemString(kwargs, "exc_info") != nil ? 1 : 0) {
                return raise(PyExc_TypeError, "start_response() got an unexpected keyword argument")
            }
        }
        guard count >= 2, count <= 3 else {
            return raise(PyExc_TypeError, "start_response() takes 2 or 3 positional arguments but \(count) were given")
        }
        if let info = excInfo, info == wp_none() { excInfo = nil }
        if complete && excInfo == nil {
            return raise(
                PyExc_AssertionError, "start_response called a second time without providing exc_info.")
        }
        if let info = excInfo {
            if wroteHeader {
                // Too late to change the response: re-raise the app's exception.
                guard let value = PySequence_GetItem(info, 1) else { return nil }
                if let traceback = PySequence_GetItem(info, 2) {
                    if traceback != wp_none() { PyException_SetTraceback(value, traceback) }
                    wp_decref(traceback)
                }
                wp_err_restore(value)
                return nil
            }
            headers.removeAll()
            contentLength = nil
        }
        complete = true
        let statusObject = wp_tuple_item(args, 0)!
        guard wp_is_unicode(statusObject) != 0 else {
            let text = swiftString(PyObject_Str(statusObject) ?? wp_none()) ?? "?"
            return raise(PyExc_AssertionError, "status \(text) is not a string")
        }
        guard let statusBytes = withLatin1Bytes(statusObject, { Array($0) }) else { return nil }
        if statusBytes.contains(10) || statusBytes.contains(13) {
            return raise(PyExc_ValueError, "carriage return/line feed character present in status")
        }
        status = statusBytes
        let headerList = wp_tuple_item(args, 1)!
        if wp_is_exact_list(headerList) != 0 {
            // The usual case, without an iterator object.
            var i = 0
            while i < wp_list_size(headerList) {
                let item = wp_list_item(headerList, i)!
                wp_incref(item)
                defer { wp_decref(item) }
                guard addHeader(item) else { return nil }
                i += 1
            }
        } else {
            guard let iterator = PyObject_GetIter(headerList) else { return nil }
            defer { wp_decref(iterator) }
            while let item = PyIter_Next(iterator) {
                defer { wp_decref(item) }
                guard addHeader(item) else { return nil }
            }
            if PyErr_Occurred() != nil { return nil }
        }
        return NativeCallable.make { [weak self] args, _ in
            guard let self = self, !self.ended else {
                return raise(PyExc_RuntimeError, "write() called after the response ended")
            }
            guard wp_tuple_size(args) == 1 else {
                return raise(PyExc_TypeError, "write() takes exactly one argument")
            }
            let data = wp_tuple_item(args, 0)!
            guard wp_is_bytes(data) != 0 else {
                _ = self.bodyTypeError(data)
                return nil
            }
            guard self.write(data, flush: true) else { return nil }
            if self.disconnected {
                return raise(self.app.clientDisconnectedError, "Client disconnected")
            }
            return wp_new_none()
        }
    }

    private func addHeader(_ item: PyPtr) -> Bool {
        let name: PyPtr
        let value: PyPtr
        if wp_is_exact_tuple(item) != 0 && wp_tuple_size(item) == 2 {
            name = wp_tuple_item(item, 0)!
            value = wp_tuple_item(item, 1)!
            wp_incref(name)
            wp_incref(value)
        } else {
            guard PySequence_Check(item) == 1, PySequence_Size(item) == 2,
                let n = PySequence_GetItem(item, 0), let v = PySequence_GetItem(item, 1)
            else {
                if PyErr_Occurred() == nil { raise(PyExc_AssertionError, "Header must be a (name, value) tuple") }
                return false
            }
            name = n
            value = v
        }
        defer { wp_decref(name); wp_decref(value) }
        func describe() -> String {
            let n = swiftString(PyObject_Repr(name) ?? wp_none()) ?? "?"
            let v = swiftString(PyObject_Repr(value) ?? wp_none()) ?? "?"
            return "(\(n), \(v))"
        }
        guard wp_is_unicode(name) != 0 else {
            let n = swiftString(PyObject_Repr(name) ?? wp_none()) ?? "?"
            raise(PyExc_AssertionError, "Header name \(n) is not a string in \(describe())")
            return false
        }
        guard wp_is_unicode(value) != 0 else {
            let v = swiftString(PyObject_Repr(value) ?? wp_none()) ?? "?"
            raise(PyExc_AssertionError, "Header value \(v) is not a string in \(describe())")
            return false
        }
        // Copy both as latin-1 straight into the header storage, then check.
        let nameStart = headers.storage.count
        guard withLatin1Bytes(name, { headers.storage.append(contentsOf: $0) }) != nil else { return false }
        let valueStart = headers.storage.count
        guard withLatin1Bytes(value, { headers.storage.append(contentsOf: $0) }) != nil else {
            headers.storage.removeSubrange(nameStart...)
            return false
        }
        let nameRange = nameStart..<valueStart
        let valueRange = valueStart..<headers.storage.count
        let problem: FieldCheck = headers.storage.withUnsafeBytes { bytes in
            let n = UnsafeRawBufferPointer(rebasing: bytes[nameRange])
            let v = UnsafeRawBufferPointer(rebasing: bytes[valueRange])
            if v.contains(10) || v.contains(13) { return .crlfInValue }
            if n.contains(10) || n.contains(13) { return .crlfInName }
            return FieldCheck(name: n)
        }
        switch problem {
        case .crlfInValue:
            headers.storage.removeSubrange(nameStart...)
            raise(PyExc_ValueError, "carriage return/line feed character present in header value")
            return false
        case .crlfInName:
            headers.storage.removeSubrange(nameStart...)
            raise(PyExc_ValueError, "carriage return/line feed character present in header name")
            return false
        case .forbidden:
            headers.storage.removeSubrange(nameStart...)
            let n = swiftString(name) ?? "?"
            raise(
                PyExc_AssertionError,
                "\(n) is a \"hop-by-hop\" header; it cannot be used by a WSGI application (see PEP 3333)")
            return false
        case .contentLength:
            // int(v) as Waitress does; plain digits without a Python call.
            let digits = headers.storage.withUnsafeBytes { bytes -> Int? in
                let v = UnsafeRawBufferPointer(rebasing: bytes[valueRange])
                guard !v.isEmpty, v.count <= 18 else { return nil }
                var total = 0
                for b in v {
                    guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
                    total = total * 10 + Int(b - UInt8(ascii: "0"))
                }
                return total
            }
            if let digits = digits {
                contentLength = digits
            } else {
                guard let number = PyLong_FromUnicodeObject(value, 10) else {
                    headers.storage.removeSubrange(nameStart...)
                    return false
                }
                defer { wp_decref(number) }
                let length = PyLong_AsLong(number)
                if PyErr_Occurred() != nil {
                    headers.storage.removeSubrange(nameStart...)
                    return false
                }
                contentLength = length
            }
        case .other:
            break
        }
        headers.entries.append((nameRange, valueRange))
        return true
    }

    /// Writes one body item (Waitress's Task.write); false with a Python error set.
    private func write(_ data: PyPtr, flush: Bool) -> Bool {
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
            appendPending(UnsafeRawBufferPointer(rebasing: bytes[0..<n]))
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
                appendPending(bytes)
                ChunkFraming.suffix.withUnsafeBytes { appendPending($0) }
                bodyWritten += size
            }
        case .untilClose:
            appendPending(bytes)
            bodyWritten += size
        }
        if flush { return flushPending() }
        return true
    }

    /// `expecting`: bytes known to follow at once (the first body item after
    /// the head), so the buffer is made big enough for both: growing it would
    /// double it, past malloc's mmap threshold for 64 KiB bodies, and every
    /// request would then pay fresh page faults (measured: a quarter of the CPU).
    private func appendPending(_ bytes: UnsafeRawBufferPointer, expecting: Int = 0) {
        if pending == nil {
            pending = allocator.buffer(capacity: max(bytes.count + expecting, 512))
        }
        pending!.writeBytes(bytes)
    }

    /// Hands pending bytes to the connection: in memory up to
    /// `outbuf_overflow` pending, past that through a spill file (sent with
    /// sendfile); then waits (GIL released) while more than
    /// `outbuf_high_watermark` is pending and the client is too far behind.
    private func flushPending() -> Bool {
        guard let buffer = pending else { return true }
        pending = nil
        let connection = request.connection
        if !connection.isOpen {
            disconnected = true
            return true
        }
        // Streamed output goes out now, after any response ends already batched.
        batch.flush()
        if spill != nil || connection.pendingMemory + buffer.readableBytes > connection.overflow {
            guard spillOut(buffer) else { return false }
        } else {
            connection.send(.data(buffer))
        }
        if !connection.waitForRoomWithoutBlocking() {
            let state = PyEval_SaveThread()
            let open = connection.waitForRoom()
            PyEval_RestoreThread(state)
            if !open { disconnected = true }
        }
        return true
    }

    /// Appends output to this response's spill file (an unlinked temporary
    /// file) and queues that region; false with a Python error set.
    private func spillOut(_ buffer: ByteBuffer) -> Bool {
        if spill == nil {
            do {
                spill = SharedFile(descriptor: try OverflowableBuffer.makeTemporaryFile())
            } catch {
                raise(PyExc_OSError, "could not create a temporary file for response output: \(error)")
                return false
            }
        }
        let file = spill!
        let offset = spillLength
        let failed: Bool = buffer.withUnsafeReadableBytes { bytes in
            let state = PyEval_SaveThread()
            defer { PyEval_RestoreThread(state) }
            do {
                try file.withDescriptor { try OverflowableBuffer.writeAll($0, bytes) }
                return false
            } catch {
                return true
            }
        }
        if failed {
            raise(PyExc_OSError, "could not write response output to a temporary file")
            return false
        }
        spillLength += buffer.readableBytes
        request.connection.send(.file(file, offset: offset, length: buffer.readableBytes, spilled: true))
        return true
    }

    private func writeHead(bodyHint: Int = 0, forceClose: Bool = false) {
        var head: [UInt8] = []
        head.reserveCapacity(256)
        let h = request.head
        let decision = status.withUnsafeBytes { statusBytes in
            ResponseHead.write(
                into: &head,
                request: .init(
                    version: h.version, isHead: h.isHead, keepAlive: h.keepAlive, keepAliveToken: h.connectionKeepAliveToken),
                status: statusBytes, headers: headers, contentLength: contentLength,
                forceClose: forceClose || app.closeWhileDraining.load(ordering: .relaxed),
                ident: app.ident, date: app.currentDate())
        }
        framing = decision.framing
        closeAfter = decision.closeAfter
        wroteHeader = true
        head.withUnsafeBytes { appendPending($0, expecting: bodyHint + 16) }
    }

    /// Ends a response that went well (Waitress's Task.finish).
    private func finish() -> Bool {
        if !wroteHeader {
            guard complete else {
                raise(PyExc_RuntimeError, "start_response was not called before body written")
                return false
            }
            writeHead()
        }
        if case .chunked = framing {
            ChunkFraming.terminator.withUnsafeBytes { appendPending($0) }
        }
        if case .contentLength(let length) = framing, bodyWritten < length {
            // Too few bytes: close so the client does not wait for the rest.
            closeAfter = true
            app.warn(
                "application returned too few bytes (\(bodyWritten)) for specified Content-Length (\(length)) via app_iter"
            )
        }
        sendEnd(close: closeAfter)
        return true
    }

    private func sendEnd(close: Bool) {
        ended = true
        let buffer = pending
        pending = nil
        request.connection.send(.end(buffer, close: close), batchedIn: batch)
    }

    // MARK: errors

    /// An exception from the app: logged with its traceback; a 500 if nothing
    /// was sent yet, else the connection is closed (Waitress's channel.service).
    private func handleException(_ exception: PyPtr?) {
        let path = app.pathForLog(request)
        if let exception = exception, wp_exception_matches(exception, app.clientDisconnectedError) != 0 {
            wp_decref(exception)
            logClientDisconnected()
            sendEnd(close: true)
            return
        }
        app.logException("Exception while serving \(path)", exception)
        defer { if let exception = exception { wp_decref(exception) } }
        if wroteHeader || disconnected {
            pending = nil
            sendEnd(close: true)
            return
        }
        let detail: String
        if app.exposeTracebacks, let exception = exception {
            detail = app.formatException(exception)
        } else {
            detail = "The server encountered an unexpected internal server error"
        }
        respondWithPage(
            status: "500 Internal Server Error", reason: "Internal Server Error", detail: detail,
            ident: app.identString, forceClose: true)
    }

    /// Waitress's middleware answers BadRequest(detail).wsgi_response: a
    /// normal response (the connection stays usable) whose page is tagged
    /// "(generated by server)".
    private func respondMalformedProxyHeader(_ detail: String) {
        respondWithPage(status: "400 Bad Request", reason: "Bad Request", detail: detail, ident: nil, forceClose: false)
    }

    /// Replaces whatever was pending with Waitress's plain-text page and ends
    /// the response.
    private func respondWithPage(status text: String, reason: String, detail: String, ident: String?, forceClose: Bool) {
        let body = ErrorPage.body(reason: reason, detail: detail, ident: ident)
        status = Array(text.utf8)
        headers.removeAll()
        headers.append(name: "Content-Type", value: "text/plain; charset=utf-8")
        contentLength = body.count
        complete = true
        pending = nil
        writeHead(forceClose: forceClose)
        if case .contentLength = framing { body.withUnsafeBytes { appendPending($0) } }
        sendEnd(close: closeAfter)
    }

    private func logClientDisconnected() {
        app.info("Client disconnected while serving \(app.pathForLog(request))")
    }
}

@inline(__always)
func asciiLowerByte(_ b: UInt8) -> UInt8 {
    (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) ? b | 0x20 : b
}
