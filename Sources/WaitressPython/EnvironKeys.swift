@preconcurrency import CPython

/// Interned environ keys and constant values, made once per process with the
/// GIL held; the request path never builds these strings again.
final class EnvironKeys {
    let requestMethod = pyInterned("REQUEST_METHOD")
    let scriptName = pyInterned("SCRIPT_NAME")
    let pathInfo = pyInterned("PATH_INFO")
    let queryString = pyInterned("QUERY_STRING")
    let requestURI = pyInterned("REQUEST_URI")
    let contentType = pyInterned("CONTENT_TYPE")
    let contentLength = pyInterned("CONTENT_LENGTH")
    let serverName = pyInterned("SERVER_NAME")
    let serverPort = pyInterned("SERVER_PORT")
    let serverProtocol = pyInterned("SERVER_PROTOCOL")
    let serverSoftware = pyInterned("SERVER_SOFTWARE")
    let remoteAddr = pyInterned("REMOTE_ADDR")
    let remoteHost = pyInterned("REMOTE_HOST")
    let remotePort = pyInterned("REMOTE_PORT")
    let wsgiVersion = pyInterned("wsgi.version")
    let wsgiURLScheme = pyInterned("wsgi.url_scheme")
    let wsgiInput = pyInterned("wsgi.input")
    let wsgiErrors = pyInterned("wsgi.errors")
    let wsgiMultithread = pyInterned("wsgi.multithread")
    let wsgiMultiprocess = pyInterned("wsgi.multiprocess")
    let wsgiRunOnce = pyInterned("wsgi.run_once")
    let wsgiFileWrapper = pyInterned("wsgi.file_wrapper")
    let wsgiInputTerminated = pyInterned("wsgi.input_terminated")
    let clientDisconnected = pyInterned("waitress.client_disconnected")

    let closeName = pyInterned("close")
    let stderrName = pyInterned("stderr")
    let lenName = pyInterned("__len__")
    let http10 = pyInterned("HTTP/1.0")
    let http11 = pyInterned("HTTP/1.1")
    let emptyBytes = PyBytes_FromStringAndSize(nil, 0)!
    let methods: [PyPtr] = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"].map(pyInterned)

    /// The cached str of a common method, or nil.
    func method(_ bytes: UnsafeRawBufferPointer) -> PyPtr? {
        for method in methods {
            var size: Py_ssize_t = 0
            let data = wp_unicode_ascii(method, &size)!
            if size == bytes.count && memcmp(data, bytes.baseAddress!, size) == 0 { return method }
        }
        return nil
    }
}

/// Environ keys for request header fields ("HTTP_USER_AGENT"), cached by the
/// field's WSGI-form name in a fixed-size table: a hostile client inventing
/// names costs a string per request, never unbounded memory.
final class HeaderKeyCache {
    private struct Entry {
        var name: [UInt8]
        var key: PyPtr
    }
    private var slots: [Entry?] = Array(repeating: nil, count: 512)

    func key(for name: UnsafeRawBufferPointer) -> PyPtr? {
        var hash: UInt32 = 2_166_136_261
        for b in name { hash = (hash ^ UInt32(b)) &* 16_777_619 }
        let index = Int(hash & 511)
        if let entry = slots[index], entry.name.count == name.count,
            entry.name.withUnsafeBytes({ memcmp($0.baseAddress!, name.baseAddress!, name.count) == 0 })
        {
            wp_incref(entry.key)
            return entry.key
        }
        let key = makeKey(name)
        if let key = key, slots[index] == nil {
            wp_incref(key)
            slots[index] = Entry(name: Array(name), key: key)
        }
        return key
    }

    private func makeKey(_ name: UnsafeRawBufferPointer) -> PyPtr? {
        // CONTENT_TYPE and CONTENT_LENGTH keep their names (PEP 3333).
        if name.elementsEqual("CONTENT_TYPE".utf8) || name.elementsEqual("CONTENT_LENGTH".utf8) {
            return pyLatin1(name)
        }
        var full: [UInt8] = Array("HTTP_".utf8)
        full.append(contentsOf: name)
        return pyLatin1(full)
    }
}
