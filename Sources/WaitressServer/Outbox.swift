import NIOCore

/// Carries response parts from worker threads to the event loop in batches:
/// only the post that finds the outbox empty schedules a task on the loop, and
/// that task drains everything posted meanwhile, so a busy server pays one
/// wake-up for many responses (docs/architecture.md §3).
final class Outbox: @unchecked Sendable {
    private let eventLoop: EventLoop
    private let gate = Gate()
    private var parts: [(ConnectionHandler, ResponseChannel.Part)] = []
    private var spare: [(ConnectionHandler, ResponseChannel.Part)] = []
    /// Set when the event loop is going away: a worker that finishes after a
    /// forced shutdown must not schedule work on a dead loop.
    private var closed = false

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
        parts.reserveCapacity(64)
        spare.reserveCapacity(64)
    }

    func close() {
        gate.withLock {
            closed = true
            parts.removeAll()
        }
    }

    func post(_ handler: ConnectionHandler, _ part: ResponseChannel.Part) {
        gate.lock()
        if closed {
            gate.unlock()
            return
        }
        parts.append((handler, part))
        let first = parts.count == 1
        gate.unlock()
        if first {
            eventLoop.execute { self.drain() }
        }
    }

    func postAll(_ batch: [(ConnectionHandler, ResponseChannel.Part)]) {
        gate.lock()
        if closed {
            gate.unlock()
            return
        }
        let first = parts.isEmpty
        parts.append(contentsOf: batch)
        gate.unlock()
        if first {
            eventLoop.execute { self.drain() }
        }
    }

    private func drain() {
        gate.lock()
        swap(&parts, &spare)
        gate.unlock()
        var index = 0
        while index < spare.count {
            let (handler, part) = spare[index]
            index += 1
            // A response's last bytes and its end, posted one after the other
            // (an iterable app_iter whose last item was followed at once by
            // StopIteration): one write as the end's own bytes, without a
            // promise to report them written (about 3,900 instructions for an
            // iterable response such as Flask's).
            if case .data(let buffer) = part, index < spare.count, spare[index].0 === handler,
                case .end(nil, let close) = spare[index].1
            {
                index += 1
                handler.handleLast(buffer, close: close)
                continue
            }
            handler.handle(part)
        }
        for (handler, _) in spare {
            handler.flushIfNeeded()
        }
        spare.removeAll(keepingCapacity: true)
    }
}
