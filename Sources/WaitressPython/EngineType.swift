@preconcurrency import CPython
import Atomics
import WaitressServer
import WaitressTLS

/// The Python type `waitress._native.Engine` (see _native.pyi).
public enum EngineType {
    static let new: @convention(c) (UnsafeMutablePointer<PyTypeObject>?, PyPtr?, PyPtr?) -> PyPtr? = { type, args, kwargs in
        guard let type = type, let args = args else { return nil }
        guard wp_tuple_size(args) == 5, kwargs == nil || PyDict_Size(kwargs) == 0 else {
            return raise(PyExc_TypeError, "Engine(application, listeners, adj, logger, queue_logger)")
        }
        let application = wp_tuple_item(args, 0)!
        guard PyCallable_Check(application) == 1 else {
            return raise(PyExc_TypeError, "application must be callable")
        }
        guard let parsed = parseListeners(wp_tuple_item(args, 1)!) else { return nil }
        guard let (configuration, threads, options) = parseAdjustments(wp_tuple_item(args, 2)!) else { return nil }
        let listeners = ListenerSpec.securing(parsed, with: configuration)
        let engine = Engine(
            application: application, listeners: listeners, configuration: configuration, threads: threads,
            options: options, logger: wp_tuple_item(args, 3)!, queueLogger: wp_tuple_item(args, 4)!)
        guard let object = wp_alloc(type) else { return nil }
        wp_context_slot(object)!.pointee = Unmanaged.passRetained(engine as AnyObject).toOpaque()
        return object
    }

    static let run: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { object, _ in
        guard let engine = NativeType.context(object, as: Engine.self) else { return nil }
        return engine.run()
    }

    static let stop: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { object, _ in
        guard let engine = NativeType.context(object, as: Engine.self) else { return nil }
        engine.requestStop()
        return wp_new_none()
    }

    static let served: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { object, _ in
        guard let engine = NativeType.context(object, as: Engine.self) else { return nil }
        return PyLong_FromLong(engine.served.load(ordering: .relaxed))
    }

    /// heartbeat(fd, interval): set before run().
    static let heartbeat: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { object, args in
        guard let engine = NativeType.context(object, as: Engine.self), let args = args else { return nil }
        guard wp_tuple_size(args) == 2 else { return raise(PyExc_TypeError, "heartbeat(fd, interval)") }
        let fd = PyLong_AsLong(wp_tuple_item(args, 0))
        if PyErr_Occurred() != nil { return nil }
        let interval = PyFloat_AsDouble(wp_tuple_item(args, 1))
        if PyErr_Occurred() != nil { return nil }
        guard interval > 0 else { return raise(PyExc_ValueError, "heartbeat interval must be positive") }
        engine.heartbeatDescriptor = Int32(clamping: fd)
        engine.heartbeatInterval = interval
        return wp_new_none()
    }

    /// drain_grace(seconds): set before run().
    static let drainGrace: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { object, value in
        guard let engine = NativeType.context(object, as: Engine.self), let value = value else { return nil }
        let seconds = PyFloat_AsDouble(value)
        if PyErr_Occurred() != nil { return nil }
        guard seconds >= 0 else { return raise(PyExc_ValueError, "drain grace must not be negative") }
        engine.drainGrace = seconds
        return wp_new_none()
    }

    /// balance(buffer, slot): set before run(); see AcceptBalance.
    static let balance: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { object, args in
        guard let engine = NativeType.context(object, as: Engine.self), let args = args else { return nil }
        guard wp_tuple_size(args) == 2 else { return raise(PyExc_TypeError, "balance(buffer, slot)") }
        let slot = PyLong_AsLong(wp_tuple_item(args, 1))
        if PyErr_Occurred() != nil { return nil }
        guard engine.sharedCounts == nil else { return raise(PyExc_RuntimeError, "balance() was already given") }
        let view = UnsafeMutablePointer<Py_buffer>.allocate(capacity: 1)
        guard PyObject_GetBuffer(wp_tuple_item(args, 0), view, PyBUF_WRITABLE) == 0 else {
            view.deallocate()
            return nil
        }
        guard let memory = view.pointee.buf,
              let balance = AcceptBalance(memory: memory, bytes: Int(view.pointee.len), slot: slot)
        else {
            PyBuffer_Release(view)
            view.deallocate()
            return raise(PyExc_ValueError, "balance() needs an aligned writable buffer with room for the slot")
        }
        engine.sharedCounts = view
        engine.acceptBalance = balance
        return wp_new_none()
    }

