import XCTest

@testable import WaitressServer

final class LogRelayTests: XCTestCase {
    func testRecordsComeOutInOrderOnce() {
        let relay = LogRelay()
        relay.post(.info, "a")
        relay.post(.warning, "b", logger: .queue)
        let records = relay.drain()
        XCTAssertEqual(records.map(\.message), ["a", "b"])
        XCTAssertEqual(records.map(\.logger), [.main, .queue])
        XCTAssertTrue(relay.drain().isEmpty)
    }

    func testAStormIsBoundedAndCounted() {
        let relay = LogRelay()
        for i in 0..<1005 { relay.post(.error, "Socket error \(i)") }
        let records = relay.drain()
        XCTAssertEqual(records.count, 1001)
        XCTAssertEqual(records.last?.message, "5 log records were dropped")
        XCTAssertEqual(records.last?.level, .warning)
        // After a drain the relay takes records again.
        relay.post(.info, "next")
        XCTAssertEqual(relay.drain().map(\.message), ["next"])
    }
}
