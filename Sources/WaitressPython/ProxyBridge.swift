@preconcurrency import CPython
import WaitressHTTP

/// Applies the proxy-header rules (WaitressHTTP's applyProxyHeaders, the one
/// implementation) to an environ dict: for the server's own request path and
/// for the public `waitress.proxy_headers.proxy_headers_middleware`.
enum ProxyBridge {
    struct Failure {
        var header: String
        var reason: String
        var value: String
        var detail: String
    }

    /// Environ keys of the six proxy headers, made once.
    static let environKeys: [(ProxyHeader, PyPtr)] = ProxyHeader.allCases.map { ($0, pyInterned($0.environKey)) }

    /// What applying the rules gave: the warnings to log, for a malformed
    /// header what to answer, and the client's address when a trusted hop
    /// named it (the new REMOTE_ADDR, for the access log's `%(h)s`).
    struct Applied {
        var warnings: [String]
        var failure: Failure?
        var clientAddress: String?
    }

    /// Mutates `environ`. nil with a Python error set on failure.
    static func apply(_ environ: PyPtr, _ config: ProxyConfiguration) -> Applied? {
        guard let remoteAddr = item(environ, "REMOTE_ADDR"), let scheme = item(environ, "wsgi.url_scheme") else {
            if PyErr_Occurred() == nil { raise(PyExc_KeyError, "environ needs REMOTE_ADDR and wsgi.url_scheme") }
            return nil
        }
        var headers: [ProxyHeader: String] = [:]
        for (header, key) in environKeys {
            if let value = PyDict_GetItem(environ, key), wp_is_unicode(value) != 0, let text = swiftString(value) {
                headers[header] = text
            } else if PyErr_Occurred() != nil {
                return nil
            }
        }
        switch applyProxyHeaders(ProxyInput(remoteAddr: remoteAddr, urlScheme: scheme, headers: headers), config) {
        case .apply(let changes):
            for (key, value) in changes.environAssignments {
                guard let k = pyString(key), let v = pyString(value) else { return nil }
                let status = PyDict_SetItem(environ, k, v)
                wp_decref(k)
                wp_decref(v)
                if status != 0 { return nil }
            }
            for key in changes.environRemovals {
                guard let k = pyString(key) else { return nil }
                if PyDict_GetItem(environ, k) != nil { PyDict_DelItem(environ, k) }
                wp_decref(k)
            }
            return Applied(warnings: changes.warnings, failure: nil, clientAddress: changes.remoteAddr)
        case .badRequest(let malformed):
            return Applied(
                warnings: malformed.warnings,
                failure: Failure(
                    header: malformed.header, reason: malformed.reason, value: malformed.value, detail: malformed.detail))
        }
    }

    private static func item(_ environ: PyPtr, _ key: String) -> String? {
        guard let value = PyDict_GetItemString(environ, key), wp_is_unicode(value) != 0 else { return nil }
        return swiftString(value)
    }

    /// Reads the proxy options from an Adjustments-like object; nil when the
    /// rules are off (no trusted proxy and untrusted headers kept).
    static func configuration(trustedProxy: PyPtr?, count: PyPtr?, headers: PyPtr?, clear: Bool, log: Bool)
        -> ProxyConfiguration?
    {
        var proxy: String? = nil
        if let value = trustedProxy, value != wp_none(), wp_is_unicode(value) != 0 {
            proxy = swiftString(value)
        }
        if proxy == nil && !clear { return nil }
        var trustedCount = 1
        if let value = count, value != wp_none() {
            trustedCount = PyLong_AsLong(value)
            if PyErr_Occurred() != nil {
                PyErr_Clear()
                trustedCount = 1
            }
        }
        var names: Set<String> = []
        if let value = headers, value != wp_none(), let iterator = PyObject_GetIter(value) {
            while let item = PyIter_Next(iterator) {
                if wp_is_unicode(item) != 0, let text = swiftString(item) { names.insert(text.lowercased()) }
                wp_decref(item)
            }
            wp_decref(iterator)
        }
        PyErr_Clear()
        return ProxyConfiguration(
            trustedProxy: proxy, trustedProxyCount: trustedCount, trustedProxyHeaders: names,
            clearUntrustedHeaders: clear, logUntrusted: log)
    }

    /// `_native.apply_proxy_headers(environ, trusted_proxy, trusted_proxy_count,
    /// trusted_proxy_headers, clear_untrusted, log_untrusted)` ->
    /// `(malformed, warnings)` where malformed is None or (header, reason, value, detail).
    static let function: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, args in
        guard let args = args, wp_tuple_size(args) == 6 else {
            return raise(
                PyExc_TypeError,
                "apply_proxy_headers(environ, trusted_proxy, trusted_proxy_count, trusted_proxy_headers, clear_untrusted, log_untrusted)"
            )
        }
        let environ = wp_tuple_item(args, 0)!
        guard wp_is_dict(environ) != 0 else { return raise(PyExc_TypeError, "environ must be a dict") }
        guard
            let config = configuration(
                trustedProxy: wp_tuple_item(args, 1), count: wp_tuple_item(args, 2), headers: wp_tuple_item(args, 3),
                clear: PyObject_IsTrue(wp_tuple_item(args, 4)) == 1, log: PyObject_IsTrue(wp_tuple_item(args, 5)) == 1)
        else {
            return makeResult(nil, [])
        }
        guard let applied = apply(environ, config) else { return nil }
        return makeResult(applied.failure, applied.warnings)
    }

    private static func makeResult(_ failure: Failure?, _ warnings: [String]) -> PyPtr? {
        guard let list = PyList_New(0) else { return nil }
        for warning in warnings {
            guard let text = pyString(warning) else { return nil }
            PyList_Append(list, text)
            wp_decref(text)
        }
        var first: PyPtr
        if let failure = failure {
            let parts = [failure.header, failure.reason, failure.value, failure.detail].compactMap(pyString)
            guard parts.count == 4, let tuple = makeTuple(parts) else { return nil }
            parts.forEach { wp_decref($0) }
            first = tuple
        } else {
            first = wp_new_none()
        }
        let result = makeTuple([first, list])
        wp_decref(first)
        wp_decref(list)
        return result
    }
}
