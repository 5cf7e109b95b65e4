import NIOCore
import NIOEmbedded
import XCTest

@testable import WaitressHTTP
@testable import WaitressServer

/// `HTTPServer.idleGraceOnDrain`: a worker rolled over under the supervisor
/// keeps its keep-alive connections for the grace, so a client's next request
/// is answered instead of meeting a closed socket (docs/deployment.md).
final class DrainGraceTests: XCTestCase {
    private func openIdle(_ harness: ConnectionHarness, port: Int) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(loop: harness.loop)
        try channel.pipeline.syncOperations.addHandler(
            ConnectionHandler(
                core: harness.core, listener: ListenerSpec(descriptor: -1, isUnix: false, serverName: "h", serverPort: "80")))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: port)).wait()
        return channel
    }

    func testKeepAliveConnectionsStayOpenUntilTheGraceEnds() throws {
        let busy = try ConnectionHarness()
        busy.core.idleGrace = 5
        try busy.send("GET / HTTP/1.1\r\n\r\n")
        let idle = try openIdle(busy, port: 40101)

        busy.core.beginDrain()
        XCTAssertTrue(idle.isActive, "idle, but within the grace")
        try busy.respond(busy.request(0), "kept")
        XCTAssertEqual(try busy.written(), "kept")
        XCTAssertTrue(busy.isOpen, "the response promised keep-alive: the next request is answered")
        XCTAssertFalse(busy.core.waitForConnections(seconds: 0))

        busy.loop.advanceTime(by: .seconds(5))
        XCTAssertFalse(idle.isActive)
        XCTAssertFalse(busy.isOpen)
        XCTAssertTrue(busy.core.waitForConnections(seconds: 0))
    }

    func testConnectionAcceptedDuringTheGraceIsServedThenClosed() throws {
        let harness = try ConnectionHarness()
        harness.core.idleGrace = 5
        harness.core.beginDrain()
        let late = try openIdle(harness, port: 40102)
        XCTAssertTrue(late.isActive)
        harness.loop.advanceTime(by: .seconds(5))
        XCTAssertFalse(late.isActive)
    }

    func testWithoutGraceIdleConnectionsCloseAtOnce() throws {
        let harness = try ConnectionHarness()
        let idle = try openIdle(harness, port: 40103)
        harness.core.beginDrain()
        XCTAssertFalse(idle.isActive)
        XCTAssertFalse(harness.isOpen)
    }
}
