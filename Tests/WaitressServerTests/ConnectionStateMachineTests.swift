import NIOCore
import XCTest

@testable import WaitressHTTP
@testable import WaitressServer

/// The connection's rules driven event by event, with no channel and no
/// clock: each test feeds reads, response ends, half-closes, timers and the
/// drain, and checks the actions and the state after each. The channel-level
/// counterparts are in ConnectionHandlerTests and tests/functional.
final class ConnectionStateMachineTests: XCTestCase {
    private let allocator = ByteBufferAllocator()

    private func makeMachine(
        maxHeaderSize: Int = 8192, maxBodySize: Int = 1 << 20, readAheadLimit: Int = 65536, now: Double = 0
    ) -> ConnectionStateMachine {
        ConnectionStateMachine(
            limits: .init(
                maxHeaderSize: maxHeaderSize, maxBodySize: maxBodySize, inbufOverflow: 1 << 20,
                readAheadLimit: readAheadLimit),
            now: now)
    }

    /// Delivers one read at `now` and carries out what follows as the handler
    /// does: parsing when no request is in service (again after a 100
    /// Continue), then the read-ahead check. Returns the actions as text.
    @discardableResult
    private func read(_ machine: inout ConnectionStateMachine, _ text: String, at now: Double = 1) -> [String] {
        var bytes = allocator.buffer(bytes: latin1(text))
        var actions: [String] = []
        switch machine.bytesRead(&bytes, at: now) {
        case .drop: return ["drop"]
        case .keep: actions.append("keep")
        case .process: actions += process(&machine, at: now)
        }
        if machine.readAheadExceeded() { actions.append("pause") }
        return actions
    }

    /// `process` until it returns something other than `.sendContinue`.
    private func process(_ machine: inout ConnectionStateMachine, at now: Double = 1) -> [String] {
        var actions: [String] = []
        while true {
            let action = machine.process(at: now)
            actions.append(describe(action))
            if case .sendContinue = action { continue }
            return actions
        }
    }

    private func describe(_ action: ConnectionStateMachine.ProcessAction) -> String {
        switch action {
        case .wait: return "wait"
        case .resumeReading: return "resume"
        case .sendContinue: return "continue"
        case .closeAfterFlush: return "close after flush"
        case .dispatch(let head, let body):
            var text = latin1String(head.bytes(head.method)) + " " + latin1String(head.bytes(head.target))
            if let body = body, case .memory(let bytes) = body.take() { text += " [" + latin1String(bytes) + "]" }
            return text
        case .answerError(let answer):
            return describe(answer)
        }
    }

    private func describe(_ answer: ConnectionStateMachine.ErrorAnswer) -> String {
        "\(answer.error.statusCode) HTTP/\(answer.version == .http11 ? "1.1" : "1.0")"
            + (answer.resumeReading ? " resume" : "")
    }

    /// The state's name, for comparisons.
    private func phase(_ machine: ConnectionStateMachine) -> String {
        switch machine.state {
        case .readingHead: return "readingHead"
        case .readingBody: return "readingBody"
        case .inService: return "inService"
        case .lingering: return "lingering"
        case .draining: return "draining"
        case .closed: return "closed"
        }
    }

    private func endResponse(
        _ machine: inout ConnectionStateMachine, close: Bool = false, draining: Bool = false, at now: Double = 2
    ) -> String {
        switch machine.responseEnded(close: close, serverDraining: draining, at: now) {
        case .closeAfterFlush: return "close after flush"
        case .keepOpen: return "keep open"
        }
    }

    // MARK: reading a head

    func testCompleteHeadWithoutBodyIsDispatched() {
        var machine = makeMachine()
        XCTAssertEqual(phase(machine), "readingHead")
        XCTAssertEqual(read(&machine, "GET /a HTTP/1.1\r\n\r\n"), ["GET /a"])
        XCTAssertEqual(phase(machine), "inService")
        XCTAssertNil(machine.buffered)
        XCTAssertNil(machine.headStarted)
    }

