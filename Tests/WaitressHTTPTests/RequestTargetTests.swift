import XCTest

@testable import WaitressHTTP

/// The request-target must have the form its method calls for (RFC 9112 §3.2):
/// origin-form or absolute-form for most methods, asterisk-form for OPTIONS only,
/// authority-form for CONNECT only. Waitress serves whatever urlsplit makes of
/// the others; every case is also fed byte by byte and split.
final class RequestTargetTests: XCTestCase {
    private let invalid = badRequest("Request-target is invalid")

    private func request(_ method: String, _ target: String) -> String {
        "\(method) \(target) HTTP/1.1\r\nHost: h\r\n\r\n"
    }

    // MARK: origin-form

    func testOriginFormMustStartWithSlash() {
        for target in ["foo/bar", "foo", "a?b", "%2Fa", ".", "?x", "-", "1/a", "~x"] {
            assertFailure(request("GET", target), invalid)
        }
    }

    func testSeveralLeadingSlashesStayInThePath() throws {
        // RFC 9112 §3.2.1: origin-form is absolute-path, so "///a" is that path
        // (the environ keeps it too: no collapsing to "/a").
        let head = try XCTUnwrap(parseHead(request("GET", "///a?x=1")))
        XCTAssertEqual(head.path, "///a")
        XCTAssertEqual(head.query, "x=1")
        XCTAssertEqual(try XCTUnwrap(parseHead(request("GET", "//"))).path, "//")
    }

    // MARK: asterisk-form

