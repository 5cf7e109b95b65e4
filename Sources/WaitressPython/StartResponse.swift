@preconcurrency import CPython
import WaitressHTTP

/// What start_response must check about a header field name.
private enum FieldCheck {
    case contentLength, forbidden, crlfInName, crlfInValue, other

    /// Content-Length, or a hop-by-hop field an application may not set
    /// (PEP 3333; Waitress's list), found by length first.
    init(name: UnsafeRawBufferPointer) {
        switch name.count {
        case 14: self = equalsLowercased(name, "content-length") ? .contentLength : .other
        case 10: self = equalsLowercased(name, "connection") || equalsLowercased(name, "keep-alive") ? .forbidden : .other
        case 18: self = equalsLowercased(name, "proxy-authenticate") ? .forbidden : .other
        case 19: self = equalsLowercased(name, "proxy-authorization") ? .forbidden : .other
        case 2: self = equalsLowercased(name, "te") ? .forbidden : .other
        case 8: self = equalsLowercased(name, "trailers") ? .forbidden : .other
        case 17: self = equalsLowercased(name, "transfer-encoding") ? .forbidden : .other
        case 7: self = equalsLowercased(name, "upgrade") ? .forbidden : .other
        default: self = .other
        }
    }
}

/// Whether `bytes` holds a CR or an LF.
@inline(__always)
private func hasLineBreak(_ bytes: UnsafeRawBufferPointer) -> Bool {
    for b in bytes where b == 10 || b == 13 { return true }
    return false
}

extension WSGITask {
    // MARK: start_response and write

    /// start_response(status, headers, exc_info=None), called through
    /// vectorcall: `count` positional arguments, then one value per name in
    /// `kwnames`.
    func startResponse(_ arguments: BoundCallable.Arguments, _ count: Int, _ kwnames: PyPtr?) -> PyPtr? {
        var excInfo: PyPtr? = count >= 3 ? arguments![2] : nil
        if let names = kwnames {
            for i in 0..<wp_tuple_size(names) {
                guard PyUnicode_CompareWithASCIIString(wp_tuple_item(names, i)!, "exc_info") == 0 else {
                    return raise(PyExc_TypeError, "start_response() got an unexpected keyword argument")
                }
                excInfo = arguments![count + i]
            }
        }
        guard count >= 2, count <= 3, let args = arguments else {
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
        let statusObject = args[0]!
        guard wp_is_unicode(statusObject) != 0 else {
            let text = swiftString(PyObject_Str(statusObject) ?? wp_none()) ?? "?"
            return raise(PyExc_AssertionError, "status \(text) is not a string")
        }
        guard let statusBytes = withLatin1Bytes(statusObject, { app.statusBytes($0) }) else { return nil }
        if statusBytes.contains(10) || statusBytes.contains(13) {
            return raise(PyExc_ValueError, "carriage return/line feed character present in status")
        }
        status = statusBytes
        let headerList = args[1]!
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
        if writeCallable == nil {
            guard let write = BoundCallable.write(for: self) else { return nil }
            writeCallable = write
        }
        wp_incref(writeCallable!)
        return writeCallable
    }

    /// The `write()` callable's body (PEP 3333), before the response ended.
    func writeCall(_ data: PyPtr) -> PyPtr? {
        guard wp_is_bytes(data) != 0 else {
            _ = bodyTypeError(data)
            return nil
        }
        guard write(data, flush: true) else { return nil }
        if disconnected {
            return raise(app.clientDisconnectedError, "Client disconnected")
        }
        return wp_new_none()
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
            if hasLineBreak(v) { return .crlfInValue }
            if hasLineBreak(n) { return .crlfInName }
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
}

@inline(__always)
func asciiLowerByte(_ b: UInt8) -> UInt8 {
    (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) ? b | 0x20 : b
}