    func testPartialHeadWaitsAndStartsTheHeadTimer() {
        var machine = makeMachine()
        XCTAssertEqual(read(&machine, "GET /a HT", at: 5), ["wait"])
        XCTAssertEqual(phase(machine), "readingHead")
        XCTAssertEqual(machine.headStarted, 5)
        XCTAssertEqual(read(&machine, "TP/1.1\r\n", at: 6), ["wait"])
        XCTAssertEqual(machine.headStarted, 5, "the timer runs from the head's first bytes")
        XCTAssertEqual(read(&machine, "\r\n", at: 7), ["GET /a"])
        XCTAssertNil(machine.headStarted)
    }

    func testBlankLinesBetweenRequestsStartNoHeadTimer() {
        var machine = makeMachine()
        XCTAssertEqual(read(&machine, "\r\n\r\n", at: 5), ["wait"])
        XCTAssertNil(machine.headStarted)
        XCTAssertEqual(read(&machine, "GET /a HTTP/1.1\r\n\r\n", at: 6), ["GET /a"])
    }

    func testRequestSplitAtEveryByteIsDispatchedOnce() {
        let text = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        let bytes = latin1(text)
        for split in 1..<bytes.count {
            var machine = makeMachine()
            let first = read(&machine, latin1String(bytes[..<split]))
            XCTAssertEqual(first, ["wait"], "split at \(split)")
            XCTAssertEqual(read(&machine, latin1String(bytes[split...])), ["GET /a"], "split at \(split)")
        }
    }

    // MARK: pipelining and read-ahead