    func testAsteriskFormOnlyForOptions() throws {
        let head = try XCTUnwrap(parseHead(request("OPTIONS", "*")))
        XCTAssertEqual(head.path, "*")
        let asterisk = badRequest("Asterisk-form request-target is only allowed for OPTIONS")
        for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECTX", "OPTION", "OPTIONSX"] {
            assertFailure(request(method, "*"), asterisk)
        }
    }

    func testStarFollowedByMoreIsNotAsteriskForm() {
        for method in ["OPTIONS", "GET"] {
            for target in ["*foo", "**", "*/", "*?x"] {
                assertFailure(request(method, target), invalid)
            }
        }
    }

    // MARK: authority-form

    func testAuthorityFormOnlyForConnect() {
        let authority = badRequest("Authority-form request-target is only allowed for CONNECT")
        for method in ["GET", "POST", "OPTIONS"] {
            for target in ["example.com:443", "localhost:80", "a:1", "[::1]:443", "127.0.0.1:8080"] {
                assertFailure(request(method, target), authority)
            }
        }
        // Without a port it is not authority-form either: just invalid.
        assertFailure(request("GET", "example.com"), invalid)
        assertFailure(request("GET", "[::1]"), invalid)
    }

    func testConnectTakesAuthorityFormWithEmptyPath() throws {
        for target in ["example.com:443", "127.0.0.1:8080", "[::1]:443", "[2001:db8::7]:1", "a-b.c:65535", "x:0"] {
            let head = try XCTUnwrap(parseHead(request("CONNECT", target)), target)
            XCTAssertEqual(head.method, "CONNECT")
            XCTAssertEqual(head.target, target)
            XCTAssertEqual(head.path, "")
            XCTAssertEqual(head.query, "")
        }
    }

    func testConnectRejectsEveryOtherTarget() {
        let connect = badRequest("CONNECT requires an authority-form request-target (host:port)")
        for target in [
            "/", "/a", "*", "example.com", "example.com:", ":443", "example.com:65536", "example.com:99999999",
            "example.com:4a", "http://example.com/", "user@example.com:443", "[::1]", "[::1]:", "[zz]:443",
            "example.com:443/", "example.com:443?x",
        ] {
            assertFailure(request("CONNECT", target), connect)
        }
    }

    // MARK: absolute-form

    func testAbsoluteFormWithValidAuthorities() throws {
        for (target, path, query) in [
            ("http://example.com/a?b", "/a", "b"),
            ("http://example.com", "", ""),
            ("https://EXAMPLE.com:8443/a", "/a", ""),
            ("http://example.com:/a", "/a", ""),
            ("http://127.0.0.1:8080/", "/", ""),
            ("http://[::1]/x", "/x", ""),
            ("http://[::1]:80?q", "", "q"),
            ("http://[2001:db8:0:0:0:0:2:1]/", "/", ""),
            ("http://[::ffff:192.0.2.1]/", "/", ""),
            ("http://[v1.fe:80]/", "/", ""),
            ("http://ex%41mple.com/", "/", ""),
            ("http://a!$&'()*+,;=b/", "/", ""),
            ("s3+x-y.z://host/", "/", ""),
            ("HTTP://h//a", "//a", ""),
        ] {
            let head = try XCTUnwrap(parseHead(request("GET", target)), target)
            XCTAssertEqual(head.path, path, target)
            XCTAssertEqual(head.query, query, target)
        }
    }

    func testAbsoluteFormWhoseAuthorityDoesNotParseIs400() {
        for target in [
            "s://]ufd/:", "http://[::1/", "http://::1]/", "http://[]/", "http://[::1]x/", "http://[1:2:3:4:5:6:7:8:9]/",
            "http://[1::2::3]/", "http://[12345::]/", "http://[::1.2.3]/", "http://[::256.1.1.1]/", "http://[v.x]/",
            "http://[v1.]/", "http://a:b/", "http://a:80:80/", "http://a%zz/", "http://a%4/", "http://a\"b/",
            "http://a<b/", "http://a{b}/", "http://a^b/", "http://a|b/", "http://a`b/", "http://a\\b/",
        ] {
            assertFailure(request("PUT", target), invalid)
        }
    }

    func testAbsoluteFormWithEmptyHostIs400() {
        for target in ["http:///a", "http://", "http://?x", "http://:80/a", "http://:/"] {
            assertFailure(request("GET", target), invalid)
        }
    }

    func testAbsoluteFormWithUserinfoIs400() {
        // RFC 9110 §4.2.4: userinfo in an http(s) URI is to be treated as an error.
        let userinfo = badRequest("Request-target must not contain userinfo")
        for target in ["http://user@example.com/a", "http://user:pass@example.com/", "http://@example.com/", "http://a@b@c/"] {
            assertFailure(request("GET", target), userinfo)
        }
    }

    func testAbsoluteURIWithoutAuthorityIs400() {
        for target in ["urn:isbn:123", "mailto:a@b", "http:/a", "http:a", "1http://a/", "+x://a/", "://a/"] {
            assertFailure(request("GET", target), invalid)
        }
    }

    // MARK: the authority checks themselves

    func testIPv6Grammar() {
        func valid(_ text: String) -> Bool { Array(text.utf8).withUnsafeBytes { isValidIPv6($0) } }
        for address in [
            "::", "::1", "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1::8", "fe80::1",
            "FFFF:ffff::", "1:2:3:4:5:6:1.2.3.4", "::1.2.3.4", "1::1.2.3.4", "::ffff:255.255.255.255",
        ] {
            XCTAssertTrue(valid(address), address)
        }
        for address in [
            "", ":", ":::", "1", "1:2", ":1::", "1:::2", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8::",
            "::1:2:3:4:5:6:7:8", "12345::", "g::", "1:", ":1", "1.2.3.4", "::1.2.3.4:5", "1:2:3:4:5:6:7:1.2.3.4",
            "::01.2.3.4", "::1.2.3.04x",
        ] {
            XCTAssertFalse(valid(address), address)
        }
    }

    func testIPv4Grammar() {
        func valid(_ text: String) -> Bool { Array(text.utf8).withUnsafeBytes { isValidIPv4($0) } }
        for address in ["0.0.0.0", "1.2.3.4", "255.255.255.255", "10.200.30.249"] {
            XCTAssertTrue(valid(address), address)
        }
        for address in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..2.3", "1.2.3.", "1.2.3.4 ", "a.b.c.d", "1000.1.1.1"] {
            XCTAssertFalse(valid(address), address)
        }
    }
}
