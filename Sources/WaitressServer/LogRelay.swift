/// Log records made where Python can't be called (the event loop), carried
/// to a thread that holds the GIL: the thread inside `run()` drains them at
/// least every 100 ms and hands them to Python's `logging`.
public final class LogRelay: @unchecked Sendable {
    public enum Level: Sendable { case info, warning, error }
    /// Which Waitress logger: `waitress` or `waitress.queue`.
    public enum Logger: Sendable { case main, queue }

    public struct Record: Sendable {
        public var logger: Logger
        public var level: Level
        public var message: String
    }

    private let gate = Gate()
    private var records: [Record] = []
    /// Records beyond this are counted, not kept: a storm of socket errors
    /// must not grow memory without bound.
    private let limit = 1000
    private var dropped = 0

    public init() {}

    public func post(_ level: Level, _ message: String, logger: Logger = .main) {
        gate.withLock {
            if records.count < limit {
                records.append(Record(logger: logger, level: level, message: message))
            } else {
                dropped += 1
            }
        }
    }

    public func drain() -> [Record] {
        gate.withLock {
            var out = records
            records = []
            if dropped > 0 {
                out.append(Record(logger: .main, level: .warning, message: "\(dropped) log records were dropped"))
                dropped = 0
            }
            return out
        }
    }
}
