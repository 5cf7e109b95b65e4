import NIOCore
import NIOEmbedded
import XCTest

@testable import WaitressServer

/// `AcceptBalance` and the limiter's use of it: a worker well ahead of
/// another accepting worker pauses accepting for `AcceptBalance.pause`, and
/// never for longer (docs/deployment.md, "One accept queue").
final class AcceptBalanceTests: XCTestCase {
    /// Three workers' slots, as the supervisor's shared page holds them.
    private var memory: UnsafeMutableRawPointer!
    private let slots = 3

    override func setUp() {
        memory = UnsafeMutableRawPointer.allocate(byteCount: slots * 8, alignment: 8)
        memory.initializeMemory(as: Int.self, repeating: -1, count: slots)
    }

    override func tearDown() { memory.deallocate() }

    private func slot(_ index: Int) -> Int { memory.load(fromByteOffset: index * 8, as: Int.self) }
    private func setSlot(_ index: Int, _ value: Int) { memory.storeBytes(of: value, toByteOffset: index * 8, as: Int.self) }

    func testRejectsASlotOutsideTheMemory() {
        XCTAssertNil(AcceptBalance(memory: memory, bytes: slots * 8, slot: slots))
        XCTAssertNil(AcceptBalance(memory: memory, bytes: slots * 8, slot: -1))
        XCTAssertNil(AcceptBalance(memory: memory + 1, bytes: slots * 8 - 1, slot: 0), "unaligned")
        XCTAssertNotNil(AcceptBalance(memory: memory, bytes: slots * 8, slot: slots - 1))
    }

    func testYieldsOnlyToAnAcceptingWorkerWithClearlyFewerConnections() throws {
        let balance = try XCTUnwrap(AcceptBalance(memory: memory, bytes: slots * 8, slot: 0))
        XCTAssertFalse(balance.shouldYield(open: 10), "no other worker accepts")
        setSlot(1, 9)
        XCTAssertFalse(balance.shouldYield(open: 10), "one ahead is even enough")
        setSlot(2, 8)
        XCTAssertTrue(balance.shouldYield(open: 10))
        XCTAssertFalse(balance.shouldYield(open: 1))
        setSlot(2, -1)
        XCTAssertFalse(balance.shouldYield(open: 10), "worker 3 stopped accepting")
        balance.publish(open: 4)
        XCTAssertEqual(slot(0), 4)
        balance.withdraw()
        XCTAssertEqual(slot(0), -1)
    }

    /// One read of a listener accepts at most what connection_limit leaves
    /// room for (so a burst never goes past the limit), at most
    /// `maxAcceptBatch`, at least 1; and 1 under a supervisor, so that
    /// balancing sees every accept.
    func testAcceptBatchNeverExceedsTheRoomLeftByTheLimit() throws {
        let alone = ConnectionLimiter(limit: 5, logs: LogRelay())
        alone.add(listener: EmbeddedChannel())
        XCTAssertEqual(alone.acceptBatch, 5)
        for expected in [4, 3, 2, 1] {
            alone.opened()
            XCTAssertEqual(alone.acceptBatch, expected)
        }
        alone.opened()
        XCTAssertFalse(alone.accepting, "paused at the limit")
        XCTAssertEqual(alone.acceptBatch, 1)
        alone.closed()
        XCTAssertTrue(alone.accepting)
        XCTAssertEqual(alone.acceptBatch, 1, "room for one")
        alone.closed()
        XCTAssertEqual(alone.acceptBatch, 2)

        let wide = ConnectionLimiter(limit: 1000, logs: LogRelay())
        XCTAssertEqual(wide.acceptBatch, ConnectionLimiter.maxAcceptBatch)

        let (balanced, _) = try limiter(slot: 0)
        XCTAssertEqual(balanced.acceptBatch, 1)
    }

    private func limiter(slot: Int) throws -> (ConnectionLimiter, EmbeddedEventLoop) {
        let balance = try XCTUnwrap(AcceptBalance(memory: memory, bytes: slots * 8, slot: slot))
        let listener = EmbeddedChannel()
        let limiter = ConnectionLimiter(limit: 1000, logs: LogRelay(), balance: balance)
        limiter.add(listener: listener)
        limiter.started()
        return (limiter, listener.embeddedEventLoop)
    }

    func testAWorkerAheadPausesAcceptingForAMomentOnly() throws {
        let (limiter, loop) = try limiter(slot: 0)
        XCTAssertEqual(slot(0), 0, "started() publishes the count")
        setSlot(1, 0)
        limiter.opened()
        XCTAssertTrue(limiter.accepting, "one ahead: keeps accepting")
        limiter.opened()
        XCTAssertEqual(slot(0), 2)
        XCTAssertFalse(limiter.accepting, "two ahead of worker 2: lets it accept")
        loop.advanceTime(by: AcceptBalance.pause - .microseconds(100))
        XCTAssertFalse(limiter.accepting)
        loop.advanceTime(by: .microseconds(100))
        XCTAssertTrue(limiter.accepting, "the pause is bounded: accepts again")
    }

    func testAClosedConnectionEndsThePauseWhenNoLongerAhead() throws {
        let (limiter, _) = try limiter(slot: 0)
        setSlot(1, 0)
        for _ in 0..<3 { limiter.opened() }
        XCTAssertFalse(limiter.accepting)
        limiter.closed()
        XCTAssertEqual(slot(0), 2)
        XCTAssertFalse(limiter.accepting, "one more would again be two ahead")
        setSlot(1, 1)  // worker 2 took a connection meanwhile
        limiter.closed()
        XCTAssertEqual(slot(0), 1)
        XCTAssertTrue(limiter.accepting, "one more leaves it only one ahead")
    }

    func testPausesAreCappedPerSecond() throws {
        let (limiter, loop) = try limiter(slot: 0)
        // Worker 2 claims no connections but never takes one (its loop is stuck).
        setSlot(1, 0)
        limiter.opened()
        var pauses = 0
        for _ in 0..<100 {
            limiter.opened()
            if !limiter.accepting { pauses += 1 }
            loop.advanceTime(by: AcceptBalance.pause)
            XCTAssertTrue(limiter.accepting)
        }
        XCTAssertEqual(pauses, ConnectionLimiter.maxYieldsPerSecond, "100 accepts within 0.2 s")
        loop.advanceTime(by: .seconds(1))
        limiter.opened()
        XCTAssertFalse(limiter.accepting, "a new second, a new allowance")
    }

    func testAStoppedWorkerWithdrawsAndStopsPublishing() throws {
        let (limiter, _) = try limiter(slot: 0)
        limiter.opened()
        limiter.stopped()
        XCTAssertEqual(slot(0), -1)
        limiter.closed()
        XCTAssertEqual(slot(0), -1, "a draining worker's closes are not published")
    }
}
