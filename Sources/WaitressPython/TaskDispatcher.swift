@preconcurrency import CPython
import Atomics
import NIOCore
import WaitressServer

#if canImport(Glibc)
import Glibc
#endif

/// Waitress's ThreadedTaskDispatcher in Swift: `threads` worker threads run
/// the application. Each takes a persistent Python thread state once and then,
/// per batch of work, reacquires the GIL, runs every task it finds queued, and
/// releases the GIL before waiting again (docs/architecture.md §3). The event loop only
/// appends to the queue. It wakes a parked worker at once only when no worker
/// is awake; otherwise it checks 1 ms later whether the queue made progress and
/// wakes another worker only if it did not (the awake ones are blocked in the
/// app). A CPU-bound app is thus served by one worker holding the GIL while
/// requests keep coming, instead of all of them fighting over it, and a
/// blocking app still gets all `threads` workers.
final class TaskDispatcher: RequestDispatcher, @unchecked Sendable {
    private let gate = Gate()
    /// Taken slots are set to nil at once, so a finished request (and its body)
    /// is released as soon as its task ends.
    private var queue: [Request?] = []
    private var head = 0
    /// Workers waiting on the gate, and how many of them have been signalled.
    private var parked = 0
    private var wakeups = 0
    /// Awake workers not inside a task (about to look at the queue).
    private var free = 0
    /// Tasks taken from the queue so far, and the count when the pending
    /// stall check was scheduled.
    private var pops = 0
    private var stallMark = 0
    private var stallCheckScheduled = false
    private var stopping = false
    private var threads: [pthread_t] = []
    private let count: Int
    private var runTask: (Request) -> Void
    /// The deepest backlog seen since a worker last logged it ("Task queue
    /// depth is N" goes to the `waitress.queue` logger, which needs the GIL).
    let queueDepthToReport = ManagedAtomic<Int>(0)
    /// Busy threads and waiting requests go here (metrics_listen); set before start().
    var metrics: ServerMetrics?
    /// Workers inside a batch of tasks.
    private var busy = 0

    init(threads: Int, runTask: @escaping (Request) -> Void) {
        self.count = max(1, threads)
        self.runTask = runTask
        queue.reserveCapacity(64)
    }

    /// Sets what runs each request; before start().
    func setRunner(_ runner: @escaping (Request) -> Void) { runTask = runner }

    /// Starts the workers; call without the GIL held.
    func start() {
        for number in 0..<count {
            let box = Unmanaged.passRetained(WorkerStart(dispatcher: self, number: number)).toOpaque()
            var thread = pthread_t()
            pthread_create(&thread, nil, { argument in
                let start = Unmanaged<WorkerStart>.fromOpaque(argument!).takeRetainedValue()
                start.dispatcher.workerLoop(number: start.number)
                return nil
            }, box)
            threads.append(thread)
        }
        gate.withLock { alive += count }
    }

    private final class WorkerStart {
        let dispatcher: TaskDispatcher
        let number: Int
        init(dispatcher: TaskDispatcher, number: Int) {
            self.dispatcher = dispatcher
            self.number = number
        }
    }

    /// Called on the event loop.
    func dispatch(_ request: Request) {
        gate.lock()
        queue.append(request)
        let waiting = queue.count - head
        // Workers still starting (not yet at the queue) are idle too: only
        // requests that wait for a thread count as queue depth.
        let idle = free + parked + (count - started)
        if waiting > idle {
            let depth = waiting - idle
            if depth > queueDepthToReport.load(ordering: .relaxed) {
                queueDepthToReport.store(depth, ordering: .relaxed)
            }
        }
        metrics?.pool(busy: busy, waiting: waiting)
        var scheduleCheck = false
        var scheduleWake = false
        let awake = count - parked
        if awake + wakeups == 0 {
            // Signal once this event-loop tick has dispatched everything it
            // read (tasks run after the I/O events of a tick), so the worker
            // wakes to a batch rather than to the first request of it.
            wakeups += 1
            scheduleWake = true
        } else if parked > wakeups && !stallCheckScheduled {
            stallCheckScheduled = true
            stallMark = pops
            scheduleCheck = true
        }
        gate.unlock()
        if scheduleWake {
            request.eventLoop.execute { [self] in
                gate.withLock { gate.signal() }
            }
        }
        if scheduleCheck {
            scheduleStallCheck(request.eventLoop)
        }
    }

    private func scheduleStallCheck(_ loop: EventLoop) {
        loop.scheduleTask(in: .milliseconds(1)) { [self] in
            checkStall(loop)
        }
    }

    /// On the event loop: if nothing was taken from a non-empty queue since
    /// the last look, the awake workers are blocked; wake another.
    private func checkStall(_ loop: EventLoop) {
        gate.lock()
        stallCheckScheduled = false
        var again = false
        if queue.count - head > 0 && parked > wakeups && !stopping {
            if pops == stallMark {
                wakeups += 1
                gate.signal()
            }
            stallCheckScheduled = true
            stallMark = pops
            again = true
        }
        gate.unlock()
        if again { scheduleStallCheck(loop) }
    }