    /// metrics(fd, buffer, slot): set before run(). `fd` is the bound and
    /// listening metrics_listen socket; `buffer` is None in a lone process,
    /// or memory shared by a supervisor's workers (`metrics_slot_bytes()` per
    /// worker number) with this worker's `slot`.
    static let metrics: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { object, args in
        guard let engine = NativeType.context(object, as: Engine.self), let args = args else { return nil }
        guard wp_tuple_size(args) == 3 else { return raise(PyExc_TypeError, "metrics(fd, buffer, slot)") }
        let fd = PyLong_AsLong(wp_tuple_item(args, 0))
        if PyErr_Occurred() != nil { return nil }
        let slot = PyLong_AsLong(wp_tuple_item(args, 2))
        if PyErr_Occurred() != nil { return nil }
        guard engine.metricsDescriptor == nil else { return raise(PyExc_RuntimeError, "metrics() was already given") }
        let buffer = wp_tuple_item(args, 1)!
        if buffer != wp_none() {
            let view = UnsafeMutablePointer<Py_buffer>.allocate(capacity: 1)
            guard PyObject_GetBuffer(buffer, view, PyBUF_WRITABLE) == 0 else {
                view.deallocate()
                return nil
            }
            guard let memory = view.pointee.buf,
                  ServerMetrics(sharedMemory: memory, bytes: Int(view.pointee.len), slot: slot) != nil
            else {
                PyBuffer_Release(view)
                view.deallocate()
                return raise(PyExc_ValueError, "metrics() needs an aligned writable buffer with room for the slot")
            }
            engine.metricsMemory = view
            engine.metricsSlot = slot
        }
        engine.metricsDescriptor = Int32(clamping: fd)
        return wp_new_none()
    }

