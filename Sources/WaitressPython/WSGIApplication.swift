@preconcurrency import CPython
import Atomics
import WaitressHTTP
import WaitressServer

/// Everything a running engine needs to turn requests into WSGI calls, made
/// once with the GIL held: the application, options, interned keys, per-listener
/// environ templates, and the Python helpers (io.BytesIO, the file wrapper
/// type, loggers).
final class WSGIApplication {
    let application: PyPtr
    let logger: PyPtr
    let queueLogger: PyPtr
    let keys = EnvironKeys()
    let headerKeys = HeaderKeyCache()
    let ident: [UInt8]?
    let identString: String?
    let urlPrefix: [UInt8]
    let exposeTracebacks: Bool
    let proxy: ProxyConfiguration?
    let bytesIO: PyPtr
    let openFile: PyPtr
    let formatExceptionFunction: PyPtr
    let fileWrapperType: PyPtr?
    let clientDisconnectedError: PyPtr
    /// Environ entries that are the same for every request on a listener.
    private var templates: [(descriptor: Int32, environ: PyPtr)] = []
    /// A TLS listener's template with a connection's SSL_* variables already
    /// in it: they are the same for every request on the connection, and most
    /// connections share them (a protocol and a cipher). Building the four
    /// strings per request and hashing the two new keys cost about 2,000
    /// instructions of a keep-alive request over TLS (bench/callgrind.py
    /// --tls). At most `secureTemplateLimit` (distinct client certificates
    /// each make one); past that a connection's variables are set per request.
    private var secureTemplates: [(descriptor: Int32, variables: [(name: String, value: String)], environ: PyPtr)] = []
    static let secureTemplateLimit = 32
    private var dateCache = HTTPDateCache()
    /// sys.__dict__, for reading sys.stderr per request without building a key.
    private let sysDict: PyPtr

    struct Options {
        /// nil when the proxy-header rules are off.
        var proxy: ProxyConfiguration?
        var ident: String?
        var urlPrefix: String
        var urlScheme: String
        var exposeTracebacks: Bool
    }

    init?(application: PyPtr, logger: PyPtr, queueLogger: PyPtr, options: Options, listeners: [ListenerSpec]) {
        guard let bytesIO = importAttribute("io", "BytesIO"),
            let openFile = importAttribute("io", "open"),
            let formatException = importAttribute("traceback", "format_exception"),
            let wrapper = importAttribute("waitress.buffers", "ReadOnlyFileBasedBuffer"),
            let disconnected = importAttribute("waitress.channel", "ClientDisconnected"),
            let sys = PyImport_ImportModule("sys")
        else { return nil }
        self.sysDict = PyModule_GetDict(sys)!
        wp_incref(sysDict)
        wp_decref(sys)
        wp_incref(application)
        wp_incref(logger)
        wp_incref(queueLogger)
        self.application = application
        self.logger = logger
        self.queueLogger = queueLogger
        self.bytesIO = bytesIO
        self.openFile = openFile
        self.formatExceptionFunction = formatException
        self.fileWrapperType = wrapper
        self.clientDisconnectedError = disconnected
        self.identString = options.ident
        self.ident = options.ident.map { Array($0.utf8) }
        self.urlPrefix = Array(options.urlPrefix.utf8)
        self.exposeTracebacks = options.exposeTracebacks
        self.proxy = options.proxy
        for listener in listeners {
            guard let template = makeTemplate(listener, options) else { return nil }
            templates.append((listener.descriptor, template))
        }
    }

    deinit {
        for template in templates { wp_decref(template.environ) }
        for template in secureTemplates { wp_decref(template.environ) }
        for object in [application, logger, queueLogger, bytesIO, openFile, formatExceptionFunction, clientDisconnectedError, sysDict] {
            wp_decref(object)
        }
        if let wrapper = fileWrapperType { wp_decref(wrapper) }
        if let host = lastHost { wp_decref(host) }
    }

