@preconcurrency import CPython
import Atomics
import WaitressHTTP
import WaitressServer

/// `waitress._native.Engine`: one server (an event loop for all its listeners
/// plus the worker pool). Constructing it only records the configuration;
/// threads and the event loop exist only inside `run()` (docs/architecture.md §3), so a
/// process may fork after creating servers.
public final class Engine {
    /// How long a stop waits for in-flight requests to finish and flush
    /// before closing what is left (docs: graceful shutdown).
    static let drainSeconds = 30.0

    let application: PyRef
    let logger: PyRef
    let queueLogger: PyRef
    let listeners: [ListenerSpec]
    let configuration: ServerConfiguration
    /// Worker threads; nil runs the app on the event loop (dispatch=inline).
    let threads: Int?
    let options: WSGIApplication.Options
    /// Worker pools whose threads outlived a shutdown (see run()).
    nonisolated(unsafe) static var abandoned: [AnyObject] = []
    private let gate = Gate()
    /// Requests handed to the application so far (`Engine.served()`; the
    /// supervisor's `max_requests`).
    let served = ManagedAtomic<Int>(0)
    /// `Engine.heartbeat(fd, interval)`: where and how often the event loop
    /// beats while serving (a negative descriptor: never).
    var heartbeatDescriptor: Int32 = -1
    var heartbeatInterval = 1.0
    /// `Engine.drain_grace(seconds)`: HTTPServer.idleGraceOnDrain.
    var drainGrace = 0.0
    /// `Engine.balance(buffer, slot)`: the view of the supervisor's shared
    /// memory (released with the engine) and the balance over it.
    var sharedCounts: UnsafeMutablePointer<Py_buffer>?
    var acceptBalance: AcceptBalance?
    /// `Engine.metrics(fd, buffer, slot)`: the metrics_listen socket and the
    /// view of the supervisor's shared metrics memory (nil: a lone process).
    var metricsDescriptor: Int32?
    var metricsMemory: UnsafeMutablePointer<Py_buffer>?
    var metricsSlot = 0
    /// When the thread in run() last held the GIL (monotonic seconds, as bits).
    private let pythonTick = ManagedAtomic<UInt64>(0)
    private var stopRequested = false
    private var running = false
    /// The server while run() serves (reopen_access_log).
    private var server: HTTPServer?

    init(application: PyPtr, listeners: [ListenerSpec], configuration: ServerConfiguration, threads: Int?,
         options: WSGIApplication.Options, logger: PyPtr, queueLogger: PyPtr) {
        wp_incref(application)
        wp_incref(logger)
        wp_incref(queueLogger)
        self.application = PyRef(application)
        self.logger = PyRef(logger)
        self.queueLogger = PyRef(queueLogger)
        self.listeners = listeners
        self.configuration = configuration
        self.threads = threads
        self.options = options
    }

    deinit {
        // Dealloc of the Python object runs with the GIL held.
        wp_decref(application.pointer)
        wp_decref(logger.pointer)
        wp_decref(queueLogger.pointer)
        for view in [sharedCounts, metricsMemory].compactMap({ $0 }) {
            PyBuffer_Release(view)
            view.deallocate()
        }
    }

    /// When the queue-depth warning was last logged.
    private var lastDepthReport = -1.0

    /// Waitress warns "Task queue depth is N" on the `waitress.queue` logger
    /// when requests wait for a thread. Here the deepest backlog seen is
    /// logged from the thread in run(), at most once a second: a line per
    /// queued task would cost more than the requests under load.
    private func reportQueueDepth(_ dispatcher: TaskDispatcher, _ app: WSGIApplication, force: Bool) {
        guard dispatcher.queueDepthToReport.load(ordering: .relaxed) > 0 else { return }
        let now = monotonicSeconds()
        guard force || now - lastDepthReport >= 1 else { return }
        lastDepthReport = now
        let depth = dispatcher.queueDepthToReport.exchange(0, ordering: .relaxed)
        if depth > 0 { app.queueWarning("Task queue depth is \(depth)") }
    }

    func reopenAccessLog() {
        gate.withLock { server }?.reopenAccessLog()
    }

    func requestStop() {
        gate.withLock {
            stopRequested = true
            gate.broadcast()
        }
    }

