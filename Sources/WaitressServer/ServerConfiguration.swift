import WaitressHTTP

/// The options of Waitress's Adjustments that the network side uses, already
/// coerced and validated by the Python package.
public struct ServerConfiguration: Sendable {
    public var backlog = 1024
    public var recvBytes = 8192
    public var inbufOverflow = 524_288
    public var outbufOverflow = 1_048_576
    public var outbufHighWatermark = 16_777_216
    public var connectionLimit = 100
    public var cleanupInterval = 30.0
    public var channelTimeout = 120.0
    /// Seconds to receive a complete request head (0: no bound).
    public var requestHeadTimeout = 60.0
    public var maxRequestHeaderSize = 262_144
    public var maxRequestBodySize = 1_073_741_824
    public var ident: String? = "waitress"
    public var logSocketErrors = true
    /// The event loop thread runs under SCHED_BATCH (`loop_scheduling`,
    /// docs/deployment.md): its wake-ups do not preempt a running worker.
    public var batchScheduledLoop = true
    /// nil: no access log (the default, as Waitress).
    public var accessLog: AccessLogConfiguration? = nil
    /// nil: plain HTTP on every listener (the default, as Waitress). Set, it
    /// secures every TCP listener (see `ConnectionSecurity`).
    public var security: ConnectionSecurity? = nil

    public init() {}
}

/// One listening socket, already bound and listening (Python created it).
public struct ListenerSpec: Sendable {
    public var descriptor: Int32
    public var isUnix: Bool
    public var serverName: String
    public var serverPort: String
    /// Its connections are secured by `ServerConfiguration.security`; set by
    /// `securing(_:with:)`.
    public private(set) var isSecure = false

    public init(descriptor: Int32, isUnix: Bool, serverName: String, serverPort: String) {
        self.descriptor = descriptor
        self.isUnix = isUnix
        self.serverName = serverName
        self.serverPort = serverPort
    }

    /// The listeners as `configuration` serves them: with a security layer,
    /// every TCP listener is secure and Unix sockets stay plain (a local
    /// socket's peers are already known to the kernel).
    public static func securing(_ listeners: [ListenerSpec], with configuration: ServerConfiguration) -> [ListenerSpec] {
        listeners.map { listener in
            var secured = listener
            secured.isSecure = configuration.security != nil && !listener.isUnix
            return secured
        }
    }
}