    private func makeTemplate(_ listener: ListenerSpec, _ options: Options) -> PyPtr? {
        guard let environ = PyDict_New() else { return nil }
        func set(_ key: PyPtr, _ value: PyPtr?) {
            guard let value = value else { return }
            PyDict_SetItem(environ, key, value)
            wp_decref(value)
        }
        set(keys.scriptName, pyString(options.urlPrefix))
        set(keys.serverName, pyString(listener.serverName))
        set(keys.serverPort, pyString(listener.serverPort))
        set(keys.serverSoftware, options.ident.flatMap(pyString) ?? wp_new_none())
        // A TLS listener's scheme is https, whatever url_scheme says (the
        // proxy headers may still change it per request); HTTPS=on as
        // mod_ssl and mod_wsgi set it.
        set(keys.wsgiURLScheme, pyString(listener.isSecure ? "https" : options.urlScheme))
        if listener.isSecure {
            let https = pyInterned("HTTPS")
            set(https, pyString("on"))
            wp_decref(https)
        }
        let one = PyLong_FromLong(1)!
        let zero = PyLong_FromLong(0)!
        set(keys.wsgiVersion, makeTuple([one, zero]))
        wp_decref(one)
        wp_decref(zero)
        set(keys.wsgiMultithread, wp_new_bool(1))
        set(keys.wsgiMultiprocess, wp_new_bool(0))
        set(keys.wsgiRunOnce, wp_new_bool(0))
        set(keys.wsgiInputTerminated, wp_new_bool(1))
        // Placeholders for the keys every request sets: a copy of this dict
        // then has room for them (and a few header fields) without resizing.
        for key in [keys.requestMethod, keys.pathInfo, keys.queryString, keys.requestURI, keys.serverProtocol,
                    keys.remoteAddr, keys.remoteHost, keys.remotePort, keys.wsgiErrors, keys.wsgiInput,
                    keys.clientDisconnected] {
            set(key, wp_new_none())
        }
        if let wrapper = fileWrapperType {
            wp_incref(wrapper)
            set(keys.wsgiFileWrapper, wrapper)
        }
        return environ
    }

    func currentDate() -> [UInt8] { dateCache.current() }

    // MARK: storage reused from response to response (with the GIL held)

    /// Status lines answered recently: an app uses a handful, so a response's
    /// status is usually a shared array, not a new one.
    private var statusCache: [[UInt8]] = []
    /// Emptied header storage of finished responses.
    private var spareHeaders: [ResponseHeaders] = []

    /// `bytes` as an array, shared with earlier responses when it is one of theirs.
    func statusBytes(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        if let base = bytes.baseAddress {
            for cached in statusCache where cached.count == bytes.count {
                if cached.withUnsafeBytes({ memcmp($0.baseAddress!, base, bytes.count) }) == 0 { return cached }
            }
        }
        let fresh = Array(bytes)
        if statusCache.count < 16 { statusCache.append(fresh) }
        return fresh
    }

    /// The last client address made into a str, and its bytes: behind a proxy,
    /// or with a few clients, most requests come from the address before.
    private var lastHost: PyPtr?
    private var lastHostBytes: [UInt8] = []

    /// REMOTE_ADDR's value for `bytes` (a new reference), shared with the
    /// request before when it came from the same address.
    private func remoteHost(_ bytes: [UInt8]) -> PyPtr? {
        if let last = lastHost, lastHostBytes == bytes {
            wp_incref(last)
            return last
        }
        guard let host = pyLatin1(bytes) else { return nil }
        if let last = lastHost { wp_decref(last) }
        wp_incref(host)
        lastHost = host
        lastHostBytes = bytes
        return host
    }

    /// Header storage for a new response: a finished response's, emptied, when
    /// there is one (two allocations fewer per request).
    func takeHeaders() -> ResponseHeaders { spareHeaders.popLast() ?? ResponseHeaders() }

    /// Keeps a finished response's header storage for a later one. Storage an
    /// access-log note still shares is copied on its next write, not changed.
    func recycle(_ headers: consuming ResponseHeaders) {
        // Storage that grew for an unusually large head is let go, not kept.
        guard spareHeaders.count < 64, headers.storage.capacity <= 16_384, headers.entries.capacity <= 64 else {
            return
        }
        headers.removeAll()
        spareHeaders.append(headers)
    }

