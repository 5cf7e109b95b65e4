#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A listening socket whose accept queue a scrape reports.
public struct MetricsListener: Sendable {
    public var name: String
    public var descriptor: Int32

    public init(name: String, descriptor: Int32) {
        self.name = name
        self.descriptor = descriptor
    }
}

/// The Prometheus text exposition format (version 0.0.4), written from the
/// words of every slot in use.
extension ServerMetrics {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public func render(listeners: [MetricsListener] = []) -> [UInt8] {
        var text = PrometheusText()
        let used = (0..<slotCount).filter { load($0, Field.mark.rawValue) == Self.layoutMark }
        let live = used.filter { slot in
            let pid = pid_t(truncatingIfNeeded: load(slot, Field.pid.rawValue))
            return pid > 0 && (pid == getpid() || kill(pid, 0) == 0 || errno == EPERM)
        }
        func label(_ slot: Int) -> String { "worker=\"\(supervised ? slot + 1 : 0)\"" }
        func counter(_ name: String, _ help: String, _ field: Field) {
            text.family(name, "counter", help)
            for slot in used { text.sample(name, label(slot), load(slot, field.rawValue)) }
        }
        func gauge(_ name: String, _ help: String, _ field: Field) {
            text.family(name, "gauge", help)
            for slot in live { text.sample(name, label(slot), load(slot, field.rawValue)) }
        }

        text.family("waitress_requests_total", "counter", "Responses written, by request method and status class.")
        for slot in used {
            for (m, method) in Self.methods.enumerated() {
                for c in 0..<5 {
                    let value = load(slot, Self.requestsBase + m * 5 + c)
                    if value > 0 {
                        text.sample(
                            "waitress_requests_total", "\(label(slot)),method=\"\(method)\",status=\"\(c + 1)xx\"", value)
                    }
                }
            }
        }
        text.family(
            "waitress_engine_errors_total", "counter",
            "Requests the server answered itself with an error (malformed, too large, timed out), by status.")
        for slot in used {
            for (index, status) in (Self.engineStatuses.map(String.init) + ["other"]).enumerated() {
                let value = load(slot, Self.engineErrorsBase + index)
                if value > 0 { text.sample("waitress_engine_errors_total", "\(label(slot)),status=\"\(status)\"", value) }
            }
        }
        histogram(
            &text, "waitress_request_duration_seconds",
            "From the first byte of a request to the last byte of its response.", .request, used, label)
        histogram(
            &text, "waitress_app_duration_seconds",
            "Time a worker thread spent on a request: the application, its iterable and close().", .app, used, label)
        histogram(
            &text, "waitress_queue_wait_seconds", "Time a complete request waited for a worker thread.", .queueWait,
            used, label)
        counter("waitress_received_bytes_total", "Bytes read from client connections.", .bytesReceived)
        counter("waitress_sent_bytes_total", "Bytes written to client connections.", .bytesSent)
        counter("waitress_connections_accepted_total", "Client connections accepted.", .connectionsAccepted)
        gauge("waitress_connections_open", "Client connections open.", .connectionsOpen)
        gauge("waitress_connection_limit", "connection_limit: open connections at which accepting pauses.", .connectionLimit)
        text.family(
            "waitress_accept_pauses_total", "counter",
            "Times accepting paused: at connection_limit, out of file descriptors, or to let another worker accept.")
        for slot in used {
            for (reason, field) in [("connection_limit", Field.acceptPausesLimit), ("descriptors", .acceptPausesDescriptors),
                                    ("balance", .acceptPausesBalance)] {
                text.sample("waitress_accept_pauses_total", "\(label(slot)),reason=\"\(reason)\"", load(slot, field.rawValue))
            }
        }
        gauge("waitress_accepting_paused", "1 while this worker does not accept new connections.", .acceptingPaused)
        gauge("waitress_requests_waiting", "Complete requests waiting for a worker thread.", .requestsWaiting)
        text.family("waitress_threads", "gauge", "Worker threads, busy with a request or idle.")
        for slot in live {
            let threads = load(slot, Field.threads.rawValue)
            let busy = min(threads, load(slot, Field.threadsBusy.rawValue))
            text.sample("waitress_threads", "\(label(slot)),state=\"busy\"", busy)
            text.sample("waitress_threads", "\(label(slot)),state=\"idle\"", threads - busy)
        }
        counter(
            "waitress_request_bodies_spilled_total", "Request bodies larger than inbuf_overflow, kept in a temporary file.",
            .bodiesSpilled)
        counter(
            "waitress_responses_spilled_total",
            "Responses whose unsent output passed outbuf_overflow and went to a temporary file.", .responsesSpilled)
        if supervised {
            text.family("waitress_workers", "gauge", "Worker processes serving.")
            text.sample("waitress_workers", "", UInt64(live.count))
        }
        listenQueues(&text, listeners)
        processFigures(&text, live, label)
        return text.out
    }