    func testPipelinedRequestsAreDispatchedOneAtATime() {
        var machine = makeMachine()
        XCTAssertEqual(read(&machine, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n"), ["GET /a"])
        XCTAssertEqual(machine.buffered?.readableBytes, 38, "the later requests are kept")
        XCTAssertEqual(process(&machine), ["wait"], "nothing is parsed while a request is in service")
        XCTAssertEqual(endResponse(&machine), "keep open")
        XCTAssertEqual(phase(machine), "readingHead")
        XCTAssertEqual(process(&machine), ["GET /b"])
        XCTAssertEqual(endResponse(&machine), "keep open")
        XCTAssertEqual(process(&machine), ["GET /c"])
        XCTAssertEqual(endResponse(&machine), "keep open")
        XCTAssertEqual(process(&machine), ["wait"])
        XCTAssertNil(machine.buffered)
        XCTAssertEqual(phase(machine), "readingHead")
    }

    func testBytesArrivingDuringServiceAreKeptForLater() {
        var machine = makeMachine()
        read(&machine, "GET /a HTTP/1.1\r\n\r\n")
        XCTAssertEqual(read(&machine, "GET /b HTTP/1.1\r\n"), ["keep"])
        XCTAssertEqual(read(&machine, "\r\n"), ["keep"])
        XCTAssertEqual(phase(machine), "inService")
        XCTAssertEqual(endResponse(&machine), "keep open")
        XCTAssertEqual(process(&machine), ["GET /b"])
    }

    func testReadingPausesPastTheReadAheadLimitAndResumesWhenTheBufferIsServed() {
        var machine = makeMachine(readAheadLimit: 100)
        read(&machine, "GET /a HTTP/1.1\r\n\r\n")
        XCTAssertEqual(read(&machine, "POST /b HTTP/1.1\r\nContent-Length: 60\r\n\r\n"), ["keep"])
        XCTAssertFalse(machine.readingPaused, "a little read-ahead is fine")
        XCTAssertEqual(read(&machine, String(repeating: "z", count: 60)), ["keep", "pause"])
        XCTAssertTrue(machine.readingPaused)
        XCTAssertEqual(read(&machine, "x"), ["keep"], "paused once only")
        XCTAssertEqual(endResponse(&machine), "keep open")
        XCTAssertEqual(process(&machine), ["POST /b [" + String(repeating: "z", count: 60) + "]"])
        XCTAssertTrue(machine.readingPaused, "still paused: one byte of the next request is buffered")
        XCTAssertEqual(endResponse(&machine), "keep open")
        XCTAssertEqual(process(&machine), ["resume"], "more is needed: reading resumes")
        XCTAssertFalse(machine.readingPaused)
        XCTAssertEqual(process(&machine), ["wait"], "resumed once only")
    }

    func testNoPauseWhileNoRequestIsInService() {
        var machine = makeMachine(readAheadLimit: 10)
        XCTAssertEqual(read(&machine, "GET /a HTTP/1.1\r\nX-Long: " + String(repeating: "a", count: 50)), ["wait"])
        XCTAssertFalse(machine.readingPaused)
    }

    // MARK: bodies and 100-continue

    func testBodyIsReceivedBeforeDispatch() {
        var machine = makeMachine()
        XCTAssertEqual(read(&machine, "POST /u HTTP/1.1\r\nContent-Length: 5\r\n\r\nhe"), ["wait"])
        XCTAssertEqual(phase(machine), "readingBody")
        XCTAssertNil(machine.buffered, "body bytes are consumed into the body buffer")
        XCTAssertEqual(read(&machine, "l"), ["wait"])
        XCTAssertEqual(read(&machine, "loGET /n"), ["POST /u [hello]"])
        XCTAssertEqual(machine.buffered?.readableBytes, 6, "what follows the body is kept")
    }

    func testChunkedBodyIsDechunked() {
        var machine = makeMachine()
        XCTAssertEqual(read(&machine, "POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"), ["wait"])
        XCTAssertEqual(read(&machine, "0\r\n\r\n"), ["POST /u [abc]"])
    }

    func testContinueBeforeTheBody() {
        var machine = makeMachine()
        XCTAssertEqual(
            read(&machine, "POST /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"), ["continue", "wait"])
        XCTAssertEqual(phase(machine), "readingBody")
        XCTAssertEqual(read(&machine, "ok"), ["POST /u [ok]"], "the continue is sent once only")
    }

    func testContinueAlsoWhenTheBodyCameWithTheHead() {
        var machine = makeMachine()
        XCTAssertEqual(
            read(&machine, "POST /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok"),
            ["continue", "POST /u [ok]"])
    }

    func testNoContinueForHTTP10OrWithoutABody() {
        var machine = makeMachine()
        XCTAssertEqual(read(&machine, "POST /u HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"), ["wait"])
        var other = makeMachine()
        XCTAssertEqual(read(&other, "GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"), ["GET /"])
    }

    func testContinueForAPipelinedRequestComesAfterThePreviousResponse() {
        var machine = makeMachine()
        XCTAssertEqual(
            read(&machine, "GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"),
            ["GET /a"])
        XCTAssertEqual(endResponse(&machine), "keep open")
        XCTAssertEqual(process(&machine), ["continue", "wait"])
        XCTAssertEqual(read(&machine, "x"), ["POST /b [x]"])
    }

    // MARK: errors, then lingering

    func testMalformedHeadIsAnsweredThenInputIsDropped() {
        var machine = makeMachine()
        var bytes = allocator.buffer(bytes: latin1("GET / HTTP/1.1\r\nBad Header\r\n\r\n"))
        XCTAssertEqual(machine.bytesRead(&bytes, at: 1), .process)
        guard case .answerError(let answer) = machine.process(at: 1) else { return XCTFail("no error answer") }
        XCTAssertEqual(answer.error, .badRequest("Invalid header"))
        XCTAssertEqual(answer.version, .http11)
        XCTAssertNil(answer.head)
        XCTAssertEqual(answer.unparsed?.readableBytes, 30, "the unparsed bytes go to the access log")
        XCTAssertFalse(answer.resumeReading)
        XCTAssertEqual(phase(machine), "lingering")
        XCTAssertTrue(machine.isClosing)
        XCTAssertNil(machine.buffered)
        XCTAssertEqual(read(&machine, "GET /after HTTP/1.1\r\n\r\n", at: 3), ["drop"])
        XCTAssertEqual(machine.lastActivity, 3, "a lingering client is still active")
        XCTAssertEqual(process(&machine), ["wait"])
        XCTAssertEqual(machine.inputClosedByPeer(), .close, "the client closing its side ends it")
    }

    func testHeadOverTheLimitAcrossReadsIs431() {
        var machine = makeMachine(maxHeaderSize: 100)
        var actions: [String] = []
        for byte in latin1("GET / HTTP/1.1\r\nX-Long: " + String(repeating: "a", count: 300)) {
            actions = read(&machine, latin1String([byte]))
            if actions != ["wait"] { break }
        }
        XCTAssertEqual(actions, ["431 HTTP/1.0"])
        XCTAssertEqual(phase(machine), "lingering")
    }

    func testHeadJustUnderTheLimitIsServed() {
        var machine = makeMachine(maxHeaderSize: 100)
        let head = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 99 - 19 - 4) + "\r\n\r\n"
        var actions: [String] = []
        for byte in latin1(head) { actions = read(&machine, latin1String([byte])) }
        XCTAssertEqual(actions, ["GET /"])
    }

    func testDeclaredBodyOverTheLimitIs413WithoutContinue() {
        var machine = makeMachine(maxBodySize: 10)
        XCTAssertEqual(
            read(&machine, "POST /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n"), ["413 HTTP/1.1"])
        XCTAssertEqual(phase(machine), "lingering")
    }

    func testChunkedBodyOverTheLimitIs413AndCarriesTheHead() {
        var machine = makeMachine(maxBodySize: 10)
        XCTAssertEqual(read(&machine, "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n"), ["wait"])
        var bytes = allocator.buffer(bytes: latin1("5\r\n56789\r\n0\r\n\r\n"))
        XCTAssertEqual(machine.bytesRead(&bytes, at: 1), .process)
        guard case .answerError(let answer) = machine.process(at: 1) else { return XCTFail("no error answer") }
        XCTAssertEqual(answer.error, .entityTooLarge(limit: 10))
        XCTAssertEqual(answer.head.map { latin1String($0.bytes($0.target)) }, "/c", "the access log gets the head")
        XCTAssertEqual(phase(machine), "lingering")
    }

    func testMalformedChunkedBodyIs400() {
        var machine = makeMachine()
        XCTAssertEqual(
            read(&machine, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX"), ["400 HTTP/1.1"])
        XCTAssertEqual(phase(machine), "lingering")
    }

    func testMalformedPipelinedRequestIsAnsweredAfterThePreviousResponseAndResumesReading() {
        var machine = makeMachine(readAheadLimit: 64)
        XCTAssertEqual(
            read(&machine, "GET /a HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nX y: z\r\n\r\n" + String(repeating: "x", count: 64)),
            ["GET /a", "pause"])
        XCTAssertEqual(endResponse(&machine), "keep open")
        XCTAssertEqual(process(&machine), ["400 HTTP/1.1 resume"], "the rest is read and dropped: reading resumes")
        XCTAssertFalse(machine.readingPaused)
        XCTAssertEqual(phase(machine), "lingering")
    }

    // MARK: half-close

    func testHalfCloseWhileIdleCloses() {
        var machine = makeMachine()
        XCTAssertEqual(machine.inputClosedByPeer(), .close)
        read(&machine, "GET /a HT")
        XCTAssertEqual(machine.inputClosedByPeer(), .close, "a partial head is not served")
    }

    func testHalfCloseMidBodyCloses() {
        var machine = makeMachine()
        read(&machine, "POST /u HTTP/1.1\r\nContent-Length: 5\r\n\r\nhe")
        XCTAssertEqual(phase(machine), "readingBody")
        XCTAssertEqual(machine.inputClosedByPeer(), .close)
    }

    func testHalfCloseDuringServiceClosesAfterTheResponse() {
        var machine = makeMachine()
        read(&machine, "GET /a HTTP/1.1\r\n\r\n")
        XCTAssertEqual(machine.inputClosedByPeer(), .finishService)
        XCTAssertTrue(machine.inputClosed)
        XCTAssertEqual(phase(machine), "inService")
        XCTAssertEqual(endResponse(&machine), "keep open")
        XCTAssertEqual(process(&machine), ["close after flush"])
        XCTAssertEqual(phase(machine), "draining")
    }

    func testHalfCloseServesTheCompleteRequestsBufferedThenCloses() {
        var machine = makeMachine()
        read(&machine, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nPOST /c HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc")
        XCTAssertEqual(machine.inputClosedByPeer(), .finishService)
        XCTAssertEqual(endResponse(&machine), "keep open")
        XCTAssertEqual(process(&machine), ["GET /b"])
        XCTAssertEqual(endResponse(&machine), "keep open")
        XCTAssertEqual(process(&machine), ["close after flush"], "an incomplete body is not served")
        XCTAssertEqual(phase(machine), "draining")
    }

    func testHalfCloseWithAPartialHeadBufferedClosesAfterTheResponse() {
        var machine = makeMachine()
        read(&machine, "GET /a HTTP/1.1\r\n\r\nGET /b")
        XCTAssertEqual(machine.inputClosedByPeer(), .finishService)
        XCTAssertEqual(endResponse(&machine), "keep open")
        XCTAssertEqual(process(&machine), ["close after flush"])
    }

    // MARK: response ends, output

    func testResponseAskingToCloseDrainsAndDropsWhatFollows() {
        var machine = makeMachine()
        read(&machine, "GET /a HTTP/1.1\r\n\r\n")
        machine.wrote()
        XCTAssertEqual(endResponse(&machine, close: true), "close after flush")
        XCTAssertEqual(phase(machine), "draining")
        XCTAssertFalse(machine.takeFlush(), "the close's own write flushes")
        XCTAssertEqual(read(&machine, "GET /b HTTP/1.1\r\n\r\n"), ["drop"])
        XCTAssertFalse(machine.writabilityChanged(isWritable: true))
    }

    func testFlushIsTakenOnce() {
        var machine = makeMachine()
        XCTAssertFalse(machine.takeFlush())
        machine.wrote()
        machine.wrote()
        XCTAssertTrue(machine.takeFlush())
        XCTAssertFalse(machine.takeFlush())
    }

    func testWritabilityStartsTheNextRequestOnlyWhenNoneIsInService() {
        var machine = makeMachine()
        XCTAssertTrue(machine.writabilityChanged(isWritable: true))
        XCTAssertFalse(machine.writabilityChanged(isWritable: false))
        read(&machine, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
        XCTAssertFalse(machine.writabilityChanged(isWritable: true))
        XCTAssertEqual(endResponse(&machine), "keep open")
        // The handler did not process: the channel was not writable.
        XCTAssertTrue(machine.writabilityChanged(isWritable: true))
        XCTAssertEqual(process(&machine), ["GET /b"])
    }

    func testResponseDroppedWhenTheConnectionIsGone() {
        var machine = makeMachine()
        read(&machine, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
        machine.channelClosed()
        XCTAssertEqual(phase(machine), "closed")
        XCTAssertNil(machine.buffered)
        machine.responseDropped()
        XCTAssertEqual(phase(machine), "closed")
        XCTAssertEqual(process(&machine), ["wait"])
        XCTAssertEqual(read(&machine, "GET /c HTTP/1.1\r\n\r\n"), ["drop"])
    }

    func testResponseDroppedBeforeTheChannelWentInactiveEndsTheService() {
        var machine = makeMachine()
        read(&machine, "GET /a HTTP/1.1\r\n\r\n")
        machine.responseDropped()
        XCTAssertEqual(phase(machine), "readingHead")
    }

    // MARK: the drain and timers

    func testDrainClosesIdleConnectionsAndBusyOnesAfterTheirResponse() {
        var idle = makeMachine()
        XCTAssertTrue(idle.closeIfIdle(olderThan: nil, force: false))
        XCTAssertEqual(phase(idle), "closed")

        var busy = makeMachine()
        read(&busy, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
        XCTAssertFalse(busy.closeIfIdle(olderThan: nil, force: false))
        XCTAssertEqual(phase(busy), "inService")
        XCTAssertEqual(endResponse(&busy, draining: true), "close after flush", "buffered requests are not started")
        XCTAssertEqual(phase(busy), "draining")
        XCTAssertEqual(process(&busy), ["wait"])
    }

    func testDrainOutOfTimeClosesEvenInService() {
        var machine = makeMachine()
        read(&machine, "GET /a HTTP/1.1\r\n\r\n")
        XCTAssertTrue(machine.closeIfIdle(olderThan: nil, force: true))
        XCTAssertEqual(phase(machine), "closed")
        XCTAssertEqual(endResponse(&machine), "close after flush", "a late end on a closing connection closes")
        XCTAssertEqual(phase(machine), "closed")
    }

    func testIdleTimeoutCountsFromTheLastReadOrResponseEnd() {
        var machine = makeMachine(now: 10)
        XCTAssertFalse(machine.closeIfIdle(olderThan: 10, force: false), "not idle for long enough")
        read(&machine, "GET /a HTTP/1.1\r\n\r\n", at: 20)
        XCTAssertFalse(machine.closeIfIdle(olderThan: 100, force: false), "a request in service is not idle")
        XCTAssertEqual(endResponse(&machine, at: 30), "keep open")
        XCTAssertFalse(machine.closeIfIdle(olderThan: 30, force: false))
        XCTAssertEqual(phase(machine), "readingHead")
        XCTAssertTrue(machine.closeIfIdle(olderThan: 30.5, force: false))
        XCTAssertEqual(phase(machine), "closed")
    }

    func testIdleTimeoutClosesAClientStalledMidBodyOrLingering() {
        var body = makeMachine()
        read(&body, "POST /u HTTP/1.1\r\nContent-Length: 5\r\n\r\nhe", at: 1)
        XCTAssertTrue(body.closeIfIdle(olderThan: 2, force: false))
        var lingering = makeMachine()
        read(&lingering, "GET / HTTP/1.1\r\nBad Header\r\n\r\n", at: 1)
        XCTAssertTrue(lingering.closeIfIdle(olderThan: 2, force: false))
        XCTAssertEqual(phase(lingering), "closed")
    }

    func testHeadTimeoutAnswers408ForAHeadStillIncomplete() {
        var machine = makeMachine()
        XCTAssertNil(machine.headTimedOut(startedBefore: 100, seconds: 5), "no head began")
        read(&machine, "GET /a HTTP/1.1\r\nX: 1\r\n", at: 10)
        XCTAssertNil(machine.headTimedOut(startedBefore: 10, seconds: 5), "began at the cutoff")
        guard let answer = machine.headTimedOut(startedBefore: 10.5, seconds: 5) else { return XCTFail("no 408") }
        XCTAssertEqual(answer.error, .headTimeout(seconds: 5))
        XCTAssertEqual(answer.version, .http10)
        XCTAssertNil(answer.head)
        XCTAssertEqual(answer.unparsed?.readableBytes, 23)
        XCTAssertEqual(phase(machine), "lingering")
        XCTAssertNil(machine.headStarted)
        XCTAssertNil(machine.headTimedOut(startedBefore: 100, seconds: 5), "answered once")
    }

    func testHeadTimeoutSparesBodiesAndRequestsInService() {
        var body = makeMachine()
        read(&body, "POST /u HTTP/1.1\r\nContent-Length: 5\r\n\r\n", at: 1)
        XCTAssertNil(body.headTimedOut(startedBefore: 100, seconds: 5))
        var busy = makeMachine()
        read(&busy, "GET /a HTTP/1.1\r\n\r\nGET /b HTT", at: 1)
        XCTAssertEqual(busy.headStarted, nil, "a head behind a request in service is not parsed yet")
        XCTAssertNil(busy.headTimedOut(startedBefore: 100, seconds: 5))
        XCTAssertEqual(endResponse(&busy, at: 50), "keep open")
        XCTAssertEqual(process(&busy, at: 50), ["wait"])
        XCTAssertEqual(busy.headStarted, 50, "its timer starts when it is parsed")
    }

    // MARK: access-log timing

    func testRequestStartIsTheReadThatBroughtItsFirstByte() {
        var machine = makeMachine()
        read(&machine, "GET /a HT", at: 3)
        read(&machine, "TP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n", at: 4)
        XCTAssertEqual(machine.requestStart, 3)
        XCTAssertEqual(machine.firstByte, 4, "the pipelined request's bytes came by the latest read")
        XCTAssertEqual(endResponse(&machine, at: 5), "keep open")
        XCTAssertEqual(process(&machine, at: 5), ["GET /b"])
        XCTAssertEqual(machine.requestStart, 4)
        XCTAssertEqual(endResponse(&machine, at: 6), "keep open")
        XCTAssertEqual(process(&machine, at: 6), ["wait"])
        read(&machine, "GET /c HTTP/1.1\r\n\r\n", at: 7)
        XCTAssertEqual(machine.requestStart, 7)
    }
}
