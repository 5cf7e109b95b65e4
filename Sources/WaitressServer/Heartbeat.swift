#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore

/// A byte written to a descriptor from a timer on the event loop, for a
/// supervising process that replaces a worker whose beats stop
/// (`worker_timeout`, docs/deployment.md).
///
/// The write needs no GIL and runs on the event loop, so a stopped loop stops
/// the beats; `isResponsive` lets the caller add its own condition (the engine
/// asks whether its Python-side thread has had the GIL lately, so an app that
/// holds the GIL in a C call forever stops them too).
extension HTTPServer {
    public func startHeartbeat(descriptor: Int32, interval: Double, isResponsive: @escaping @Sendable () -> Bool) {
        let delay = TimeAmount.nanoseconds(Int64(max(0.01, interval) * 1e9))
        // The first beat at once: it tells the supervisor this worker accepts.
        _ = group.next().scheduleRepeatedTask(initialDelay: .zero, delay: delay) { _ in
            guard isResponsive() else { return }
            var beat: UInt8 = 0x2E  // "."
            // Non-blocking descriptor: a full pipe (a supervisor that is behind)
            // drops the beat rather than stalling the loop.
            _ = write(descriptor, &beat, 1)
        }
    }
}