    /// metrics_slot_bytes(): the module function sizing the shared memory.
    static let metricsSlotBytes: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, _ in
        PyLong_FromLong(ServerMetrics.slotBytes)
    }

    /// reopen_access_log(): from any thread (the SIGUSR1 handler).
    static let reopenAccessLog: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { object, _ in
        guard let engine = NativeType.context(object, as: Engine.self) else { return nil }
        engine.reopenAccessLog()
        return wp_new_none()
    }

    /// reload_certificates(): None, or the message of why the files could not
    /// be used (the previous certificate stays). From any thread.
    static let reloadCertificates: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { object, _ in
        guard let engine = NativeType.context(object, as: Engine.self) else { return nil }
        guard let security = engine.configuration.security as? TLSSecurity else {
            return raise(PyExc_RuntimeError, "reload_certificates: this server does not serve TLS (no ssl_certfile)")
        }
        let threadState = PyEval_SaveThread()
        let failure = security.reload()
        PyEval_RestoreThread(threadState)
        guard let failure = failure else { return wp_new_none() }
        return pyString(failure)
    }

    public static func makeType() -> PyPtr? {
        let methods = [
            PyMethodDef(
                ml_name: UnsafePointer(strdup("run")), ml_meth: run, ml_flags: METH_NOARGS,
                ml_doc: UnsafePointer(strdup("Serve until stop() is called or a signal handler raises."))),
            PyMethodDef(
                ml_name: UnsafePointer(strdup("stop")), ml_meth: stop, ml_flags: METH_NOARGS,
                ml_doc: UnsafePointer(strdup("Ask a running engine to shut down gracefully; thread-safe."))),
            PyMethodDef(
                ml_name: UnsafePointer(strdup("served")), ml_meth: served, ml_flags: METH_NOARGS,
                ml_doc: UnsafePointer(strdup("Requests handed to the application so far."))),
            PyMethodDef(
                ml_name: UnsafePointer(strdup("heartbeat")), ml_meth: heartbeat, ml_flags: METH_VARARGS,
                ml_doc: UnsafePointer(strdup("heartbeat(fd, interval): write a byte to fd every interval seconds while serving."))),
            PyMethodDef(
                ml_name: UnsafePointer(strdup("drain_grace")), ml_meth: drainGrace, ml_flags: METH_O,
                ml_doc: UnsafePointer(strdup("drain_grace(seconds): how long a stop keeps idle keep-alive connections open."))),
            PyMethodDef(
                ml_name: UnsafePointer(strdup("balance")), ml_meth: balance, ml_flags: METH_VARARGS,
                ml_doc: UnsafePointer(strdup("balance(buffer, slot): share open-connection counts with the other workers."))),
            PyMethodDef(
                ml_name: UnsafePointer(strdup("metrics")), ml_meth: metrics, ml_flags: METH_VARARGS,
                ml_doc: UnsafePointer(strdup("metrics(fd, buffer, slot): serve Prometheus metrics on a listening socket."))),
            PyMethodDef(
                ml_name: UnsafePointer(strdup("reopen_access_log")), ml_meth: reopenAccessLog, ml_flags: METH_NOARGS,
                ml_doc: UnsafePointer(strdup("Reopen the access log file by its path (after logrotate moved it)."))),
            PyMethodDef(
                ml_name: UnsafePointer(strdup("reload_certificates")), ml_meth: reloadCertificates,
                ml_flags: METH_NOARGS,
                ml_doc: UnsafePointer(strdup("Read the TLS certificate and key files again; None, or why not."))),
        ]
        return NativeType.make(
            name: "waitress._native.Engine",
            doc: "Engine(application, listeners, adj, logger, queue_logger): the Swift core of one server.",
            slots: [(Py_tp_new, unsafeBitCast(new, to: UnsafeMutableRawPointer.self))],
            methods: methods)
    }

    /// [(fd, is_unix, server_name, server_port)]
    static func parseListeners(_ sequence: PyPtr) -> [ListenerSpec]? {
        guard let iterator = PyObject_GetIter(sequence) else { return nil }
        defer { wp_decref(iterator) }
        var result: [ListenerSpec] = []
        while let item = PyIter_Next(iterator) {
            defer { wp_decref(item) }
            guard wp_is_tuple(item) != 0, wp_tuple_size(item) == 4 else {
                return raise(PyExc_TypeError, "listeners must be (fd, is_unix, server_name, server_port) tuples")
                    .map { _ in [] }
            }
            let fd = PyLong_AsLong(wp_tuple_item(item, 0))
            if PyErr_Occurred() != nil { return nil }
            let isUnix = PyObject_IsTrue(wp_tuple_item(item, 1)) == 1
            guard let name = swiftString(wp_tuple_item(item, 2)!), let port = swiftString(wp_tuple_item(item, 3)!) else {
                return nil
            }
            result.append(ListenerSpec(descriptor: Int32(fd), isUnix: isUnix, serverName: name, serverPort: port))
        }
        if PyErr_Occurred() != nil { return nil }
        if result.isEmpty { return raise(PyExc_ValueError, "no listening sockets given").map { _ in [] } }
        return result
    }

    /// A str attribute of `adj`: nil for None, `fallback` when missing or not a str.
    static func stringAttribute(_ adj: PyPtr, _ name: String, _ fallback: String?) -> String? {
        guard let value = PyObject_GetAttrString(adj, name) else { PyErr_Clear(); return fallback }
        defer { wp_decref(value) }
        if value == wp_none() { return nil }
        guard wp_is_unicode(value) != 0 else { return fallback }
        return swiftString(value)
    }

    static func parseAdjustments(_ adj: PyPtr) -> (ServerConfiguration, Int?, WSGIApplication.Options)? {
        var failed = false
        func int(_ name: String, _ fallback: Int) -> Int {
            guard let value = PyObject_GetAttrString(adj, name) else { PyErr_Clear(); return fallback }
            defer { wp_decref(value) }
            let number = PyLong_AsLong(value)
            if PyErr_Occurred() != nil { failed = true }
            return number
        }
        func double(_ name: String, _ fallback: Double) -> Double {
            guard let value = PyObject_GetAttrString(adj, name) else { PyErr_Clear(); return fallback }
            defer { wp_decref(value) }
            let number = PyFloat_AsDouble(value)
            if PyErr_Occurred() != nil { failed = true }
            return number
        }
        func bool(_ name: String, _ fallback: Bool) -> Bool {
            guard let value = PyObject_GetAttrString(adj, name) else { PyErr_Clear(); return fallback }
            defer { wp_decref(value) }
            return PyObject_IsTrue(value) == 1
        }
        func string(_ name: String, _ fallback: String?) -> String? {
            stringAttribute(adj, name, fallback)
        }
        var c = ServerConfiguration()
        c.backlog = int("backlog", c.backlog)
        c.recvBytes = int("recv_bytes", c.recvBytes)
        c.inbufOverflow = int("inbuf_overflow", c.inbufOverflow)
        c.outbufOverflow = int("outbuf_overflow", c.outbufOverflow)
        c.outbufHighWatermark = int("outbuf_high_watermark", c.outbufHighWatermark)
        c.connectionLimit = int("connection_limit", c.connectionLimit)
        c.cleanupInterval = double("cleanup_interval", c.cleanupInterval)
        c.channelTimeout = double("channel_timeout", c.channelTimeout)
        c.requestHeadTimeout = double("request_head_timeout", c.requestHeadTimeout)
        c.maxRequestHeaderSize = int("max_request_header_size", c.maxRequestHeaderSize)
        c.maxRequestBodySize = int("max_request_body_size", c.maxRequestBodySize)
        c.logSocketErrors = bool("log_socket_errors", c.logSocketErrors)
        let ident = string("ident", "waitress")
        c.ident = (ident?.isEmpty ?? true) ? nil : ident
        // No worker threads: the app runs on the event loop (dispatch=inline).
        let threads: Int? = string("dispatch", "threads") == "inline" ? nil : int("threads", 4)
        // With dispatch=inline the app runs on the loop thread: its policy is left alone.
        c.batchScheduledLoop = threads != nil && string("loop_scheduling", "batch") == "batch"
        guard let accessLog = AccessLogBridge.configuration(
            destination: string("access_log", nil), format: string("access_log_format", "combined"))
        else { return nil }
        c.accessLog = accessLog
        guard let tls = TLSBridge.options(string) else { return nil }
        if let tls = tls {
            guard let security = TLSBridge.security(tls) else { return nil }
            c.security = security
        }
        func attribute(_ name: String) -> PyPtr? {
            guard let value = PyObject_GetAttrString(adj, name) else {
                PyErr_Clear()
                return nil
            }
            return value
        }
        let trustedProxy = attribute("trusted_proxy")
        let trustedCount = attribute("trusted_proxy_count")
        let trustedHeaders = attribute("trusted_proxy_headers")
        let proxy = ProxyBridge.configuration(
            trustedProxy: trustedProxy, count: trustedCount, headers: trustedHeaders,
            clear: bool("clear_untrusted_proxy_headers", true), log: bool("log_untrusted_proxy_headers", false))
        for object in [trustedProxy, trustedCount, trustedHeaders] { if let o = object { wp_decref(o) } }
        let options = WSGIApplication.Options(
            proxy: proxy,
            ident: c.ident, urlPrefix: string("url_prefix", "") ?? "", urlScheme: string("url_scheme", "http") ?? "http",
            exposeTracebacks: bool("expose_tracebacks", false))
        if failed { return nil }
        return (c, threads, options)
    }
}
