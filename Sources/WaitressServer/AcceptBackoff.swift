#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore

/// Out of descriptors on accept (EMFILE, ENFILE; also ENOBUFS, ENOMEM):
/// the pending connection stays in the listen queue, so the listening socket
/// stays readable, and NIO keeps it registered for reading (its read stays
/// pending after a failed accept): the loop spins at full CPU without
/// accepting anything (Waitress spins too, and logs every attempt). This
/// handler passes such errors to the ConnectionLimiter, which pauses
/// accepting on every listener for a short back-off (see there). Other
/// errors go on down the pipeline.
final class AcceptErrorHandler: ChannelInboundHandler {
    typealias InboundIn = Channel
    typealias InboundOut = Channel

    let limiter: ConnectionLimiter

    init(limiter: ConnectionLimiter) { self.limiter = limiter }

    static func isResourceExhaustion(_ error: Error) -> Bool {
        guard let io = error as? IOError else { return false }
        return [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(io.errnoCode)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard Self.isResourceExhaustion(error), let io = error as? IOError else {
            context.fireErrorCaught(error)
            return
        }
        limiter.acceptFailed(errno: io.errnoCode, eventLoop: context.eventLoop)
    }
}

/// The soft RLIMIT_NOFILE, for log lines.
func openFileLimitDescription() -> String {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return "unknown" }
    return limit.rlim_cur == rlim_t.max ? "unlimited" : "\(limit.rlim_cur)"
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (as Go's runtime does at
/// start-up): every connection costs a descriptor, and the default soft limit
/// (often 1024) is far below what the kernel allows. Returns the soft limit
/// in force afterwards (nil if unlimited or unknown).
func raiseOpenFileLimit() -> Int? {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
    if limit.rlim_cur < limit.rlim_max {
        var raised = limit
        raised.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 {
            limit = raised
        }
    }
    return limit.rlim_cur == rlim_t.max ? nil : Int(limit.rlim_cur)
}
