@preconcurrency import CPython
import WaitressServer

/// Python types whose instances carry a retained Swift object (WPNativeObject),
/// made with PyType_FromSpec. Names, slot and method tables live for the life
/// of the process, as CPython requires.
enum NativeType {
    static let dealloc: @convention(c) (PyPtr?) -> Void = { object in
        guard let object = object else { return }
        let slot = wp_context_slot(object)!
        if let context = slot.pointee {
            slot.pointee = nil
            Unmanaged<AnyObject>.fromOpaque(context).release()
        }
        wp_free(object)
    }

    static func make(
        name: String, doc: String?, flags: UInt = 0, slots extra: [(Int32, UnsafeMutableRawPointer?)],
        methods: [PyMethodDef] = []
    ) -> PyPtr? {
        var slots: [PyType_Slot] = [
            PyType_Slot(slot: Py_tp_dealloc, pfunc: unsafeBitCast(dealloc, to: UnsafeMutableRawPointer.self))
        ]
        if let doc = doc {
            slots.append(PyType_Slot(slot: Py_tp_doc, pfunc: UnsafeMutableRawPointer(strdup(doc))))
        }
        for (slot, function) in extra {
            slots.append(PyType_Slot(slot: slot, pfunc: function))
        }
        if !methods.isEmpty {
            let table = UnsafeMutablePointer<PyMethodDef>.allocate(capacity: methods.count + 1)
            for (i, method) in methods.enumerated() { table[i] = method }
            table[methods.count] = PyMethodDef(ml_name: nil, ml_meth: nil, ml_flags: 0, ml_doc: nil)
            slots.append(PyType_Slot(slot: Py_tp_methods, pfunc: UnsafeMutableRawPointer(table)))
        }
        slots.append(PyType_Slot(slot: 0, pfunc: nil))
        let slotTable = UnsafeMutablePointer<PyType_Slot>.allocate(capacity: slots.count)
        for (i, slot) in slots.enumerated() { slotTable[i] = slot }
        var spec = PyType_Spec(
            name: UnsafePointer(strdup(name)),
            basicsize: Int32(MemoryLayout<WPNativeObject>.size),
            itemsize: 0,
            flags: UInt32(wp_tpflags_default | flags),
            slots: slotTable)
        return PyType_FromSpec(&spec)
    }

    /// A new instance of `type` holding `context` (retained).
    static func instance(_ type: PyPtr, _ context: AnyObject) -> PyPtr? {
        guard let object = wp_alloc(UnsafeMutableRawPointer(type).assumingMemoryBound(to: PyTypeObject.self)) else {
            return nil
        }
        wp_context_slot(object)!.pointee = Unmanaged.passRetained(context).toOpaque()
        return object
    }

    static func context<T: AnyObject>(_ object: PyPtr?, as: T.Type) -> T? {
        guard let object = object, let raw = wp_context_slot(object)!.pointee else { return nil }
        return Unmanaged<AnyObject>.fromOpaque(raw).takeUnretainedValue() as? T
    }
}

/// The callables of the request path (`start_response`, `write` and the
/// environ's `waitress.client_disconnected`): each Python object holds its
/// Swift target itself, with no closure, no weak reference and no Swift
/// allocation per request (a closure wrapper cost three allocations each), and
/// is called through vectorcall, so a call from Python builds no argument tuple.
/// The task detaches its `start_response` and `write` when it ends, so an app
/// that keeps them gets an error from a later call, and the task is not kept
/// alive by them.
enum BoundCallable {
    typealias Arguments = UnsafePointer<PyPtr?>?
    typealias VectorCall = @convention(c) (PyPtr?, Arguments, Int, PyPtr?) -> PyPtr?

    /// Created once, with the GIL held, at module import.
    nonisolated(unsafe) static var startResponseType: PyPtr?
    nonisolated(unsafe) static var writeType: PyPtr?
    nonisolated(unsafe) static var clientDisconnectedType: PyPtr?

    static func makeTypes() -> Bool {
        startResponseType = wp_callable_type("waitress._native.StartResponse", NativeType.dealloc)
        writeType = wp_callable_type("waitress._native.Write", NativeType.dealloc)
        clientDisconnectedType = wp_callable_type("waitress._native.ClientDisconnected", NativeType.dealloc)
        return startResponseType != nil && writeType != nil && clientDisconnectedType != nil
    }

    static func startResponse(for task: WSGITask) -> PyPtr? { instance(startResponseType!, task, callStartResponse) }
    static func write(for task: WSGITask) -> PyPtr? { instance(writeType!, task, callWrite) }
    static func clientDisconnected(for connection: ResponseChannel) -> PyPtr? {
        instance(clientDisconnectedType!, connection, callClientDisconnected)
    }

    private static func instance(_ type: PyPtr, _ target: AnyObject, _ call: VectorCall) -> PyPtr? {
        guard let object = wp_callable_new(type, call) else { return nil }
        wp_context_slot(object)!.pointee = Unmanaged.passRetained(target).toOpaque()
        return object
    }

    /// The target of `object`, not retained; nil once detached.
    @inline(__always)
    private static func target<T: AnyObject>(_ object: PyPtr?, _ type: T.Type) -> T? {
        guard let object = object, let raw = wp_context_slot(object)!.pointee else { return nil }
        return Unmanaged<T>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Releases the target: later calls raise.
    static func detach(_ object: PyPtr) {
        let slot = wp_context_slot(object)!
        if let context = slot.pointee {
            slot.pointee = nil
            Unmanaged<AnyObject>.fromOpaque(context).release()
        }
    }

    private static let callStartResponse: VectorCall = { object, args, nargsf, kwnames in
        guard let task = target(object, WSGITask.self), !task.ended else {
            return raise(PyExc_RuntimeError, "start_response called after the response ended")
        }
        return task.startResponse(args, wp_vectorcall_nargs(nargsf), kwnames)
    }

    private static let callWrite: VectorCall = { object, args, nargsf, kwnames in
        guard let task = target(object, WSGITask.self), !task.ended else {
            return raise(PyExc_RuntimeError, "write() called after the response ended")
        }
        let count = wp_vectorcall_nargs(nargsf)
        guard count == 1, kwnames == nil, let data = args?[0] else {
            return raise(PyExc_TypeError, "write() takes exactly one argument")
        }
        return task.writeCall(data)
    }

    private static let callClientDisconnected: VectorCall = { object, _, _, _ in
        guard let connection = target(object, ResponseChannel.self) else { return wp_new_bool(1) }
        return wp_new_bool(connection.clientDisconnected ? 1 : 0)
    }
}