    // MARK: environ

    /// PEP 3333's environ plus Waitress's extras, with the proxy-header rules
    /// applied; nil with a Python error set. `rejected` is set (and the environ
    /// still returned) when a trusted proxy header is malformed: the request is
    /// answered 400 without calling the app, as Waitress's middleware does.
    /// `client` is set to the address a trusted proxy named (the new
    /// REMOTE_ADDR), for the access log.
    func buildEnviron(for request: Request, rejected: inout String?, client: inout String?) -> PyPtr? {
        guard let environ = baseEnviron(for: request) else { return nil }
        if let proxy = proxy, request.head.hasProxyHeaderField {
            guard let applied = ProxyBridge.apply(environ, proxy) else {
                wp_decref(environ)
                return nil
            }
            for warning in applied.warnings { warn(warning) }
            rejected = applied.failure?.detail
            client = applied.clientAddress
        }
        return environ
    }

    private func baseEnviron(for request: Request) -> PyPtr? {
        let descriptor = request.listener.descriptor
        let connection = request.connection
        var security = connection.securityVariables
        let secure = security.isEmpty ? nil : secureTemplate(descriptor, security)
        if secure != nil { security = [] }
        guard let template = secure ?? templates.first(where: { $0.descriptor == descriptor })?.environ else { return nil }
        guard let environ = PyDict_Copy(template) else { return nil }
        func set(_ key: PyPtr, _ value: PyPtr?) -> Bool {
            guard let value = value else { return false }
            let status = PyDict_SetItem(environ, key, value)
            wp_decref(value)
            return status == 0
        }
        let ok: Bool = request.head.storage.withUnsafeBytes { bytes -> Bool in
            let method = UnsafeRawBufferPointer(rebasing: bytes[request.head.method])
            let cachedMethod = keys.method(method)
            if let cached = cachedMethod { wp_incref(cached) }
            guard set(keys.requestMethod, cachedMethod ?? pyLatin1(method)),
                set(keys.pathInfo, pathInfo(UnsafeRawBufferPointer(rebasing: bytes[request.head.path]))),
                set(keys.queryString, pyLatin1(UnsafeRawBufferPointer(rebasing: bytes[request.head.query]))),
                set(keys.requestURI, pyLatin1(UnsafeRawBufferPointer(rebasing: bytes[request.head.target])))
            else { return false }
            let proto = request.head.version == .http10 ? keys.http10 : keys.http11
            wp_incref(proto)
            guard set(keys.serverProtocol, proto) else { return false }
            for field in request.head.fields {
                let name = UnsafeRawBufferPointer(rebasing: bytes[field.name])
                guard let key = headerKeys.key(for: name) else { return false }
                defer { wp_decref(key) }
                guard let value = pyLatin1(UnsafeRawBufferPointer(rebasing: bytes[field.value])) else { return false }
                let status = PyDict_SetItem(environ, key, value)
                wp_decref(value)
                if status != 0 { return false }
            }
            return true
        }
        guard ok else {
            wp_decref(environ)
            return nil
        }
        guard let host = remoteHost(connection.remoteHostBytes) else {
            wp_decref(environ)
            return nil
        }
        wp_incref(host)
        guard set(keys.remoteAddr, host), set(keys.remoteHost, host),
            set(keys.remotePort, pyLatin1(connection.remotePortBytes))
        else {
            wp_decref(environ)
            return nil
        }
        for variable in security {  // only past secureTemplateLimit
            guard let key = pyString(variable.name), set(key, pyString(variable.value)) else {
                wp_decref(environ)
                return nil
            }
            wp_decref(key)
        }
        if request.head.isChunked {
            guard set(keys.contentLength, pyString(String(request.bodyLength))) else {
                wp_decref(environ)
                return nil
            }
        }
        // sys.stderr at request time, as Waitress does.
        let stderr = PyDict_GetItem(sysDict, keys.stderrName) ?? wp_none()
        wp_incref(stderr)
        guard set(keys.wsgiErrors, stderr), set(keys.wsgiInput, makeInput(request)) else {
            wp_decref(environ)
            return nil
        }
        guard set(keys.clientDisconnected, BoundCallable.clientDisconnected(for: connection)) else {
            wp_decref(environ)
            return nil
        }
        return environ
    }

