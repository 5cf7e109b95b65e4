@preconcurrency import CPython

/// Python types whose instances carry a retained Swift object (WPNativeObject),
/// made with PyType_FromSpec. Names, slot and method tables live for the life
/// of the process, as CPython requires.
enum NativeType {
    typealias CallFunction = @convention(c) (PyPtr?, PyPtr?, PyPtr?) -> PyPtr?

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

/// A Swift closure callable from Python: start_response, write, and the
/// environ's `waitress.client_disconnected` are instances of this one type.
final class NativeCallable {
    typealias Body = (_ args: PyPtr, _ kwargs: PyPtr?) -> PyPtr?
    let body: Body

    init(_ body: @escaping Body) { self.body = body }

    static let call: NativeType.CallFunction = { object, args, kwargs in
        guard let callable = NativeType.context(object, as: NativeCallable.self), let args = args else {
            return raise(PyExc_RuntimeError, "native callable has no target")
        }
        return callable.body(args, kwargs)
    }

    /// Created once, with the GIL held, at module import.
    nonisolated(unsafe) static var type: PyPtr?

    static func makeType() -> PyPtr? {
        NativeType.make(
            name: "waitress._native.NativeCallable", doc: nil,
            slots: [(Py_tp_call, unsafeBitCast(call, to: UnsafeMutableRawPointer.self))])
    }

    static func make(_ body: @escaping Body) -> PyPtr? {
        NativeType.instance(type!, NativeCallable(body))
    }
}
