import Atomics
import NIOCore

/// Evens out which worker process accepts from a shared listening socket.
///
/// The kernel hands a connection to whichever worker's accept runs first, so
/// a burst of keep-alive connections (a benchmark's or a proxy's pool) can
/// land mostly on one worker, which then caps the throughput for as long as
/// they stay open. Each worker publishes its count of open connections in
/// its own slot of memory shared by all workers of one supervisor (mapped
/// before the fork); a worker that holds `margin` or more connections above
/// the least-loaded other worker that is accepting stops accepting for
/// `pause`, so that the other takes what is queued. The pause is bounded:
/// if no other worker takes the connection (busy, or its loop is stuck),
/// this one accepts it when the pause ends, so balancing can delay an
/// accept by at most `pause` and never refuses one.
///
/// A slot holds -1 while its worker does not accept (not started yet,
/// draining, or exited: the supervisor resets the slot of a worker it
/// reaps), and the worker's open connections otherwise.
public final class AcceptBalance: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<Int.AtomicRepresentation>
    private let count: Int
    private let mine: Int

    /// Connections above the least-loaded other worker at which to yield.
    static let margin = 2
    static let pause = TimeAmount.milliseconds(2)

    /// `memory` holds `count` machine words, shared between the workers and
    /// alive for as long as this object; `mine` is this worker's slot.
    public init?(memory: UnsafeMutableRawPointer, bytes: Int, slot mine: Int) {
        let stride = MemoryLayout<Int.AtomicRepresentation>.stride
        guard Int(bitPattern: memory) % MemoryLayout<Int.AtomicRepresentation>.alignment == 0,
              mine >= 0, (mine + 1) * stride <= bytes
        else { return nil }
        self.count = bytes / stride
        self.mine = mine
        self.slots = memory.bindMemory(to: Int.AtomicRepresentation.self, capacity: count)
    }

    private func atomic(_ index: Int) -> UnsafeAtomic<Int> { UnsafeAtomic(at: slots + index) }

    /// This worker accepts and has `open` connections.
    func publish(open: Int) { atomic(mine).store(open, ordering: .relaxed) }

    /// This worker no longer accepts.
    func withdraw() { atomic(mine).store(-1, ordering: .relaxed) }

    /// Whether a worker with `open` connections should let the others accept
    /// for a while: some other worker accepts and has at least `margin` fewer.
    func shouldYield(open: Int) -> Bool {
        guard open >= Self.margin else { return false }
        for index in 0..<count where index != mine {
            let other = atomic(index).load(ordering: .relaxed)
            if other >= 0 && open - other >= Self.margin { return true }
        }
        return false
    }
}