    /// The listener's template with `variables` in it, made on first use; nil
    /// (and no Python error set) past `secureTemplateLimit` or on a failure.
    private func secureTemplate(_ descriptor: Int32, _ variables: [(name: String, value: String)]) -> PyPtr? {
        for template in secureTemplates where template.descriptor == descriptor {
            if Self.same(template.variables, variables) { return template.environ }
        }
        guard secureTemplates.count < Self.secureTemplateLimit,
            let plain = templates.first(where: { $0.descriptor == descriptor })
        else { return nil }
        guard let environ = PyDict_Copy(plain.environ) else {
            PyErr_Clear()
            return nil
        }
        for variable in variables {
            let key = pyString(variable.name)
            let value = pyString(variable.value)
            let status = key.flatMap { key in value.map { PyDict_SetItem(environ, key, $0) } } ?? -1
            if let key = key { wp_decref(key) }
            if let value = value { wp_decref(value) }
            if status != 0 {
                PyErr_Clear()  // the caller sets the variables per request instead
                wp_decref(environ)
                return nil
            }
        }
        secureTemplates.append((descriptor, variables, environ))
        return environ
    }

    /// Equal variable sets. The TLS layer hands every connection with the
    /// same set (no client certificate) the same array, so the storage is
    /// compared first: comparing the strings cost about 600 instructions a
    /// request (bench/callgrind.py --tls).
    private static func same(_ a: [(name: String, value: String)], _ b: [(name: String, value: String)]) -> Bool {
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                guard a.count == b.count else { return false }
                if a.baseAddress == b.baseAddress { return true }
                for i in 0..<a.count where a[i].name != b[i].name || a[i].value != b[i].value {
                    return false
                }
                return true
            }
        }
    }

    /// PATH_INFO: percent-decoded, latin-1, then `url_prefix` moved to
    /// SCRIPT_NAME (Waitress's get_environment). Leading slashes are kept as
    /// sent: RFC 9112 §3.2.1 makes `///a` the path, where Waitress collapses it
    /// to `/a` (docs/differences.md).
    private func pathInfo(_ raw: UnsafeRawBufferPointer) -> PyPtr? {
        if urlPrefix.isEmpty, !needsPercentDecoding(raw) {
            return pyLatin1(raw)
        }
        var path: [UInt8] = []
        percentDecode(raw, into: &path)
        if !urlPrefix.isEmpty {
            if path == urlPrefix {
                path = []
            } else if path.count > urlPrefix.count, path.starts(with: urlPrefix), path[urlPrefix.count] == UInt8(ascii: "/") {
                path.removeFirst(urlPrefix.count)
            }
        }
        return pyLatin1(path)
    }

    private func makeInput(_ request: Request) -> PyPtr? {
        switch request.body {
        case .memory(let bytes):
            let data: PyPtr?
            if bytes.isEmpty {
                wp_incref(keys.emptyBytes)
                data = keys.emptyBytes
            } else {
                data = bytes.withUnsafeBytes {
                    PyBytes_FromStringAndSize($0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count)
                }
            }
            guard let data = data else { return nil }
            defer { wp_decref(data) }
            return wp_call1(bytesIO, data)
        case .file(let descriptor, _):
            // open(fd, "rb", closefd=False): the descriptor stays the
            // request's (SpillFiles in OverflowableBuffer.swift), and the task
            // closes this file object when it ends, as Waitress closes the body.
            guard let args = PyTuple_New(2), let keywords = PyDict_New() else { return nil }
            defer { wp_decref(args); wp_decref(keywords) }
            guard let fd = PyLong_FromLong(Int(descriptor)) else { return nil }
            PyTuple_SetItem(args, 0, fd)
            guard let mode = pyString("rb") else { return nil }
            PyTuple_SetItem(args, 1, mode)
            guard PyDict_SetItemString(keywords, "closefd", wp_false()) == 0 else { return nil }
            return PyObject_Call(openFile, args, keywords)
        }
    }

    /// The path as Waitress names it in log lines (decoded, before url_prefix).
    func pathForLog(_ request: Request) -> String {
        let head = request.head
        var path: [UInt8] = []
        head.withBytes(head.path) { percentDecode($0, into: &path) }
        return String(decoding: path, as: UTF8.self)
    }

    // MARK: logging (GIL held)

    func logException(_ message: String, _ exception: PyPtr?) {
        guard let exception = exception, let traceback = PyException_GetTraceback(exception) else {
            // Raised by the server itself outside any Python frame (a body item
            // that is not bytes, an app result that is not iterable): give it
            // a traceback, so the record has the shape Waitress's records have.
            let raised = exception.flatMap(raisedInServer)
            log(logger, "error", message, raised ?? exception)
            if let raised = raised { wp_decref(raised) }
            return
        }
        wp_decref(traceback)
        log(logger, "error", message, exception)
    }

    /// `exception` raised and caught in waitress's Python code (a new
    /// reference), or nil if that failed.
    private func raisedInServer(_ exception: PyPtr) -> PyPtr? {
        guard let helper = importAttribute("waitress.utilities", "_raised_in_server") else {
            PyErr_Clear()
            return nil
        }
        defer { wp_decref(helper) }
        guard let raised = callObject(helper, [exception]) else {
            PyErr_Clear()
            return nil
        }
        return raised
    }

    func warn(_ message: String) { log(logger, "warning", message, nil) }
    func error(_ message: String) { log(logger, "error", message, nil) }

    /// Hands records made on the event loop to Python's logging.
    func emit(_ records: [LogRelay.Record]) {
        for record in records {
            let target = record.logger == .queue ? queueLogger : logger
            let method: String
            switch record.level {
            case .info: method = "info"
            case .warning: method = "warning"
            case .error: method = "error"
            }
            log(target, method, record.message, nil)
        }
    }
    func info(_ message: String) { log(logger, "info", message, nil) }
    func queueWarning(_ message: String) { log(queueLogger, "warning", message, nil) }

    /// A KeyboardInterrupt/SystemExit caught while logging, not yet handled.
    private var interrupt: PyPtr?

    func takeInterrupt() -> PyPtr? {
        defer { interrupt = nil }
        return interrupt
    }

    private func log(_ target: PyPtr, _ method: String, _ message: String, _ exception: PyPtr?) {
        guard let text = pyString(message) else {
            PyErr_Clear()
            return
        }
        defer { wp_decref(text) }
        if wp_log(target, method, text, exception) != 0 {
            // A broken logging setup must not break the response; but a
            // KeyboardInterrupt or SystemExit raised by a signal handler
            // while logging is kept for run() to act on.
            if let raised = wp_err_fetch() {
                if wp_exception_matches(raised, PyExc_Exception) == 0 && interrupt == nil {
                    interrupt = raised
                } else {
                    wp_decref(raised)
                }
            }
        }
    }

    func formatException(_ exception: PyPtr) -> String {
        let type = PyObject_Type(exception)!
        defer { wp_decref(type) }
        let traceback = PyException_GetTraceback(exception) ?? { wp_incref(wp_none()); return wp_none() }()
        defer { wp_decref(traceback) }
        guard let lines = callObject(formatExceptionFunction, [type, exception, traceback]),
            let empty = pyString("")
        else {
            PyErr_Clear()
            return "Traceback unavailable"
        }
        defer { wp_decref(lines); wp_decref(empty) }
        guard let joined = PyUnicode_Join(empty, lines) else {
            PyErr_Clear()
            return "Traceback unavailable"
        }
        defer { wp_decref(joined) }
        return swiftString(joined) ?? ""
    }
}
