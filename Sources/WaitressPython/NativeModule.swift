@preconcurrency import CPython

/// Module-level setup done once at import, with the GIL held.
public enum NativeModule {
    public static let version = "3.0.2"

    /// Module-level functions (a static table: CPython keeps the pointer).
    public static let methods: UnsafeMutablePointer<PyMethodDef> = {
        let table = UnsafeMutablePointer<PyMethodDef>.allocate(capacity: 5)
        table[0] = PyMethodDef(
            ml_name: UnsafePointer(strdup("apply_proxy_headers")), ml_meth: ProxyBridge.function, ml_flags: METH_VARARGS,
            ml_doc: UnsafePointer(strdup("Apply the proxy-header rules to a WSGI environ in place.")))
        table[1] = PyMethodDef(
            ml_name: UnsafePointer(strdup("check_access_log_format")), ml_meth: AccessLogBridge.checkFormat,
            ml_flags: METH_O, ml_doc: UnsafePointer(strdup("Raise ValueError if an access_log_format is not valid.")))
        table[2] = PyMethodDef(
            ml_name: UnsafePointer(strdup("metrics_slot_bytes")), ml_meth: EngineType.metricsSlotBytes,
            ml_flags: METH_NOARGS, ml_doc: UnsafePointer(strdup("Bytes of shared memory per worker for metrics.")))
        table[3] = PyMethodDef(
            ml_name: UnsafePointer(strdup("check_tls")), ml_meth: TLSBridge.check, ml_flags: METH_O,
            ml_doc: UnsafePointer(strdup("Raise ValueError naming the file if the ssl_* adjustments cannot be used.")))
        table[4] = PyMethodDef(ml_name: nil, ml_meth: nil, ml_flags: 0, ml_doc: nil)
        return table
    }()

    public static func prepare() -> Bool {
        BoundCallable.startResponseType != nil || BoundCallable.makeTypes()
    }
}
