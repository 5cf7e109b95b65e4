@preconcurrency import CPython
import NIOCore
import WaitressHTTP
import WaitressServer

/// One request in service on a worker thread, with the GIL held: builds the
/// environ, calls the application, validates start_response, drives the
/// app_iter and frames the response (Waitress's WSGITask and Task).
///
/// The task is spread over files by concern, each an extension of this class:
/// `StartResponse.swift` (start_response, write(), header checks),
/// `ResponseBody.swift` (body items, the pending buffer, the spill file, the
/// watermark wait), `FileWrapper.swift` (wsgi.file_wrapper) and `TaskErrors.swift`
/// (app exceptions, the 500 and 400 pages, client disconnects). The stored
/// state below is internal rather than private only so those files can reach it.
final class WSGITask {
    let app: WSGIApplication
    let request: Request
    var status: [UInt8] = []
    var headers: ResponseHeaders
    var contentLength: Int?
    var complete = false
    var wroteHeader = false
    var framing = BodyFraming.none
    /// The client's address when a trusted proxy named it, for the access log.
    var proxiedClient: String?
    var closeAfter = false
    var bodyWritten = 0
    var loggedExcess = false
    var loggedNoBody = false
    /// Bytes not yet handed to the connection (head and body coalesced).
    var pending: ByteBuffer?
    /// Output not yet handed to the connection that comes before `pending`:
    /// borrowed body items (BorrowedBytes.swift), and what was pending
    /// before each. Usually empty.
    var sealed: [ByteBuffer] = []
    var sealedBytes = 0
    /// All output not yet handed to the connection.
    var pendingBytes: Int { sealedBytes + (pending?.readableBytes ?? 0) }
    /// Whether the connection went away while streaming.
    var disconnected = false
    /// Set once the response's end went to the connection: nothing more may
    /// be written for it.
    var ended = false
    /// The `write` callable start_response returned (the same one each time),
    /// detached when the task ends.
    var writeCallable: PyPtr?
    /// Output past `outbuf_overflow` goes here, then out with sendfile.
    var spill: SharedFile?
    var spillLength = 0
    /// A spill file could not be written: the rest of this response stays in memory.
    var spillFailed = false
    /// This response was counted in the metrics as spilled.
    var spillCounted = false

    /// Output that is all available at once (a list's items, a file's blocks)
    /// is handed to the connection in pieces of about this size.
    static let coalesceLimit = 262_144

    init(app: WSGIApplication, request: Request) {
        self.app = app
        self.request = request
        self.headers = app.takeHeaders()
    }

    var isHead: Bool { request.head.isHead }

    // MARK: running

    func run() {
        // Last of all (the first defer runs last): the header storage goes back.
        defer {
            var spent = ResponseHeaders(reserving: false)
            swap(&spent, &headers)
            app.recycle(spent)
        }
        var rejected: String? = nil
        guard let environ = app.buildEnviron(for: request, rejected: &rejected, client: &proxiedClient) else {
            handleException(wp_err_fetch())
            return
        }
        defer { wp_decref(environ) }
        // wsgi.input is closed when the task ends, as Waitress closes the
        // body's buffer: a spilled body's descriptor then goes back for reuse
        // (SpillFiles), out of reach of an app that kept the object.
        var bodyFile: PyPtr? = nil
        if request.bodyLength > 0 || request.head.isChunked, let input = PyDict_GetItem(environ, app.keys.wsgiInput) {
            wp_incref(input)
            bodyFile = input
        }
        defer { if let file = bodyFile { closeBodyFile(file) } }
        if let detail = rejected {
            respondMalformedProxyHeader(detail)
            return
        }
        guard let startResponse = BoundCallable.startResponse(for: self) else {
            handleException(wp_err_fetch())
            return
        }
        // An app may keep these callables after its request: detached, they
        // neither reach this task nor keep it alive.
        defer {
            BoundCallable.detach(startResponse)
            wp_decref(startResponse)
            if let write = writeCallable {
                BoundCallable.detach(write)
                wp_decref(write)
                writeCallable = nil
            }
        }
        guard let result = wp_call2(app.application, environ, startResponse) else {
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
                guard write(chunk, flush: pendingBytes >= Self.coalesceLimit) else { return false }
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

    // MARK: ending

    /// Closes wsgi.input; a spilled body's file is then reused, unless the
    /// object could not be closed (an app that detached its raw file, say).
    private func closeBodyFile(_ file: PyPtr) {
        if let result = callMethod(file, "close") { wp_decref(result) } else { PyErr_Clear() }
        if case .file = request.body {
            let closed = PyObject_GetAttrString(file, "closed")
            if closed == nil { PyErr_Clear() }
            if closed.map({ PyObject_IsTrue($0) != 1 }) ?? true { request.spillFileRetired = true }
            if let closed = closed { wp_decref(closed) }
        }
        wp_decref(file)
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

    func sendEnd(close: Bool) {
        ended = true
        if request.connection.notesResponses {
            request.connection.noteResponse(
                status: status, headers: headers, bodyBytes: framing == .none ? 0 : bodyWritten,
                client: proxiedClient)
        }
        var last = pending
        pending = nil
        if !sealed.isEmpty {
            if last == nil { last = sealed.removeLast() }
            let tails = sealed
            discardPending()
            request.connection.send(tails: tails, then: .end(last, close: close))
            return
        }
        request.connection.send(.end(last, close: close))
    }
}
