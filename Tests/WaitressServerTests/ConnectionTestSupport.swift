#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOEmbedded
import XCTest

@testable import WaitressHTTP
@testable import WaitressServer

/// Records the requests a connection dispatches; a test answers them itself.
final class RecordingDispatcher: RequestDispatcher, @unchecked Sendable {
    private(set) var requests: [Request] = []

    func dispatch(_ request: Request) {
        requests.append(request)
    }
}

/// A ConnectionHandler on an EmbeddedChannel with a recording dispatcher, as
/// the server would set it up for one accepted connection.
final class ConnectionHarness {
    let loop = EmbeddedEventLoop()
    let channel: EmbeddedChannel
    let dispatcher = RecordingDispatcher()
    let core: ServerCore
    let handler: ConnectionHandler
    let closes = CloseRecorder()

    init(file: StaticString = #filePath, line: UInt = #line, _ configure: (inout ServerConfiguration) -> Void = { _ in }) throws {
        var configuration = ServerConfiguration()
        configure(&configuration)
        channel = EmbeddedChannel(loop: loop)
        core = ServerCore(configuration: configuration, dispatcher: dispatcher, eventLoop: loop, logs: LogRelay())
        handler = ConnectionHandler(
            core: core, listener: ListenerSpec(descriptor: -1, isUnix: false, serverName: "localhost", serverPort: "8080"))
        // Outbound events travel tail to head: the recorder sees the handler's closes.
        try channel.pipeline.syncOperations.addHandler(closes)
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).wait()
    }

    var requests: [Request] { dispatcher.requests }

    /// The i-th dispatched request; throws (failing the test, not crashing the
    /// suite) when there is none.
    func request(_ i: Int, file: StaticString = #filePath, line: UInt = #line) throws -> Request {
        try XCTUnwrap(i < requests.count ? requests[i] : nil, "request \(i) was not dispatched", file: file, line: line)
    }
    var isOpen: Bool { channel.isActive }

    /// Delivers bytes as one read.
    func send(_ text: String) throws {
        try send(latin1(text))
    }

    func send(_ bytes: [UInt8]) throws {
        try channel.writeInbound(channel.allocator.buffer(bytes: bytes))
    }

    /// Delivers bytes one read per byte, stopping if the connection closes.
    func sendByteByByte(_ text: String) throws {
        for byte in latin1(text) {
            guard isOpen else { return }
            try send([byte])
        }
    }

    /// What the connection has written and flushed so far, as latin-1 text.
    func written() throws -> String {
        try writtenText(channel)
    }

    /// Answers a request the way a worker does, then lets the event loop run
    /// the outbox.
    func respond(_ request: Request, _ response: String, close: Bool = false) {
        request.connection.send(.end(channel.allocator.buffer(bytes: latin1(response)), close: close))
        loop.run()
    }

    func close() {
        if channel.isActive {
            _ = try? channel.finish(acceptAlreadyClosed: true)
        }
    }
}

/// What a channel has written and flushed so far, as latin-1 text; a file
/// region shows as "<file offset+length>".
func writtenText(_ channel: EmbeddedChannel) throws -> String {
    var text = ""
    while let data = try channel.readOutbound(as: IOData.self) {
        switch data {
        case .byteBuffer(let buffer):
            text += latin1String(buffer.readableBytesView)
        case .fileRegion(let region):
            text += "<file \(region.readerIndex)+\(region.readableBytes)>"
        }
    }
    return text
}

/// Records the closes that reach it; with `holdOutputClose` it keeps a
/// `close(mode: .output)` from reaching the EmbeddedChannel (which can't
/// half-close and would close entirely), as a real socket stays readable.
final class CloseRecorder: ChannelOutboundHandler {
    typealias OutboundIn = IOData
    private(set) var modes: [CloseMode] = []
    var holdOutputClose = false

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        modes.append(mode)
        if mode == .output && holdOutputClose {
            promise?.succeed(())
            return
        }
        context.close(mode: mode, promise: promise)
    }
}

func latin1(_ text: String) -> [UInt8] {
    text.unicodeScalars.map { UInt8($0.value) }
}

func latin1String<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
}

/// Replaces the value of every Date header (always 29 bytes) by "<date>".
func withoutDates(_ text: String) -> String {
    var result = ""
    var rest = Substring(text)
    while let range = rest.range(of: "\r\nDate: ") {
        result += rest[..<range.upperBound] + "<date>"
        rest = rest[range.upperBound...].dropFirst(29)
    }
    return result + rest
}

extension Request {
    var method: String { latin1String(head.bytes(head.method)) }
    var target: String { latin1String(head.bytes(head.target)) }
    var bodyText: String {
        switch body {
        case .memory(let bytes): return latin1String(bytes)
        case .file(let descriptor, let length):
            var bytes = [UInt8](repeating: 0, count: length)
            var offset = 0
            while offset < length {
                let n = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + offset, length - offset) }
                if n <= 0 { break }
                offset += n
            }
            close(descriptor)
            return latin1String(bytes[0..<offset])
        }
    }
}

/// Waitress's error response as this server writes it (Date normalised).
func errorResponse(_ error: RequestError, version: String, ident: String = "waitress") -> String {
    let body = latin1String(ErrorPage.body(reason: error.reason, detail: error.detail, ident: ident))
    return "HTTP/\(version) \(error.statusCode) \(error.reason)\r\n"
        + "Connection: close\r\nContent-Length: \(body.utf8.count)\r\nContent-Type: text/plain; charset=utf-8\r\n"
        + "Date: <date>\r\nServer: \(ident)\r\n\r\n" + body
}

/// Answers every request at once from inside dispatch, as a very fast worker
/// might, with "[target]".
final class AnsweringDispatcher: RequestDispatcher, @unchecked Sendable {
    private(set) var targets: [String] = []

    func dispatch(_ request: Request) {
        targets.append(request.target)
        request.connection.send(.end(ByteBuffer(string: "[\(request.target)]"), close: false))
    }
}
