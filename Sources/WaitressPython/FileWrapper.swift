@preconcurrency import CPython
import WaitressHTTP
import WaitressServer

#if canImport(Glibc)
import Glibc
#endif

extension WSGITask {
    // MARK: wsgi.file_wrapper

    /// wsgi.file_wrapper: a seekable file gets Content-Length from its
    /// remaining size (Waitress's ReadOnlyFileBasedBuffer.prepare), then goes out
    /// in block_size pieces.
    func driveFileWrapper(_ wrapper: PyPtr) -> Bool {
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
            guard write(chunk, flush: pendingBytes >= Self.coalesceLimit) else { return false }
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
        guard copy >= 0 else { return nil }
        // The request's own body (wsgi.input sent back): its file is read
        // after the task ends, so it must not go back for reuse.
        if case .file(let body, _) = request.body {
            var bodyInfo = stat()
            if fstat(body, &bodyInfo) == 0 && bodyInfo.st_dev == info.st_dev && bodyInfo.st_ino == info.st_ino {
                request.spillFileRetired = true
            }
        }
        return copy
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
}
