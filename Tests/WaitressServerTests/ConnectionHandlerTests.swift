import NIOCore
import NIOEmbedded
import XCTest

@testable import WaitressHTTP
@testable import WaitressServer

/// ConnectionHandler on an EmbeddedChannel: dispatch one request at a time,
/// responses in order, 100-continue, error answers and the connection state
/// after them, limits crossed across many reads.
final class ConnectionHandlerTests: XCTestCase {
    private var harness: ConnectionHarness!

    override func setUpWithError() throws {
        harness = try ConnectionHarness()
    }

    override func tearDown() {
        harness?.close()
        harness = nil
    }

    private func use(_ configure: (inout ServerConfiguration) -> Void) throws {
        harness.close()
        harness = try ConnectionHarness(configure)
    }

    // MARK: dispatching and ordering

    func testRequestIsDispatchedWithItsHead() throws {
        try harness.send("GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\nX-Thing: a\r\n\r\n")
        XCTAssertEqual(harness.requests.count, 1)
        let request = try XCTUnwrap(harness.requests.first)
        XCTAssertEqual(request.method, "GET")
        XCTAssertEqual(request.target, "/path?q=1")
        XCTAssertEqual(request.head.field("HOST").map(latin1String), "example.com")
        XCTAssertEqual(request.head.field("X_THING").map(latin1String), "a")
        XCTAssertEqual(request.bodyLength, 0)
        XCTAssertEqual(request.bodyText, "")
        XCTAssertEqual(request.listener.serverPort, "8080")
        XCTAssertTrue(request.connection.isOpen)
        XCTAssertEqual(try harness.written(), "")

        harness.respond(request, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
        XCTAssertEqual(try harness.written(), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
        XCTAssertTrue(harness.isOpen)
    }

    func testRemoteAddressOfTheConnection() throws {
        harness.close()
        // As for an accepted socket: the peer is known before the handler is added.
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        channel.remoteAddress = try SocketAddress(ipAddress: "192.0.2.7", port: 51234)
        let core = ServerCore(configuration: ServerConfiguration(), dispatcher: RecordingDispatcher(), eventLoop: loop, logs: LogRelay())
        let handler = ConnectionHandler(
            core: core, listener: ListenerSpec(descriptor: -1, isUnix: false, serverName: "h", serverPort: "80"))
        try channel.pipeline.syncOperations.addHandler(handler)
        XCTAssertEqual(handler.responseChannel.remoteHost, "192.0.2.7")
        XCTAssertEqual(handler.responseChannel.remotePort, "51234")
        _ = try channel.finish(acceptAlreadyClosed: true)

        // On a Unix socket Waitress says "localhost" and "None".
        let unixChannel = EmbeddedChannel(loop: loop)
        unixChannel.remoteAddress = try SocketAddress(ipAddress: "192.0.2.7", port: 51234)
        let unixHandler = ConnectionHandler(
            core: core, listener: ListenerSpec(descriptor: -1, isUnix: true, serverName: "h", serverPort: ""))
        try unixChannel.pipeline.syncOperations.addHandler(unixHandler)
        XCTAssertEqual(unixHandler.responseChannel.remoteHost, "localhost")
        XCTAssertEqual(unixHandler.responseChannel.remotePort, "None")
        _ = try unixChannel.finish(acceptAlreadyClosed: true)
    }

    /// REMOTE_ADDR comes from the host NIO formatted when it cached an accepted
    /// socket's peer (a `SocketAddress` made from the raw sockaddr); the same
    /// text `ipAddress` gives, for IPv4, IPv6 and an IPv4-mapped IPv6 address.
    /// An address built from a string (host unknown) falls back to `ipAddress`.
    func testNumericHostOfAnAcceptedPeerIsItsIPAddress() throws {
        for text in ["192.0.2.7", "127.0.0.1", "2001:db8::1", "::ffff:192.0.2.7", "::1"] {
            let parsed = try SocketAddress(ipAddress: text, port: 4242)
            let accepted: SocketAddress
            switch parsed {
            case .v4(let a): accepted = SocketAddress(a.address)
            case .v6(let a): accepted = SocketAddress(a.address)
            default: XCTFail("not an IP address: \(text)"); continue
            }
            XCTAssertEqual(ConnectionHandler.numericHost(accepted), parsed.ipAddress, text)
            XCTAssertEqual(ConnectionHandler.numericHost(parsed), parsed.ipAddress, text)
        }
    }

    func testPipelinedRequestsAreAnsweredInOrderOneAtATime() throws {
        try harness.send("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n")
        XCTAssertEqual(harness.requests.map(\.target), ["/a"], "only one request in service at a time")

        try harness.respond(harness.request(0), "A")
        XCTAssertEqual(try harness.written(), "A")
        XCTAssertEqual(harness.requests.map(\.target), ["/a", "/b"])

        try harness.respond(harness.request(1), "B")
        XCTAssertEqual(try harness.written(), "B")
        XCTAssertEqual(harness.requests.map(\.target), ["/a", "/b", "/c"])

        try harness.respond(harness.request(2), "C")
        XCTAssertEqual(try harness.written(), "C")
        XCTAssertEqual(harness.requests.count, 3)
        XCTAssertTrue(harness.isOpen)
    }

    func testRequestsArrivingDuringServiceWait() throws {
        try harness.send("GET /a HTTP/1.1\r\n\r\n")
        try harness.send("GET /b HTTP/1.1\r\n\r\nGET /c HT")
        try harness.send("TP/1.1\r\n\r\n")
        XCTAssertEqual(harness.requests.map(\.target), ["/a"])
        try harness.respond(harness.request(0), "A")
        XCTAssertEqual(harness.requests.map(\.target), ["/a", "/b"])
        try harness.respond(harness.request(1), "B")
        try harness.respond(harness.request(2), "C")
        XCTAssertEqual(try harness.written(), "ABC")
    }

    func testPipelinedRequestsWithBodies() throws {
        try harness.send(
            "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                + "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n1\r\nf\r\n0\r\n\r\n"
                + "\r\nGET /c HTTP/1.1\r\n\r\n")
        XCTAssertEqual(harness.requests.map(\.bodyText), ["abc"])
        try harness.respond(harness.request(0), "A")
        XCTAssertEqual(harness.requests.map(\.target), ["/a", "/b"])
        XCTAssertEqual(try harness.request(1).bodyText, "def")
        XCTAssertEqual(try harness.request(1).bodyLength, 3)
        XCTAssertTrue(try harness.request(1).head.isChunked)
        try harness.respond(harness.request(1), "B")
        // The blank line between requests is ignored (RFC 9112 §2.2).
        XCTAssertEqual(harness.requests.map(\.target), ["/a", "/b", "/c"])
        try harness.respond(harness.request(2), "C")
        XCTAssertEqual(try harness.written(), "ABC")
    }

    func testRequestSplitAtEveryByte() throws {
        let text = "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nwiki\r\n5\r\npedia\r\n0\r\nT: v\r\n\r\n"
        try harness.sendByteByByte(text)
        XCTAssertEqual(harness.requests.count, 1)
        XCTAssertEqual(harness.requests.first?.bodyText, "wikipedia")
        XCTAssertEqual(harness.requests.first?.bodyLength, 9)
        try harness.respond(harness.request(0), "ok")
        // And again on the same connection.
        try harness.sendByteByByte("GET /next HTTP/1.1\r\n\r\n")
        XCTAssertEqual(harness.requests.map(\.target), ["/up", "/next"])
        XCTAssertEqual(try harness.written(), "ok")
    }

    func testLargeBodySpillsToAFile() throws {
        try use { $0.inbufOverflow = 100 }
        let body = String(repeating: "0123456789", count: 100)
        try harness.send("POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n")
        for i in stride(from: 0, to: 1000, by: 64) {
            let end = min(1000, i + 64)
            try harness.send(Array(latin1(body)[i..<end]))
        }
        let request = try XCTUnwrap(harness.requests.first)
        guard case .file = request.body else { return XCTFail("expected a spilled body") }
        XCTAssertEqual(request.bodyLength, 1000)
        XCTAssertEqual(request.bodyText, body)
    }

    func testStreamedResponseParts() throws {
        try harness.send("GET / HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n")
        let request = try harness.request(0)
        let allocator = harness.channel.allocator
        request.connection.send(.data(allocator.buffer(string: "head|")))
        request.connection.send(.data(allocator.buffer(string: "part1|")))
        harness.loop.run()
        XCTAssertEqual(try harness.written(), "head|part1|")
        XCTAssertEqual(harness.requests.count, 1, "the response is not finished")
        request.connection.send(.data(allocator.buffer(string: "part2|")))
        request.connection.send(.end(nil, close: false))
        harness.loop.run()
        XCTAssertEqual(try harness.written(), "part2|")
        XCTAssertEqual(harness.requests.count, 2)
    }

    func testPendingOutputIsAccountedForBackpressure() throws {
        try use { $0.outbufHighWatermark = 10 }
        try harness.send("GET / HTTP/1.1\r\n\r\n")
        let connection = try harness.request(0).connection
        XCTAssertTrue(connection.waitForRoomWithoutBlocking())
        connection.send(.data(harness.channel.allocator.buffer(string: String(repeating: "x", count: 100))))
        XCTAssertFalse(connection.waitForRoomWithoutBlocking(), "100 bytes pending over a watermark of 10")
        harness.loop.run()
        // Written and flushed: nothing pending any more.
        XCTAssertTrue(connection.waitForRoomWithoutBlocking())
        XCTAssertTrue(connection.waitForRoom())
        XCTAssertEqual(try harness.written().count, 100)
    }

    func testResponseAskingToCloseClosesAndDropsWhatFollows() throws {
        try harness.send("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
        try harness.respond(harness.request(0), "A", close: true)
        XCTAssertEqual(try harness.written(), "A")
        XCTAssertFalse(harness.isOpen)
        XCTAssertEqual(harness.requests.count, 1)
    }

    func testCloseWithEmptyLastPart() throws {
        try harness.send("GET /a HTTP/1.1\r\n\r\n")
        let request = try harness.request(0)
        request.connection.send(.data(harness.channel.allocator.buffer(string: "all of it")))
        request.connection.send(.end(nil, close: true))
        harness.loop.run()
        XCTAssertEqual(try harness.written(), "all of it")
        XCTAssertFalse(harness.isOpen)
        XCTAssertFalse(request.connection.isOpen)
    }

    /// The last autoRead setting the handler made, if any.
    private var autoRead: Bool? {
        harness.channel.options.last { $0.option is ChannelOptions.Types.AutoReadOption }?.value as? Bool
    }

    func testReadingPausesWhileMuchIsBufferedBehindARequestInService() throws {
        try harness.send("GET /a HTTP/1.1\r\n\r\n")
        XCTAssertNotEqual(autoRead, false)
        let limit = harness.core.readAheadLimit
        try harness.send("POST /b HTTP/1.1\r\nContent-Length: \(limit)\r\n\r\n")
        XCTAssertNotEqual(autoRead, false, "a little read-ahead is fine")
        try harness.send(String(repeating: "z", count: limit))
        XCTAssertEqual(autoRead, false, "reading pauses past the read-ahead limit")
        try harness.respond(harness.request(0), "A")
        XCTAssertEqual(harness.requests.count, 2)
        XCTAssertEqual(try harness.request(1).bodyLength, limit)
        try harness.respond(harness.request(1), "B")
        XCTAssertEqual(autoRead, true, "reading resumes once the buffered requests are served")
        try harness.send("GET /c HTTP/1.1\r\n\r\n")
        XCTAssertEqual(harness.requests.map(\.target), ["/a", "/b", "/c"])
        XCTAssertEqual(try harness.written(), "AB")
    }

    func testDispatcherThatAnswersAtOnce() throws {
        // A worker may finish before the event loop gets back to the outbox:
        // answers posted while the outbox is being drained still go out, in order.
        harness.close()
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        let dispatcher = AnsweringDispatcher()
        let core = ServerCore(configuration: ServerConfiguration(), dispatcher: dispatcher, eventLoop: loop, logs: LogRelay())
        try channel.pipeline.syncOperations.addHandler(
            ConnectionHandler(
                core: core, listener: ListenerSpec(descriptor: -1, isUnix: false, serverName: "h", serverPort: "80")))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40005)).wait()
        try channel.writeInbound(
            channel.allocator.buffer(string: "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n"))
        loop.run()
        XCTAssertEqual(try writtenText(channel), "[/1][/2][/3]")
        XCTAssertEqual(dispatcher.targets, ["/1", "/2", "/3"])
        XCTAssertTrue(channel.isActive)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    func testNextRequestWaitsForWritability() throws {
        try harness.send("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
        harness.channel.isWritable = false
        try harness.respond(harness.request(0), "A")
        XCTAssertEqual(harness.requests.count, 1, "not started while the client is not reading")
        harness.channel.isWritable = true
        harness.channel.pipeline.fireChannelWritabilityChanged()
        XCTAssertEqual(harness.requests.map(\.target), ["/a", "/b"])
        XCTAssertEqual(try harness.written(), "A")
    }

    // MARK: 100-continue

    func testContinueIsWrittenBeforeTheBodyIsSent() throws {
        try harness.send("POST /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        XCTAssertEqual(try harness.written(), "HTTP/1.1 100 Continue\r\n\r\n")
        XCTAssertTrue(harness.requests.isEmpty, "the request is dispatched only with its whole body")
        try harness.send("hel")
        try harness.send("lo")
        XCTAssertEqual(harness.requests.first?.bodyText, "hello")
        // The continue is sent once only.
        XCTAssertEqual(try harness.written(), "")
        try harness.respond(harness.request(0), "done")
        XCTAssertEqual(try harness.written(), "done")
    }

    func testContinueForChunkedBody() throws {
        try harness.send("POST /u HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n")
        XCTAssertEqual(try harness.written(), "HTTP/1.1 100 Continue\r\n\r\n")
        try harness.send("3\r\nabc\r\n0\r\n\r\n")
        XCTAssertEqual(harness.requests.first?.bodyText, "abc")
    }

    func testContinueAlsoWhenTheBodyIsAlreadyHere() throws {
        // As Waitress: the client asked, so it gets the interim response first.
        try harness.send("POST /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello")
        XCTAssertEqual(harness.requests.first?.bodyText, "hello")
        XCTAssertEqual(try harness.written(), "HTTP/1.1 100 Continue\r\n\r\n")
        try harness.respond(harness.request(0), "done")
        XCTAssertEqual(try harness.written(), "done")
    }

    func testNoContinueWithoutABody() throws {
        try harness.send("GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n")
        XCTAssertEqual(harness.requests.count, 1)
        XCTAssertEqual(try harness.written(), "")
    }

    func testNoContinueForHTTP10() throws {
        try harness.send("POST /u HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        XCTAssertEqual(try harness.written(), "")
        try harness.send("ok")
        XCTAssertEqual(harness.requests.first?.bodyText, "ok")
    }

    func testNoContinueForABodyKnownTooLarge() throws {
        try use { $0.maxRequestBodySize = 10 }
        try harness.send("POST /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n")
        XCTAssertEqual(
            withoutDates(try harness.written()), errorResponse(.entityTooLarge(limit: 10), version: "1.1"))
        XCTAssertFalse(harness.isOpen)
        XCTAssertTrue(harness.requests.isEmpty)
    }

    func testContinueForAPipelinedRequestFollowsThePreviousResponse() throws {
        try harness.send("GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
        XCTAssertEqual(try harness.written(), "")
        try harness.respond(harness.request(0), "A")
        XCTAssertEqual(try harness.written(), "AHTTP/1.1 100 Continue\r\n\r\n")
        try harness.send("x")
        XCTAssertEqual(harness.requests.map(\.bodyText), ["", "x"])
    }

    // MARK: errors: answered, then the connection closes

    func testMalformedRequestGetsWaitressErrorThenCloses() throws {
        try harness.send("GET / HTTP/1.1\r\nBad Header\r\n\r\n")
        XCTAssertEqual(withoutDates(try harness.written()), errorResponse(.badRequest("Invalid header"), version: "1.1"))
        XCTAssertFalse(harness.isOpen)
        XCTAssertTrue(harness.requests.isEmpty)
    }

    func testErrorResponseExactBytes() throws {
        try harness.send("get / HTTP/1.1\r\n\r\n")
        let body = "Bad Request\r\n\r\nMalformed HTTP method \"get\"\r\n\r\n(generated by waitress)"
        XCTAssertEqual(
            withoutDates(try harness.written()),
            "HTTP/1.0 400 Bad Request\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n"
                + "Content-Type: text/plain; charset=utf-8\r\nDate: <date>\r\nServer: waitress\r\n\r\n" + body)
        XCTAssertFalse(harness.isOpen)
    }

    func testErrorPageUsesTheIdent() throws {
        try use { $0.ident = nil }
        try harness.send("GET / HTTP/2.0\r\n\r\n")
        let written = withoutDates(try harness.written())
        XCTAssertTrue(written.hasPrefix("HTTP/1.1 505 HTTP Version Not Supported\r\n"), written)
        XCTAssertTrue(written.hasSuffix("\r\n\r\nHTTP/2.0 is not supported\r\n\r\n(generated by server)"), written)
        XCTAssertFalse(written.contains("Server:"), written)
    }

    func testErrorsForEachKind() throws {
        let cases: [(String, RequestError, String)] = [
            ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
             .notImplemented("Transfer-Encoding requested is not supported."), "1.1"),
            ("POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
             .badRequest("Content-Length and Transfer-Encoding together are not allowed"), "1.1"),
            ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
             .badRequest("Transfer-Encoding is not allowed in HTTP/1.0 requests"), "1.0"),
            ("GET / HTTP/1.1\nHost: h\n\n", .badRequest("Bare CR or LF found in HTTP message"), "1.0"),
            ("GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", .badRequest("Bare CR or LF found in HTTP message"), "1.0"),
            ("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", .badRequest("Content-Length is invalid"), "1.1"),
        ]
        for (input, error, version) in cases {
            try use { _ in }
            try harness.send(input)
            XCTAssertEqual(withoutDates(try harness.written()), errorResponse(error, version: version), input.debugDescription)
            XCTAssertFalse(harness.isOpen, input.debugDescription)
            XCTAssertTrue(harness.requests.isEmpty, input.debugDescription)
        }
    }

    func testBareLFIsAnsweredWithoutWaitingForMore() throws {
        // Waitress waits for CRLFCRLF forever here; the answer must come at once.
        try harness.send("GET / HTTP/1.1\n")
        XCTAssertEqual(
            withoutDates(try harness.written()), errorResponse(.badRequest("Bare CR or LF found in HTTP message"), version: "1.0"))
        XCTAssertFalse(harness.isOpen)
    }

    func testMalformedPipelinedRequestIsAnsweredAfterThePreviousResponse() throws {
        try harness.send("GET /a HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nX y: z\r\n\r\nGET /never HTTP/1.1\r\n\r\n")
        XCTAssertEqual(harness.requests.map(\.target), ["/a"])
        XCTAssertEqual(try harness.written(), "", "no error before the earlier response")
        try harness.respond(harness.request(0), "A")
        XCTAssertEqual(withoutDates(try harness.written()), "A" + errorResponse(.badRequest("Invalid header"), version: "1.1"))
        XCTAssertFalse(harness.isOpen)
        XCTAssertEqual(harness.requests.count, 1, "nothing after a malformed request is served")
    }

    func testErrorCloseLingersThenDropsWhatTheClientStillSends() throws {
        // A real socket stays readable after shutting its output down.
        harness.closes.holdOutputClose = true
        try harness.send("GET / HTTP/1.1\r\nBad Header\r\n\r\n")
        XCTAssertEqual(withoutDates(try harness.written()), errorResponse(.badRequest("Invalid header"), version: "1.1"))
        XCTAssertEqual(harness.closes.modes, [.output], "our side is shut for writing once the page is flushed")
        XCTAssertTrue(harness.isOpen)
        // What follows is read and dropped: never parsed, never answered.
        try harness.send("GET /after HTTP/1.1\r\n\r\n")
        try harness.send("more garbage\n\n")
        XCTAssertTrue(harness.requests.isEmpty)
        XCTAssertEqual(try harness.written(), "")
        // The client closing its side ends it.
        harness.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        XCTAssertFalse(harness.isOpen)
    }

    func testErrorCloseIsBoundedInTime() throws {
        harness.closes.holdOutputClose = true
        try harness.send("GET / HTTP/1.1\r\nBad Header\r\n\r\n")
        XCTAssertTrue(harness.isOpen)
        harness.loop.advanceTime(by: .milliseconds(ConnectionHandler.lingerSeconds * 1000 - 1))
        XCTAssertTrue(harness.isOpen)
        harness.loop.advanceTime(by: .milliseconds(1))
        XCTAssertFalse(harness.isOpen, "a client that never closes is cut off after the linger time")
        XCTAssertEqual(harness.closes.modes, [.output, .all])
    }

    func testHeaderTooLargeSplitOverManyWrites() throws {
        try use { $0.maxRequestHeaderSize = 100 }
        // The head never ends; bytes trickle in one per read.
        try harness.sendByteByByte("GET / HTTP/1.1\r\nX-Long: " + String(repeating: "a", count: 300))
        XCTAssertEqual(
            withoutDates(try harness.written()), errorResponse(.headerFieldsTooLarge(limit: 100), version: "1.0"))
        XCTAssertFalse(harness.isOpen)
        XCTAssertTrue(harness.requests.isEmpty)
    }

    func testHeaderTooLargeInSeveralLines() throws {
        try use { $0.maxRequestHeaderSize = 100 }
        for i in 0..<20 {
            guard harness.isOpen else { break }
            try harness.send(i == 0 ? "GET / HTTP/1.1\r\n" : "X-\(i): value\r\n")
        }
        XCTAssertEqual(
            withoutDates(try harness.written()), errorResponse(.headerFieldsTooLarge(limit: 100), version: "1.0"))
        XCTAssertFalse(harness.isOpen)
    }

    func testHeadJustUnderTheLimitIsServed() throws {
        try use { $0.maxRequestHeaderSize = 100 }
        let head = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 99 - 19 - 4) + "\r\n\r\n"
        XCTAssertEqual(head.utf8.count, 99)
        try harness.sendByteByByte(head)
        XCTAssertEqual(harness.requests.count, 1)
        XCTAssertTrue(harness.isOpen)
    }

    func testChunkedBodyOverTheLimitIs413() throws {
        try use { $0.maxRequestBodySize = 10 }
        try harness.send("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        try harness.send("5\r\n01234\r\n")
        XCTAssertTrue(harness.isOpen)
        try harness.send("5\r\n56789\r\n0\r\n\r\n")
        XCTAssertEqual(withoutDates(try harness.written()), errorResponse(.entityTooLarge(limit: 10), version: "1.1"))
        XCTAssertFalse(harness.isOpen)
        XCTAssertTrue(harness.requests.isEmpty)
    }

    func testMalformedChunkedBodyIs400() throws {
        try harness.send("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX")
        XCTAssertEqual(
            withoutDates(try harness.written()), errorResponse(.badRequest("Chunk not properly terminated"), version: "1.1"))
        XCTAssertFalse(harness.isOpen)
        XCTAssertTrue(harness.requests.isEmpty)
    }

    func testContentLengthAtTheLimitIs413() throws {
        try use { $0.maxRequestBodySize = 1000 }
        try harness.send("POST / HTTP/1.0\r\nContent-Length: 1000\r\n\r\n")
        XCTAssertEqual(withoutDates(try harness.written()), errorResponse(.entityTooLarge(limit: 1000), version: "1.0"))
        XCTAssertFalse(harness.isOpen)
    }

    func testNextConnectionIsServedAfterAnError() throws {
        try harness.send("GET / HTTP/1.1\r\nBad Header\r\n\r\n")
        XCTAssertFalse(harness.isOpen)
        // A new connection on the same core works as usual.
        let core = harness.core
        let channel = EmbeddedChannel(loop: harness.loop)
        try channel.pipeline.syncOperations.addHandler(
            ConnectionHandler(
                core: core, listener: ListenerSpec(descriptor: -1, isUnix: false, serverName: "h", serverPort: "80")))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40001)).wait()
        try channel.writeInbound(channel.allocator.buffer(string: "GET /ok HTTP/1.1\r\n\r\n"))
        XCTAssertEqual(harness.requests.map(\.target), ["/ok"])
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    // MARK: connection lifecycle

    func testClientGoneWhileInService() throws {
        try harness.send("GET / HTTP/1.1\r\n\r\n")
        let request = try harness.request(0)
        XCTAssertTrue(request.connection.isOpen)
        harness.channel.close(promise: nil)
        XCTAssertFalse(request.connection.isOpen)
        // A late response from the worker is dropped without harm.
        request.connection.send(.data(harness.channel.allocator.buffer(string: "late")))
        harness.respond(request, "late end")
        XCTAssertEqual(try harness.written(), "")
        XCTAssertTrue(request.connection.waitForRoomWithoutBlocking() == false)
    }

    func testHalfCloseWhileIdleCloses() throws {
        harness.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        XCTAssertFalse(harness.isOpen)
    }

    func testHalfCloseWhileInServiceClosesAfterTheResponse() throws {
        try harness.send("GET / HTTP/1.1\r\n\r\n")
        let connection = try harness.request(0).connection
        XCTAssertFalse(connection.clientDisconnected)
        harness.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        XCTAssertTrue(harness.isOpen, "the response must still go out")
        // waitress.client_disconnected turns true for the app.
        XCTAssertTrue(connection.clientDisconnected)
        XCTAssertTrue(connection.isOpen)
        try harness.respond(harness.request(0), "bye")
        XCTAssertEqual(try harness.written(), "bye")
        XCTAssertFalse(harness.isOpen)
    }

    func testHalfCloseServesTheCompleteRequestsAlreadyBuffered() throws {
        try harness.send("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
        harness.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        try harness.respond(harness.request(0), "A")
        XCTAssertEqual(harness.requests.map(\.target), ["/a", "/b"])
        try harness.respond(harness.request(1), "B")
        XCTAssertEqual(try harness.written(), "AB")
        XCTAssertFalse(harness.isOpen)
    }

    func testDrainClosesIdleConnectionsNowAndBusyOnesAfterTheirResponse() throws {
        let busy = harness!
        try busy.send("GET / HTTP/1.1\r\n\r\n")
        let idleChannel = EmbeddedChannel(loop: busy.loop)
        try idleChannel.pipeline.syncOperations.addHandler(
            ConnectionHandler(
                core: busy.core, listener: ListenerSpec(descriptor: -1, isUnix: false, serverName: "h", serverPort: "80")))
        try idleChannel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40002)).wait()

        busy.core.beginDrain()
        XCTAssertFalse(idleChannel.isActive)
        XCTAssertTrue(busy.isOpen)
        XCTAssertFalse(busy.core.waitForConnections(seconds: 0))
        try busy.respond(busy.request(0), "last")
        XCTAssertEqual(try busy.written(), "last")
        XCTAssertFalse(busy.isOpen)
        XCTAssertTrue(busy.core.waitForConnections(seconds: 0))
    }

    func testSweepClosesOnlyIdleConnections() throws {
        try use { $0.channelTimeout = -1 }  // every idle connection is past its timeout
        let busy = harness!
        try busy.send("GET / HTTP/1.1\r\n\r\n")
        let idleChannel = EmbeddedChannel(loop: busy.loop)
        try idleChannel.pipeline.syncOperations.addHandler(
            ConnectionHandler(
                core: busy.core, listener: ListenerSpec(descriptor: -1, isUnix: false, serverName: "h", serverPort: "80")))
        try idleChannel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40003)).wait()

        busy.core.sweep()
        XCTAssertFalse(idleChannel.isActive)
        XCTAssertTrue(busy.isOpen)
    }

