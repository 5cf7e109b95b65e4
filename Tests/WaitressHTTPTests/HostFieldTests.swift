import XCTest

@testable import WaitressHTTP

/// The Host field (RFC 9112 §3.2, RFC 9110 §7.2): at most one field line, and
/// its value empty or an authority without userinfo (RFC 3986 host [":" port]).
/// Waitress joins repeated Host lines into "a, b" and checks no value.
final class HostFieldTests: XCTestCase {
    private func get(_ fields: String, version: String = "1.1") -> String {
        "GET / HTTP/\(version)\r\n\(fields)\r\n"
    }

    func testValidHosts() throws {
        for value in [
            "example.com", "example.com:8080", "EXAMPLE.COM", "localhost:", "127.0.0.1", "127.0.0.1:80", "[::1]",
            "[::1]:8080", "[2001:db8::ff00:42:8329]", "[::ffff:10.0.0.1]:1", "[v7.a:b]", "ex%41mple", "a_b-c~d.e",
            "!$&'()*+,;=", "a,b", "0", "xn--bcher-kva.example", "999.999.999.999",
        ] {
            let head = try XCTUnwrap(parseHead(get("Host: \(value)\r\n")), value)
            XCTAssertEqual(head.fields, ["HOST: \(value)"], value)
        }
    }

    func testEmptyHostIsAllowed() throws {
        // RFC 9112 §3.2: the value a client sends when the target has no authority.
        XCTAssertEqual(try XCTUnwrap(parseHead(get("Host:\r\n"))).fields, ["HOST: "])
        XCTAssertEqual(try XCTUnwrap(parseHead(get("Host: \t \r\nX: 1\r\n"))).fields, ["HOST: ", "X: 1"])
    }

    func testNoHostIsAllowed() throws {
        // Waitress's own tests send HTTP/1.1 requests without one.
        XCTAssertEqual(try XCTUnwrap(parseHead(get(""))).fields, [])
        XCTAssertEqual(try XCTUnwrap(parseHead(get("X: 1\r\n", version: "1.0"))).fields, ["X: 1"])
    }

    func testMoreThanOneHostIs400() {
        let repeated = badRequest("More than one Host header is not allowed")
        for fields in [
            "Host: a\r\nHost: b\r\n", "Host: a\r\nHost: a\r\n", "host: a\r\nHOST: a\r\n", "Host: a\r\nX: 1\r\nHost: \r\n",
            "Host:\r\nHost:\r\n", "Host: a\r\nhost: bad value\r\n",
        ] {
            assertFailure(get(fields), repeated)
        }
        assertFailure(get("Host: a\r\nHost: b\r\n", version: "1.0"), repeated, version: .http10)
        // Host_ is a different (dropped) name, not a second Host.
        XCTAssertNotNil(parseHead(get("Host: a\r\nHost_: b\r\n")))
    }

    func testHostThatIsNotAnAuthorityIs400() {
        let invalid = badRequest("Host is invalid")
        for value in [
            "a b", "a, b", "user@host", "@host", "host/path", "host?q", "host#f", ":80", ":", "host:port",
            "host:80:80", "host:-1", "[::1", "::1]", "[::1]x", "[]", "[::1]:a", "[1::2::3]", "[v1]", "a%", "a%4",
            "a%zz", "a\"b", "a<b>", "a\\b", "a{b}", "a|b", "a^b", "a`b", "caf\u{E9}", "\u{FF}",
        ] {
            assertFailure(get("Host: \(value)\r\n"), invalid)
        }
    }
}
