import NIOCore
import NIOEmbedded
import NIOSSL
import XCTest

@testable import WaitressTLS

/// The pieces of WaitressTLS that need no handshake: the ServerHello reader
/// (SSL_CIPHER), the plain-HTTP rejector, the mod_ssl text of a client
/// certificate and the ssl_ciphers check. Handshakes themselves are tested
/// against a real server with real clients (tests/functional/test_tls.py).
final class TLSHandlerTests: XCTestCase {
    /// A ServerHello record: handshake type 2, a session id of `sessionID`
    /// bytes, then the cipher suite.
    private func serverHello(cipher: UInt16, sessionID: Int) -> ByteBuffer {
        var body = ByteBuffer()
        body.writeInteger(UInt16(0x0303))
        body.writeBytes([UInt8](repeating: 7, count: 32))
        body.writeInteger(UInt8(sessionID))
        body.writeBytes([UInt8](repeating: 9, count: sessionID))
        body.writeInteger(cipher)
        body.writeInteger(UInt8(0))  // compression
        var record = ByteBuffer()
        record.writeInteger(UInt8(22))
        record.writeInteger(UInt16(0x0303))
        record.writeInteger(UInt16(body.readableBytes + 4))
        record.writeInteger(UInt8(2))
        record.writeInteger(UInt8(0))
        record.writeInteger(UInt16(body.readableBytes))
        record.writeImmutableBuffer(body)
        return record
    }

    func testServerHelloGivesTheCipherSuite() {
        for sessionID in [0, 32] {
            XCTAssertEqual(
                ServerHelloObserver.cipherSuite(inServerHello: serverHello(cipher: 0x1302, sessionID: sessionID)), 0x1302)
        }
        XCTAssertEqual(TLSCipherNames.name(of: 0x1302), "TLS_AES_256_GCM_SHA384")
        XCTAssertEqual(TLSCipherNames.name(of: 0xC02F), "ECDHE-RSA-AES128-GCM-SHA256")
    }

    func testOtherRecordsAndCutRecordsGiveNoCipher() {
        var alert = ByteBuffer()
        alert.writeBytes([21, 3, 3, 0, 2, 2, 70])
        XCTAssertNil(ServerHelloObserver.cipherSuite(inServerHello: alert))
        let hello = serverHello(cipher: 0x1301, sessionID: 32)
        for length in [0, 5, 9, 43, 75, 76] {
            XCTAssertNil(ServerHelloObserver.cipherSuite(inServerHello: hello.getSlice(at: 0, length: length)!), "\(length)")
        }
    }

    func testPlainHTTPGetsA400AndTLSPassesThrough() throws {
        let plain = EmbeddedChannel(handler: PlainHTTPRejector())
        try plain.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try plain.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n"))
        let page = try XCTUnwrap(plain.readOutbound(as: ByteBuffer.self))
        XCTAssertTrue(String(buffer: page).hasPrefix("HTTP/1.0 400 Bad Request\r\n"))
        XCTAssertNil(try plain.readInbound(as: ByteBuffer.self), "the request must not reach the TLS handler")

        let tls = EmbeddedChannel(handler: PlainHTTPRejector())
        try tls.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try tls.writeInbound(ByteBuffer(bytes: [22, 3, 1, 0, 1, 1]))
        XCTAssertEqual(try tls.readInbound(as: ByteBuffer.self), ByteBuffer(bytes: [22, 3, 1, 0, 1, 1]))
        XCTAssertNil(try tls.readOutbound(as: ByteBuffer.self))
        XCTAssertThrowsError(try tls.pipeline.syncOperations.handler(type: PlainHTTPRejector.self))
        _ = try? tls.finish()
        _ = try? plain.finish()
    }

    func testBinaryGarbageIsClosedWithoutAPage() throws {
        let channel = EmbeddedChannel(handler: PlainHTTPRejector())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(bytes: [0, 1, 2]))
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self))
        XCTAssertFalse(channel.isActive)
    }

    func testDistinguishedNameAsMod_ssl() {
        let names = [
            SSLCertificateName("Example, Inc.", .organization),
            SSLCertificateName("#1 team", .organizationalUnit),
            SSLCertificateName("alice", .commonName),
        ]
        XCTAssertEqual(ClientCertificateText.distinguishedName(names), "CN=alice,OU=\\#1 team,O=Example\\, Inc.")
    }

    func testPEMHasBase64LinesOf64() {
        XCTAssertEqual(ClientCertificateText.base64(Array("Man".utf8)), "TWFu")
        XCTAssertEqual(ClientCertificateText.base64(Array("Ma".utf8)), "TWE=")
        XCTAssertEqual(ClientCertificateText.base64(Array("M".utf8)), "TQ==")
        let pem = ClientCertificateText.pem([UInt8](repeating: 0xFF, count: 100))
        let lines = pem.split(separator: "\n")
        XCTAssertEqual(lines.first, "-----BEGIN CERTIFICATE-----")
        XCTAssertEqual(lines.last, "-----END CERTIFICATE-----")
        XCTAssertEqual(lines[1].count, 64)
        XCTAssertEqual(lines[2].count, 64)
        XCTAssertEqual(lines[1..<(lines.count - 1)].joined(), ClientCertificateText.base64([UInt8](repeating: 0xFF, count: 100)))
    }

    func testCipherStringsAreReadByBoringSSL() throws {
        XCTAssertEqual(
            try TLSCipherNames.select(" ECDHE-RSA-AES128-GCM-SHA256 :AES256-SHA").get(),
            ["ECDHE-RSA-AES128-GCM-SHA256", "AES256-SHA"])
        // OpenSSL's syntax as gunicorn's users write it: aliases joined by '+', exclusions;
        // names BoringSSL lacks (aNULL, MD5) match nothing, as their suites do not exist there.
        XCTAssertEqual(
            Set(try TLSCipherNames.select("ECDHE+AESGCM:!aNULL").get()),
            ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
             "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"])
        let high = try TLSCipherNames.select("HIGH:!MD5").get()
        XCTAssertTrue(high.contains("ECDHE-RSA-CHACHA20-POLY1305"), "\(high)")
        XCTAssertFalse(high.contains { $0.contains("3DES") || $0.contains("DES-CBC3") }, "\(high)")
        XCTAssertEqual(try TLSCipherNames.select("ECDHE+AESGCM:!AES256").get().count, 2)
        for empty in ["", "NOPE", "TLS_AES_128_GCM_SHA256", "ECDHE+AESGCM:!ECDHE"] {
            guard case .failure(let error) = TLSCipherNames.select(empty) else {
                return XCTFail("'\(empty)' selects something")
            }
            XCTAssertTrue(error.selectsNothing, empty)
            XCTAssertTrue(error.description.contains("selects no TLS 1.2 cipher suite"), error.description)
        }
        for malformed in ["ECDHE+AESGCM:@NOPE", "[ECDHE+AESGCM", "ECDHE*AESGCM"] {
            guard case .failure(let error) = TLSCipherNames.select(malformed) else {
                return XCTFail("'\(malformed)' was taken")
            }
            XCTAssertFalse(error.selectsNothing, malformed)
            XCTAssertTrue(error.description.hasPrefix("ssl_ciphers: '\(malformed)' is not an OpenSSL cipher string ("),
                          error.description)
        }
    }
}