    private func histogram(
        _ text: inout PrometheusText, _ name: String, _ help: String, _ histogram: Histogram, _ slots: [Int],
        _ label: (Int) -> String
    ) {
        text.family(name, "histogram", help)
        let base = Self.histogramBase + histogram.rawValue * Self.histogramStride
        for slot in slots {
            var cumulative: UInt64 = 0
            for (index, bound) in Self.bounds.enumerated() {
                cumulative &+= load(slot, base + index)
                text.sample(name + "_bucket", "\(label(slot)),le=\"\(bound)\"", cumulative)
            }
            cumulative &+= load(slot, base + Self.bounds.count)
            // Words are read one by one while requests are observed: +Inf
            // and _count are made equal and never below the finite buckets.
            let count = max(cumulative, load(slot, base + Self.bounds.count + 2))
            text.sample(name + "_bucket", "\(label(slot)),le=\"+Inf\"", count)
            text.sample(name + "_sum", label(slot), Double(load(slot, base + Self.bounds.count + 1)) / 1e9)
            text.sample(name + "_count", label(slot), count)
        }
    }

    /// The accept queue of each TCP listener now, shared by all workers
    /// (Linux reports it for a listening socket in tcp_info).
    private func listenQueues(_ text: inout PrometheusText, _ listeners: [MetricsListener]) {
        var rows: [(String, UInt32, UInt32)] = []
        for listener in listeners {
            var info = tcp_info()
            var size = socklen_t(MemoryLayout<tcp_info>.size)
            if getsockopt(listener.descriptor, Int32(IPPROTO_TCP), TCP_INFO, &info, &size) == 0 {
                rows.append((listener.name, info.tcpi_unacked, info.tcpi_sacked))
            }
        }
        guard !rows.isEmpty else { return }
        text.family(
            "waitress_listen_queue_connections", "gauge", "Connections waiting in a listening socket's accept queue.")
        for (name, queued, _) in rows { text.sample("waitress_listen_queue_connections", "listener=\"\(name)\"", UInt64(queued)) }
        text.family("waitress_listen_backlog", "gauge", "The accept queue's limit (backlog).")
        for (name, _, limit) in rows { text.sample("waitress_listen_backlog", "listener=\"\(name)\"", UInt64(limit)) }
    }

    /// Standard process metrics per live worker, read from /proc at scrape time.
    private func processFigures(_ text: inout PrometheusText, _ slots: [Int], _ label: (Int) -> String) {
        let figures = slots.compactMap { slot in
            ProcessFigures(pid: pid_t(truncatingIfNeeded: load(slot, Field.pid.rawValue))).map { (slot, $0) }
        }
        text.family("process_cpu_seconds_total", "counter", "User and system CPU time of the process.")
        for (slot, f) in figures { text.sample("process_cpu_seconds_total", label(slot), f.cpuSeconds) }
        text.family("process_resident_memory_bytes", "gauge", "Resident memory of the process.")
        for (slot, f) in figures { text.sample("process_resident_memory_bytes", label(slot), f.residentBytes) }
        text.family("process_open_fds", "gauge", "Open file descriptors of the process.")
        for (slot, f) in figures { text.sample("process_open_fds", label(slot), UInt64(f.openDescriptors)) }
        text.family("process_start_time_seconds", "gauge", "When the process started serving, in seconds since the epoch.")
        for slot in slots {
            text.sample(
                "process_start_time_seconds", label(slot), Double(bitPattern: load(slot, Field.startTime.rawValue)))
        }
    }
}

/// A process's CPU time, resident memory and open descriptors from /proc.
struct ProcessFigures {
    var cpuSeconds: Double
    var residentBytes: UInt64
    var openDescriptors: Int

    init?(pid: pid_t) {
        guard let stat = Self.read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: UInt8(ascii: ")")) else {
            return nil
        }
        // Fields after "(comm)": state is the first; utime, stime the 12th
        // and 13th; rss (pages) the 22nd (proc(5) numbers them 3, 14, 15, 24).
        let fields = stat[(close + 1)...].split(separator: UInt8(ascii: " ")).map { UInt64(String(decoding: $0, as: UTF8.self)) ?? 0 }
        guard fields.count > 21 else { return nil }
        let ticks = Double(max(1, sysconf(Int32(_SC_CLK_TCK))))
        cpuSeconds = Double(fields[11] + fields[12]) / ticks
        residentBytes = fields[21] * UInt64(max(1, sysconf(Int32(_SC_PAGESIZE))))
        openDescriptors = 0
        if let dir = opendir("/proc/\(pid)/fd") {
            while let entry = readdir(dir) {
                if entry.pointee.d_name.0 != UInt8(ascii: ".") { openDescriptors += 1 }
            }
            closedir(dir)
            // Listing our own descriptors, the listing's own one is among them.
            if pid == getpid() { openDescriptors -= 1 }
        }
    }

    static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var bytes = [UInt8](repeating: 0, count: 4096)
        let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return Array(bytes.prefix(n))
    }
}

/// Lines of the text format.
struct PrometheusText {
    var out: [UInt8] = []

    init() { out.reserveCapacity(16384) }

    mutating func family(_ name: String, _ type: String, _ help: String) {
        out.append(contentsOf: "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n".utf8)
    }

    mutating func sample(_ name: String, _ labels: String, _ value: UInt64) {
        line(name, labels, String(value))
    }

    mutating func sample(_ name: String, _ labels: String, _ value: Double) {
        line(name, labels, value.isFinite ? "\(value)" : value.isNaN ? "NaN" : value > 0 ? "+Inf" : "-Inf")
    }

    private mutating func line(_ name: String, _ labels: String, _ value: String) {
        out.append(contentsOf: name.utf8)
        if !labels.isEmpty {
            out.append(UInt8(ascii: "{"))
            out.append(contentsOf: labels.utf8)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: value.utf8)
        out.append(10)
    }
}
