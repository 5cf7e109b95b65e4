#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Atomics
import WaitressHTTP

/// The engine's metrics (`metrics_listen`, docs/metrics.md): counters, gauges
/// and histograms kept as 64-bit words in a slot of memory, bumped with
/// relaxed atomic adds where the event happens (the event loop or a worker
/// thread), and turned into Prometheus text only when scraped.
///
/// Under a supervisor the memory is an anonymous shared mapping made before
/// the fork, one slot per worker number, so whichever worker answers a scrape
/// reads every worker's slot and the output covers the whole server, labelled
/// by worker. A worker that replaces one with the same number continues its
/// counters (each `worker` series stays monotonic across restarts) and resets
/// its gauges; the supervisor zeroes the pid of a worker it reaps, and only
/// slots with a live pid report gauges and process figures.
///
/// (swift-prometheus keeps its registry in process memory behind locks: it
/// cannot give a whole-server view across forked workers, and the text format
/// is simple enough to write here.)
public final class ServerMetrics: @unchecked Sendable {
    /// Words per slot; Python sizes the shared mapping with `slotBytes`.
    public static let slotWords = 256
    public static let slotBytes = slotWords * MemoryLayout<UInt64>.stride
    /// Marks a slot laid out as below (bump the last byte when it changes).
    static let layoutMark: UInt64 = 0x5741_4954_4D45_5401

    /// Single words of a slot.
    enum Field: Int {
        case pid = 0, mark, startTime, threads, connectionLimit
        case connectionsAccepted = 8, connectionsOpen, acceptPausesLimit, acceptPausesDescriptors,
            acceptPausesBalance, acceptingPaused
        case bytesReceived = 16, bytesSent, bodiesSpilled, responsesSpilled, requestsWaiting, threadsBusy
        /// Gauges: reset when a worker takes a slot, reported for live workers only.
        static let gauges: [Field] = [.connectionsOpen, .acceptingPaused, .requestsWaiting, .threadsBusy]
    }

    /// Requests by method and status class: `methods.count` × 5 words.
    static let requestsBase = 32
    static let methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"]
    /// Engine-answered errors by status (the last word: any other status).
    static let engineErrorsBase = requestsBase + methods.count * 5
    static let engineStatuses = [400, 408, 413, 431, 501, 503, 505]

