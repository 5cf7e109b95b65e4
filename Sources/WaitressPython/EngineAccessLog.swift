@preconcurrency import CPython
import WaitressHTTP
import WaitressServer

/// The access log's Python side: reading `access_log` and `access_log_format`
/// from the adjustments, the `check_access_log_format` module function, and
/// the slow path that hands lines to a Python logger (`logger:NAME`).
enum AccessLogBridge {
    /// The prefix of an `access_log` value that names a Python logger.
    static let loggerPrefix = "logger:"

    /// nil with a Python error set when the options are invalid; `.none` when off.
    static func configuration(destination: String?, format: String?) -> AccessLogConfiguration?? {
        guard let destination = destination, !destination.isEmpty else { return .some(nil) }
        let parsed: AccessLogFormat
        do {
            parsed = try AccessLogFormat(format ?? "combined")
        } catch {
            _ = raise(PyExc_ValueError, "\(error)")
            return nil
        }
        let where_: AccessLogDestination
        if destination == "-" {
            where_ = .standardOutput
        } else if destination.hasPrefix(loggerPrefix) {
            where_ = .relay(loggerName: String(destination.dropFirst(loggerPrefix.count)))
        } else {
            where_ = .file(destination)
        }
        return .some(AccessLogConfiguration(destination: where_, format: parsed))
    }

    /// `check_access_log_format(format)`: raises ValueError for a bad format.
    static let checkFormat: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, value in
        guard let value = value, wp_is_unicode(value) != 0, let text = swiftString(value) else {
            return raise(PyExc_TypeError, "access_log_format must be a string")
        }
        do {
            _ = try AccessLogFormat(text)
        } catch {
            return raise(PyExc_ValueError, "\(error)")
        }
        return wp_new_none()
    }

    /// With the GIL held: passes lines waiting for a Python logger to its
    /// `info()` (decoded latin-1, as the environ's strings are). Returns a
    /// KeyboardInterrupt or SystemExit that a signal handler raised meanwhile,
    /// for run() to act on; other logging errors are dropped.
    static func relay(_ server: HTTPServer, configuration: ServerConfiguration) -> PyPtr? {
        guard case .relay(let name)? = configuration.accessLog?.destination else { return nil }
        let lines = server.takeRelayedAccessLines()
        if lines.isEmpty { return nil }
        guard let getLogger = importAttribute("logging", "getLogger") else {
            PyErr_Clear()
            return nil
        }
        defer { wp_decref(getLogger) }
        guard let nameObject = pyString(name), let logger = callObject(getLogger, [nameObject]) else {
            PyErr_Clear()
            return nil
        }
        defer { wp_decref(nameObject); wp_decref(logger) }
        for line in lines {
            guard let text = line.withUnsafeBufferPointer({ bytes in
                bytes.withMemoryRebound(to: CChar.self) { PyUnicode_DecodeLatin1($0.baseAddress, $0.count, nil) }
            }) else {
                PyErr_Clear()
                continue
            }
            let failed = wp_log(logger, "info", text, nil) != 0
            wp_decref(text)
            if failed, let raised = wp_err_fetch() {
                if wp_exception_matches(raised, PyExc_Exception) == 0 { return raised }
                wp_decref(raised)
            }
        }
        return nil
    }
}