    private func pop() -> Request? {
        guard head < queue.count else { return nil }
        let request = queue[head]
        queue[head] = nil
        head += 1
        pops += 1
        metrics?.pool(busy: busy, waiting: queue.count - head)
        if head == queue.count {
            queue.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64 && head * 2 >= queue.count {
            // Under steady load the queue may never empty: drop the taken
            // slots so finished requests are released and the array stays small.
            queue.removeFirst(head)
            head = 0
        }
        return request
    }

    /// Workers started and not yet finished.
    private var alive = 0
    /// Workers that have reached the queue at least once.
    private var started = 0

    /// Finishes queued work, then stops and joins the workers, waiting at most
    /// `seconds` (Waitress's dispatcher waits 5). Workers still inside the app
    /// then are detached and left to finish on their own; returns how many.
    /// Call without the GIL held.
    func stopAndJoin(seconds: Double) -> Int {
        let deadline = monotonicSeconds() + seconds
        gate.lock()
        stopping = true
        gate.broadcast()
        while alive > 0 {
            let left = deadline - monotonicSeconds()
            if left <= 0 { break }
            gate.wait(seconds: min(left, 0.1))
        }
        let remaining = alive
        gate.unlock()
        for thread in threads {
            if remaining == 0 { pthread_join(thread, nil) } else { pthread_detach(thread) }
        }
        threads.removeAll()
        return remaining
    }

    private func workerLoop(number: Int) {
        let gilState = PyGILState_Ensure()
        nameThread("waitress-\(number)")
        var threadState = PyEval_SaveThread()
        gate.lock()
        started += 1
        free += 1
        while true {
            guard let first = pop() else {
                if stopping { break }
                free -= 1
                parked += 1
                gate.wait()
                parked -= 1
                if wakeups > 0 { wakeups -= 1 }
                free += 1
                continue
            }
            free -= 1
            busy += 1
            metrics?.pool(busy: busy, waiting: queue.count - head)
            gate.unlock()
            PyEval_RestoreThread(threadState)
            var task: Request? = first
            // Each response's end goes to the event loop as its task ends,
            // never held while the next task runs (that one may block for
            // seconds). The Outbox still batches: only a post that finds it
            // empty wakes the loop.
            while let current = task {
                runTask(current)
                task = gate.withLock { pop() }
                if task == nil {
                    // Before parking, let the event loop run if it is waiting
                    // for this CPU (woken by the responses just posted): it
                    // writes them, reads the next requests and queues them,
                    // and this worker goes on without a futex sleep and wake.
                    // Elsewhere this returns at once. hello-world, one CPU:
                    // 0.19 voluntary switches per request instead of 0.33,
                    // about 6% more requests per second (docs/architecture.md §3).
                    sched_yield()
                    task = gate.withLock { pop() }
                }
            }
            threadState = PyEval_SaveThread()
            gate.lock()
            free += 1
            busy -= 1
            metrics?.pool(busy: busy, waiting: queue.count - head)
        }
        free -= 1
        gate.unlock()
        PyEval_RestoreThread(threadState)
        PyGILState_Release(gilState)
        gate.withLock {
            alive -= 1
            gate.broadcast()
        }
    }
}

/// Names the calling thread in Python's `threading` as Waitress names its
/// workers (`waitress-0`, ...), so `%(threadName)s` in log formats and
/// `threading.current_thread().name` in apps read the same. With the GIL held.
private func nameThread(_ name: String) {
    defer { PyErr_Clear() }
    guard let currentThread = importAttribute("threading", "current_thread") else { return }
    defer { wp_decref(currentThread) }
    guard let thread = callObject(currentThread, []) else { return }
    defer { wp_decref(thread) }
    guard let value = pyString(name) else { return }
    defer { wp_decref(value) }
    PyObject_SetAttrString(thread, "name", value)
}

/// Runs each request on the event loop thread itself (dispatch=inline): no
/// hand-off between threads and no context switch per request, as bjoern and
/// fastwsgi run their apps, for apps that never block, since no other
/// connection is served while the app runs. The GIL is taken for each request
/// with the loop thread's own Python thread state, made once. Called only on
/// the event loop.
final class InlineDispatcher: RequestDispatcher, @unchecked Sendable {
    private var runTask: (Request) -> Void = { _ in }
    private var threadState: UnsafeMutablePointer<PyThreadState>?

    func setRunner(_ runner: @escaping (Request) -> Void) { runTask = runner }

    func dispatch(_ request: Request) {
        if let state = threadState {
            PyEval_RestoreThread(state)
        } else {
            // Kept for the life of the loop thread (at most one per run()).
            _ = PyGILState_Ensure()
            nameThread("waitress-inline")
        }
        runTask(request)
        threadState = PyEval_SaveThread()
    }
}