    enum Histogram: Int, CaseIterable {
        /// First byte of the request to the last byte of the response.
        case request
        /// The worker thread's time on the request: the app, its iterable, close().
        case app
        /// From the complete request being queued to a worker taking it.
        case queueWait
    }
    /// Upper bounds in seconds; each histogram is one word per bound, one for
    /// +Inf, the sum in nanoseconds and the count.
    static let bounds: [Double] = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
    ]
    /// The bucket of a duration in nanoseconds: `bounds` as constants, so
    /// observing loads no array (tested against `bounds` in MetricsTests).
    @inline(__always)
    static func bucket(_ n: UInt64) -> Int {
        if n <= 10_000_000 {
            if n <= 1_000_000 {
                return n <= 100_000 ? 0 : n <= 250_000 ? 1 : n <= 500_000 ? 2 : 3
            }
            return n <= 2_500_000 ? 4 : n <= 5_000_000 ? 5 : 6
        }
        if n <= 500_000_000 {
            return n <= 25_000_000 ? 7 : n <= 50_000_000 ? 8 : n <= 100_000_000 ? 9 : n <= 250_000_000 ? 10 : 11
        }
        return n <= 1_000_000_000 ? 12 : n <= 2_500_000_000 ? 13 : n <= 5_000_000_000 ? 14
            : n <= 10_000_000_000 ? 15 : n <= 30_000_000_000 ? 16 : 17
    }
    static let histogramStride = bounds.count + 3
    static let histogramBase = 96

    private let words: UnsafeMutablePointer<UInt64.AtomicRepresentation>
    /// Slots in the memory (1 in a lone process).
    let slotCount: Int
    /// This process's slot.
    public let slot: Int
    /// Slots are worker numbers of a supervisor (label `worker` = slot + 1);
    /// otherwise the one slot is labelled `worker="0"`.
    let supervised: Bool
    private let ownsMemory: Bool

    /// A lone process: private memory for one slot.
    public init() {
        let memory = UnsafeMutableRawPointer.allocate(
            byteCount: Self.slotBytes, alignment: MemoryLayout<UInt64>.alignment)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: Self.slotBytes)
        words = memory.bindMemory(to: UInt64.AtomicRepresentation.self, capacity: Self.slotWords)
        slotCount = 1
        slot = 0
        supervised = false
        ownsMemory = true
    }

    /// Memory shared by the workers of one supervisor (alive as long as this
    /// object), `bytes / slotBytes` slots; nil if misaligned or `slot` is out of range.
    public init?(sharedMemory memory: UnsafeMutableRawPointer, bytes: Int, slot: Int) {
        guard Int(bitPattern: memory) % MemoryLayout<UInt64>.alignment == 0, slot >= 0,
              (slot + 1) * Self.slotBytes <= bytes
        else { return nil }
        slotCount = bytes / Self.slotBytes
        words = memory.bindMemory(to: UInt64.AtomicRepresentation.self, capacity: slotCount * Self.slotWords)
        self.slot = slot
        supervised = true
        ownsMemory = false
    }

    deinit {
        if ownsMemory { UnsafeMutableRawPointer(words).deallocate() }
    }

    @inline(__always)
    private func word(_ slot: Int, _ index: Int) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: words + slot * Self.slotWords + index)
    }

    @inline(__always)
    func load(_ slot: Int, _ index: Int) -> UInt64 { word(slot, index).load(ordering: .relaxed) }

    // MARK: recording (any thread)

    /// Takes this process's slot: counters continue if the slot was used by
    /// an earlier worker with this number, gauges start at zero.
    public func begin(threads: Int, connectionLimit: Int) {
        if load(slot, Field.mark.rawValue) != Self.layoutMark {
            for index in 0..<Self.slotWords { word(slot, index).store(0, ordering: .relaxed) }
            word(slot, Field.mark.rawValue).store(Self.layoutMark, ordering: .relaxed)
        }
        for field in Field.gauges { set(field, 0) }
        set(.threads, threads)
        set(.connectionLimit, connectionLimit)
        word(slot, Field.startTime.rawValue).store(wallSeconds().bitPattern, ordering: .relaxed)
        word(slot, Field.pid.rawValue).store(UInt64(getpid()), ordering: .relaxed)
    }

    /// This process stops serving: its gauges no longer count.
    public func end() {
        for field in Field.gauges { set(field, 0) }
    }

    @inline(__always)
    func add(_ field: Field, _ amount: Int = 1) {
        word(slot, field.rawValue).wrappingIncrement(by: UInt64(truncatingIfNeeded: amount), ordering: .relaxed)
    }

    @inline(__always)
    func set(_ field: Field, _ value: Int) {
        word(slot, field.rawValue).store(UInt64(truncatingIfNeeded: max(0, value)), ordering: .relaxed)
    }

    func observe(_ histogram: Histogram, seconds: Double) {
        let nanos = seconds > 0 ? UInt64(min(seconds, 1e9) * 1e9) : 0
        let bucket = Self.bucket(nanos)
        let base = Self.histogramBase + histogram.rawValue * Self.histogramStride
        word(slot, base + bucket).wrappingIncrement(ordering: .relaxed)
        word(slot, base + Self.bounds.count + 1).wrappingIncrement(by: nanos, ordering: .relaxed)
        word(slot, base + Self.bounds.count + 2).wrappingIncrement(ordering: .relaxed)
    }

    /// A response was written: counted by method (its `methodIndex`) and
    /// status class, timed from the request's first byte.
    func countRequest(method: Int, status: Int, seconds: Double) {
        let statusClass = min(4, max(0, status / 100 - 1))
        word(slot, Self.requestsBase + method * 5 + statusClass).wrappingIncrement(ordering: .relaxed)
        observe(.request, seconds: seconds)
    }

    func countEngineError(status: Int) {
        let index = Self.engineStatuses.firstIndex(of: status) ?? Self.engineStatuses.count
        word(slot, Self.engineErrorsBase + index).wrappingIncrement(ordering: .relaxed)
    }

    /// The index in `methods` of a request's method (the last: any other).
    static func methodIndex(_ m: UnsafeRawBufferPointer) -> Int {
        func its(_ name: StaticString) -> Bool {
            name.utf8CodeUnitCount == m.count && memcmp(name.utf8Start, m.baseAddress!, m.count) == 0
        }
        switch m.count {
        case 3: return its("GET") ? 0 : its("PUT") ? 3 : 7
        case 4: return its("HEAD") ? 1 : its("POST") ? 2 : 7
        case 5: return its("PATCH") ? 5 : 7
        case 6: return its("DELETE") ? 4 : 7
        case 7: return its("OPTIONS") ? 6 : 7
        default: return 7
        }
    }

    // MARK: recording from the worker side (WaitressPython)

    /// A worker thread is about to run a request that waited `queued` seconds.
    public func taskStarted(queued seconds: Double) { observe(.queueWait, seconds: seconds) }

    /// A worker thread finished a request after `seconds`.
    public func taskFinished(seconds: Double) { observe(.app, seconds: seconds) }

    /// A response started writing to a spill file (once per response).
    public func responseSpilled() { add(.responsesSpilled) }

    /// The worker pool's state: threads running a request, requests waiting for one.
    public func pool(busy: Int, waiting: Int) {
        set(.threadsBusy, busy)
        set(.requestsWaiting, waiting)
    }
}
