@preconcurrency import CPython

/// A raw Python object pointer. Every use happens with the GIL held; the GIL
/// is the lock, so the pointer may travel between threads.
public typealias PyPtr = UnsafeMutablePointer<PyObject>

public struct PyRef: @unchecked Sendable {
    public let pointer: PyPtr
    public init(_ pointer: PyPtr) { self.pointer = pointer }
}

/// A str from latin-1 bytes (PEP 3333: "native strings" carry bytes as latin-1).
@inline(__always)
func pyLatin1(_ bytes: UnsafeRawBufferPointer) -> PyPtr? {
    PyUnicode_DecodeLatin1(bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count, nil)
}

func pyLatin1(_ bytes: [UInt8]) -> PyPtr? {
    bytes.withUnsafeBytes { pyLatin1($0) }
}

func pyString(_ text: String) -> PyPtr? {
    var text = text
    return text.withUTF8 { PyUnicode_FromStringAndSize(UnsafeRawPointer($0.baseAddress)?.assumingMemoryBound(to: CChar.self), $0.count) }
}

func pyInterned(_ text: String) -> PyPtr {
    PyUnicode_InternFromString(text)!
}

/// The bytes of a str as latin-1 (Waitress encodes heads with latin-1), given
/// to `body`; throws (with the Python error set) if it has other characters.
func withLatin1Bytes<R>(_ object: PyPtr, _ body: (UnsafeRawBufferPointer) -> R) -> R? {
    var size: Py_ssize_t = 0
    if let ascii = wp_unicode_ascii(object, &size) {
        return body(UnsafeRawBufferPointer(start: ascii, count: size))
    }
    guard let encoded = PyUnicode_AsLatin1String(object) else { return nil }
    defer { wp_decref(encoded) }
    return body(UnsafeRawBufferPointer(start: wp_bytes_data(encoded), count: wp_bytes_size(encoded)))
}

/// Swift String of a Python str (for configuration, not the request path).
func swiftString(_ object: PyPtr) -> String? {
    var size: Py_ssize_t = 0
    guard let utf8 = PyUnicode_AsUTF8AndSize(object, &size) else { return nil }
    return String(decoding: UnsafeRawBufferPointer(start: utf8, count: size), as: UTF8.self)
}

func getAttribute(_ object: PyPtr, _ name: String) -> PyPtr? {
    PyObject_GetAttrString(object, name)
}

/// Raises `type` with `message` and returns nil, for `return raise(...)`.
@discardableResult
func raise(_ type: PyPtr?, _ message: String) -> PyPtr? {
    PyErr_SetString(type, message)
    return nil
}

func makeTuple(_ items: [PyPtr]) -> PyPtr? {
    guard let tuple = PyTuple_New(items.count) else { return nil }
    for (i, item) in items.enumerated() {
        wp_incref(item)
        PyTuple_SetItem(tuple, i, item)
    }
    return tuple
}

func callObject(_ callable: PyPtr, _ args: [PyPtr]) -> PyPtr? {
    guard let tuple = makeTuple(args) else { return nil }
    defer { wp_decref(tuple) }
    return PyObject_Call(callable, tuple, nil)
}

func callMethod(_ object: PyPtr, _ name: String, _ args: [PyPtr] = []) -> PyPtr? {
    guard let method = PyObject_GetAttrString(object, name) else { return nil }
    defer { wp_decref(method) }
    return callObject(method, args)
}

func importAttribute(_ module: String, _ name: String) -> PyPtr? {
    guard let mod = PyImport_ImportModule(module) else { return nil }
    defer { wp_decref(mod) }
    return PyObject_GetAttrString(mod, name)
}
