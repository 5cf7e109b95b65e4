@preconcurrency import CPython
import WaitressPython

// The entry point CPython looks up when importing `waitress._native`.
@_cdecl("PyInit__native")
public func PyInit__native() -> UnsafeMutablePointer<PyObject>? {
    guard let module = wp_module_create("waitress._native", "The Swift core of waitress (private).", NativeModule.methods) else {
        return nil
    }
    guard NativeModule.prepare(), let engineType = EngineType.makeType() else {
        wp_decref(module)
        return nil
    }
    if PyModule_AddObject(module, "Engine", engineType) != 0 {
        wp_decref(engineType)
        wp_decref(module)
        return nil
    }
    if let version = PyUnicode_FromString(NativeModule.version) {
        if PyModule_AddObject(module, "__version__", version) != 0 { wp_decref(version) }
    }
    return module
}
