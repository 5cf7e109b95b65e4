@preconcurrency import CPython

/// Module-level setup done once at import, with the GIL held.
public enum NativeModule {
    public static let version = "3.0.2"

    public static func prepare() -> Bool {
        if NativeCallable.type == nil {
            NativeCallable.type = NativeCallable.makeType()
        }
        return NativeCallable.type != nil
    }
}