    /// Engine.run(); called with the GIL held, returns a new reference or nil.
    func run() -> PyPtr? {
        let alreadyRunning = gate.withLock { () -> Bool in
            if running { return true }
            running = true
            return false
        }
        if alreadyRunning { return raise(PyExc_RuntimeError, "this server is already running") }
        defer { gate.withLock { running = false } }
        guard
            let app = WSGIApplication(
                application: application.pointer, logger: logger.pointer, queueLogger: queueLogger.pointer,
                options: options, listeners: listeners)
        else { return nil }
        let metrics = makeMetrics()
        let dispatcher = TaskDispatcher(threads: threads ?? 0) { _ in }
        dispatcher.metrics = metrics
        let worker = TaskRunner(app: app, served: served, metrics: metrics)
        dispatcher.setRunner(worker.run)
        var inline: InlineDispatcher? = nil
        if threads == nil {
            inline = InlineDispatcher()
            inline!.setRunner(worker.run)
        }
        let server = HTTPServer(
            configuration: configuration, listeners: listeners, dispatcher: inline ?? dispatcher, balance: acceptBalance,
            metrics: metrics, metricsDescriptor: metricsDescriptor)
        metrics?.begin(threads: threads ?? 0, connectionLimit: configuration.connectionLimit)
        defer { metrics?.end() }
        server.idleGraceOnDrain = drainGrace
        gate.withLock { self.server = server }
        defer { gate.withLock { self.server = nil } }

        // Response and body buffers of 64 KiB to a few MiB are allocated and
        // freed per request on different threads. With glibc's defaults they
        // are mmapped or trimmed back to the kernel each time and every request
        // pays fresh page faults (measured: a 64 KiB response cost 34 us of CPU,
        // 18 us with these; 1 MiB request bodies still refaulted with an 8 MiB
        // trim threshold). Fixed thresholds keep such buffers in the heap.
        // MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ or GLIBC_TUNABLES in
        // the environment take precedence.
        _ = wp_tune_malloc(4 << 20, 32 << 20)
        var threadState = PyEval_SaveThread()
        if threads != nil { dispatcher.start() }
        var startError: Error? = nil
        do { try server.start() } catch { startError = error }
        pythonTick.store(monotonicSeconds().bitPattern, ordering: .relaxed)
        if startError == nil && heartbeatDescriptor >= 0 {
            // Beats stop when the loop stops, and also when this thread has not
            // had the GIL for several of its 100 ms rounds.
            let tick = pythonTick
            let stale = max(1.0, 2 * heartbeatInterval)
            server.startHeartbeat(descriptor: heartbeatDescriptor, interval: heartbeatInterval) {
                monotonicSeconds() - Double(bitPattern: tick.load(ordering: .relaxed)) < stale
            }
        }
        var pending: PyPtr? = nil
        if startError == nil {
            // Serve until stop() or a signal handler raises; check signals
            // every 100 ms (Ctrl-C, SIGTERM handlers installed by Python).
            while true {
                let stop = gate.withLock { () -> Bool in
                    if !stopRequested { gate.wait(seconds: 0.1) }
                    return stopRequested
                }
                if stop { break }
                PyEval_RestoreThread(threadState)
                pythonTick.store(monotonicSeconds().bitPattern, ordering: .relaxed)
                // Sent output of a server with no task running to take it.
                BorrowedBytes.drain()
                app.emit(server.logs.drain())
                reportQueueDepth(dispatcher, app, force: false)
                // A signal handler may have raised inside those logging calls.
                pending = AccessLogBridge.relay(server, configuration: configuration)
                if pending == nil { pending = app.takeInterrupt() }
                if pending == nil && PyErr_CheckSignals() != 0 { pending = wp_err_fetch() }
                threadState = PyEval_SaveThread()
                if pending != nil { break }
            }
            server.beginStop()
            // Drain in-flight requests; a second signal cuts it short.
            let deadline = monotonicSeconds() + Self.drainSeconds
            while !server.waitForDrain(seconds: 0.1) && monotonicSeconds() < deadline {
                PyEval_RestoreThread(threadState)
                pythonTick.store(monotonicSeconds().bitPattern, ordering: .relaxed)
                let interrupted = PyErr_CheckSignals() != 0
                if interrupted {
                    if let second = wp_err_fetch() {
                        if pending == nil { pending = second } else { wp_decref(second) }
                    }
                }
                threadState = PyEval_SaveThread()
                if interrupted { break }
            }
        }
        server.finishStop()
        let stuck = dispatcher.stopAndJoin(seconds: 5)
        PyEval_RestoreThread(threadState)
        app.emit(server.logs.drain())
        if let late = AccessLogBridge.relay(server, configuration: configuration) {
            if pending == nil { pending = late } else { wp_decref(late) }
        }
        reportQueueDepth(dispatcher, app, force: true)
        if let late = app.takeInterrupt() {
            if pending == nil { pending = late } else { wp_decref(late) }
        }
        if stuck > 0 {
            // As Waitress: they finish on their own; what they hold must then
            // never be released without the GIL, so it is kept for good.
            app.warn("\(stuck) thread(s) still running")
            Engine.abandoned.append(dispatcher)
        }
        // Release the Python objects these hold only now, with the GIL.
        withExtendedLifetime((server, dispatcher, worker, app)) {}
        BorrowedBytes.drain()
        gate.withLock { stopRequested = false }
        if let error = startError {
            return raise(PyExc_OSError, "could not start serving: \(error)")
        }
        if let pending = pending {
            wp_err_restore(pending)
            return nil
        }
        return wp_new_none()
    }
}

/// Runs each request on a worker thread, with the GIL held.
final class TaskRunner {
    let app: WSGIApplication
    let served: ManagedAtomic<Int>
    let metrics: ServerMetrics?

    init(app: WSGIApplication, served: ManagedAtomic<Int>, metrics: ServerMetrics?) {
        self.app = app
        self.served = served
        self.metrics = metrics
    }

    func run(_ request: Request) {
        // Output that earlier responses borrowed and the event loop has sent.
        defer { if BorrowedBytes.hasReleased { BorrowedBytes.drain() } }
        served.wrappingIncrement(ordering: .relaxed)
        guard let metrics = metrics else {
            WSGITask(app: app, request: request).run()
            return
        }
        let start = monotonicSeconds()
        metrics.taskStarted(queued: start - request.dispatchedAt)
        WSGITask(app: app, request: request).run()
        metrics.taskFinished(seconds: monotonicSeconds() - start)
    }
}

extension Engine {
    /// The metrics for one run(), when metrics_listen gave a socket: in the
    /// supervisor's shared memory, or private to this process.
    func makeMetrics() -> ServerMetrics? {
        guard metricsDescriptor != nil else { return nil }
        if let view = metricsMemory, let memory = view.pointee.buf {
            return ServerMetrics(sharedMemory: memory, bytes: Int(view.pointee.len), slot: metricsSlot)
        }
        return ServerMetrics()
    }
}