    func testSweepKeepsRecentConnections() throws {
        try use { $0.channelTimeout = 3600 }
        harness.core.sweep()
        XCTAssertTrue(harness.isOpen)
    }

    func testConnectionArrivingDuringDrainIsClosed() throws {
        harness.core.beginDrain()
        let channel = EmbeddedChannel(loop: harness.loop)
        try channel.pipeline.syncOperations.addHandler(
            ConnectionHandler(
                core: harness.core, listener: ListenerSpec(descriptor: -1, isUnix: false, serverName: "h", serverPort: "80")))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40004)).wait()
        XCTAssertFalse(channel.isActive)
    }

    func testErrorCaughtClosesTheConnectionAndIsLogged() throws {
        struct Reset: Error {}
        harness.channel.pipeline.fireErrorCaught(Reset())
        XCTAssertFalse(harness.isOpen)
        let records = harness.core.logs.drain()
        XCTAssertEqual(records.count, 1)
        XCTAssertEqual(records.first?.level, .error)
        XCTAssertTrue(records.first?.message.hasPrefix("Socket error") == true, "\(records)")
    }

    func testSocketErrorsAreNotLoggedWhenDisabled() throws {
        try use { $0.logSocketErrors = false }
        struct Reset: Error {}
        harness.channel.pipeline.fireErrorCaught(Reset())
        XCTAssertFalse(harness.isOpen)
        XCTAssertTrue(harness.core.logs.drain().isEmpty)
    }

    func testBytesAfterAResponseThatClosedAreIgnored() throws {
        try harness.send("GET / HTTP/1.1\r\n\r\n")
        try harness.respond(harness.request(0), "x", close: true)
        XCTAssertFalse(harness.isOpen)
        XCTAssertEqual(harness.requests.count, 1)
    }
}
