import XCTest

@testable import WaitressHTTP

/// Waitress 3.0.2's proxy_headers_middleware, reproduced by `applyProxyHeaders`.
///
/// The table below was produced by running the real middleware (waitress 3.0.2
/// from PyPI) over the same environs and recording what the application then
/// saw: the environ keys that changed or appeared (`set`), the keys removed,
/// the WARNING lines logged, or the 400 page's detail. Each case starts from
/// the environ in `ProxyCase.baseEnviron`. Waitress lists removed headers in
/// set-iteration order, which varies between processes; the recorded lines use
/// `ProxyHeader.allCases` order.
final class ProxyHeadersTests: XCTestCase {
    func testMatchesWaitressMiddleware() {
        XCTAssertEqual(Self.cases.count, Set(Self.cases.map(\.name)).count, "case names are unique")
        for testCase in Self.cases {
            let outcome = applyProxyHeaders(testCase.input, testCase.config)
            switch (testCase.expect, outcome) {
            case (.environ(let set, let removed, let warnings), .apply(let changes)):
                let (actualSet, actualRemoved) = testCase.environDiff(after: changes)
                XCTAssertEqual(actualSet, set, testCase.name)
                XCTAssertEqual(actualRemoved, removed, testCase.name)
                XCTAssertEqual(changes.warnings, warnings, testCase.name)
            case (.badRequest(let detail, let warnings), .badRequest(let malformed)):
                XCTAssertEqual(malformed.detail, detail, testCase.name)
                XCTAssertEqual(malformed.warnings, warnings, testCase.name)
                XCTAssertEqual(malformed.remotePeer, testCase.input.remoteAddr, testCase.name)
            default:
                XCTFail("\(testCase.name): expected \(testCase.expect), got \(outcome)")
            }
            XCTAssertEqual(outcome.warnings, testCase.expect.warnings, testCase.name)
        }
    }

    static let cases: [ProxyCase] = [
        ProxyCase(
            "untrusted peer: all proxy headers removed",
            proxy: "10.0.0.1",
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2", "X_FORWARDED_HOST": "example.com", "X_FORWARDED_PROTO": "https", "X_FORWARDED_PORT": "8443", "X_FORWARDED_BY": "192.168.1.1", "FORWARDED": "for=198.51.100.9"],
            expect: .environ(set: [:], removed: ["HTTP_FORWARDED", "HTTP_X_FORWARDED_BY", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PROTO"], warnings: [])),
        ProxyCase(
            "untrusted peer with logging",
            proxy: "10.0.0.1",
            log: true,
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2", "X_FORWARDED_HOST": "example.com", "X_FORWARDED_PROTO": "https", "X_FORWARDED_PORT": "8443", "X_FORWARDED_BY": "192.168.1.1", "FORWARDED": "for=198.51.100.9"],
            expect: .environ(set: [:], removed: ["HTTP_FORWARDED", "HTTP_X_FORWARDED_BY", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PROTO"], warnings: ["Removed untrusted headers (X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto, X-Forwarded-Port, X-Forwarded-By, Forwarded). Waitress recommends these be removed upstream."])),
        ProxyCase(
            "untrusted peer, clearing off",
            proxy: "10.0.0.1",
            clear: false,
            log: true,
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2", "X_FORWARDED_HOST": "example.com", "X_FORWARDED_PROTO": "https", "X_FORWARDED_PORT": "8443", "X_FORWARDED_BY": "192.168.1.1", "FORWARDED": "for=198.51.100.9"],
            expect: .environ(set: [:], removed: [], warnings: [])),
        ProxyCase(
            "no trusted_proxy: clearing only",
            proxy: nil,
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "1.2.3.4", "X_FORWARDED_PROTO": "https"],
            expect: .environ(set: [:], removed: ["HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO"], warnings: [])),
        ProxyCase(
            "no trusted_proxy, clearing off",
            proxy: nil,
            clear: false,
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "1.2.3.4"],
            expect: .environ(set: [:], removed: [], warnings: [])),
        ProxyCase(
            "no proxy headers at all",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for", "x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: [:],
            expect: .environ(set: [:], removed: [], warnings: [])),
        ProxyCase(
            "no proxy headers, untrusted peer, logging",
            proxy: "10.0.0.1",
            log: true,
            addr: "192.168.1.1",
            headers: [:],
            expect: .environ(set: [:], removed: [], warnings: [])),
        ProxyCase(
            "star trusts any peer",
            proxy: "*",
            trust: ["x-forwarded-for"],
            addr: "203.0.113.77",
            headers: ["X_FORWARDED_FOR": "198.51.100.2"],
            expect: .environ(set: ["REMOTE_ADDR": "198.51.100.2", "REMOTE_HOST": "198.51.100.2"], removed: [], warnings: [])),
        ProxyCase(
            "localhost trusts a unix socket peer",
            proxy: "localhost",
            trust: ["x-forwarded-for"],
            addr: "localhost",
            headers: ["X_FORWARDED_FOR": "198.51.100.2"],
            expect: .environ(set: ["REMOTE_ADDR": "198.51.100.2", "REMOTE_HOST": "198.51.100.2"], removed: [], warnings: [])),
        ProxyCase(
            "localhost does not trust 127.0.0.1",
            proxy: "localhost",
            trust: ["x-forwarded-for"],
            addr: "127.0.0.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2"],
            expect: .environ(set: [:], removed: ["HTTP_X_FORWARDED_FOR"], warnings: [])),
        ProxyCase(
            "ipv6 peer trusted exactly",
            proxy: "::1",
            trust: ["x-forwarded-for"],
            addr: "::1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2"],
            expect: .environ(set: ["REMOTE_ADDR": "198.51.100.2", "REMOTE_HOST": "198.51.100.2"], removed: [], warnings: [])),
        ProxyCase(
            "empty header value still removed",
            proxy: "10.0.0.1",
            log: true,
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": ""],
            expect: .environ(set: [:], removed: ["HTTP_X_FORWARDED_HOST"], warnings: ["Removed untrusted headers (X-Forwarded-Host). Waitress recommends these be removed upstream."])),
        ProxyCase(
            "trusted peer, untrusted headers logged",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            log: true,
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2", "X_FORWARDED_HOST": "example.com", "X_FORWARDED_PROTO": "https", "X_FORWARDED_PORT": "8443", "X_FORWARDED_BY": "192.168.1.1", "FORWARDED": "for=198.51.100.9"],
            expect: .environ(set: ["REMOTE_ADDR": "198.51.100.2", "REMOTE_HOST": "198.51.100.2"], removed: ["HTTP_FORWARDED", "HTTP_X_FORWARDED_BY", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PROTO"], warnings: ["Removed untrusted headers (X-Forwarded-Host, X-Forwarded-Proto, X-Forwarded-Port, X-Forwarded-By, Forwarded). Waitress recommends these be removed upstream."])),
        ProxyCase(
            "trusted peer, untrusted headers kept",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            clear: false,
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2", "X_FORWARDED_HOST": "example.com", "X_FORWARDED_PROTO": "https", "X_FORWARDED_PORT": "8443", "X_FORWARDED_BY": "192.168.1.1", "FORWARDED": "for=198.51.100.9"],
            expect: .environ(set: ["REMOTE_ADDR": "198.51.100.2", "REMOTE_HOST": "198.51.100.2"], removed: [], warnings: [])),
        ProxyCase(
            "x-forwarded-by trusted is kept",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-by"],
            log: true,
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_BY": "proxy1", "X_FORWARDED_FOR": "1.2.3.4"],
            expect: .environ(set: [:], removed: ["HTTP_X_FORWARDED_FOR"], warnings: ["Removed untrusted headers (X-Forwarded-For). Waitress recommends these be removed upstream."])),
        ProxyCase(
            "proto trusted but absent is not cleared",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-proto"],
            log: true,
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "1.2.3.4"],
            expect: .environ(set: [:], removed: ["HTTP_X_FORWARDED_FOR"], warnings: ["Removed untrusted headers (X-Forwarded-For). Waitress recommends these be removed upstream."])),
        ProxyCase(
            "all x-forwarded trusted",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-by", "x-forwarded-for", "x-forwarded-host", "x-forwarded-port", "x-forwarded-proto"],
            log: true,
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2", "X_FORWARDED_HOST": "example.com", "X_FORWARDED_PROTO": "https", "X_FORWARDED_PORT": "8443", "X_FORWARDED_BY": "192.168.1.1", "FORWARDED": "for=198.51.100.9"],
            expect: .environ(set: ["HTTP_HOST": "example.com:8443", "REMOTE_ADDR": "198.51.100.2", "REMOTE_HOST": "198.51.100.2", "SERVER_NAME": "example.com", "SERVER_PORT": "8443", "wsgi.url_scheme": "https"], removed: ["HTTP_FORWARDED"], warnings: ["Removed untrusted headers (Forwarded). Waitress recommends these be removed upstream."])),
        ProxyCase(
            "unknown trusted header name ignored",
            proxy: "192.168.1.1",
            trust: ["x-real-ip"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "1.2.3.4"],
            expect: .environ(set: [:], removed: ["HTTP_X_FORWARDED_FOR"], warnings: [])),
        ProxyCase(
            "uppercase trusted header name not matched",
            proxy: "192.168.1.1",
            trust: ["X-Forwarded-For"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "1.2.3.4"],
            expect: .environ(set: [:], removed: ["HTTP_X_FORWARDED_FOR"], warnings: [])),
        ProxyCase(
            "xff single ipv4",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2"],
            expect: .environ(set: ["REMOTE_ADDR": "198.51.100.2", "REMOTE_HOST": "198.51.100.2"], removed: [], warnings: [])),
        ProxyCase(
            "xff chain count 1",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2, 203.0.113.5, 10.0.0.3"],
            expect: .environ(set: ["HTTP_X_FORWARDED_FOR": "10.0.0.3", "REMOTE_ADDR": "10.0.0.3", "REMOTE_HOST": "10.0.0.3"], removed: [], warnings: [])),
        ProxyCase(
            "xff chain count 2",
            proxy: "192.168.1.1",
            count: 2,
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2, 203.0.113.5, 10.0.0.3"],
            expect: .environ(set: ["HTTP_X_FORWARDED_FOR": "203.0.113.5, 10.0.0.3", "REMOTE_ADDR": "203.0.113.5", "REMOTE_HOST": "203.0.113.5"], removed: [], warnings: [])),
        ProxyCase(
            "xff chain count 3",
            proxy: "192.168.1.1",
            count: 3,
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2, 203.0.113.5, 10.0.0.3"],
            expect: .environ(set: ["REMOTE_ADDR": "198.51.100.2", "REMOTE_HOST": "198.51.100.2"], removed: [], warnings: [])),
        ProxyCase(
            "xff chain count beyond hops",
            proxy: "192.168.1.1",
            count: 10,
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2, 203.0.113.5"],
            expect: .environ(set: ["REMOTE_ADDR": "198.51.100.2", "REMOTE_HOST": "198.51.100.2"], removed: [], warnings: [])),
        ProxyCase(
            "xff chain count 0 keeps all",
            proxy: "192.168.1.1",
            count: 0,
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2, 203.0.113.5, 10.0.0.3"],
            expect: .environ(set: ["REMOTE_ADDR": "198.51.100.2", "REMOTE_HOST": "198.51.100.2"], removed: [], warnings: [])),
        ProxyCase(
            "xff chain count -1 drops first",
            proxy: "192.168.1.1",
            count: -1,
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2, 203.0.113.5, 10.0.0.3"],
            expect: .environ(set: ["HTTP_X_FORWARDED_FOR": "203.0.113.5, 10.0.0.3", "REMOTE_ADDR": "203.0.113.5", "REMOTE_HOST": "203.0.113.5"], removed: [], warnings: [])),
        ProxyCase(
            "xff count -5 leaves nothing",
            proxy: "192.168.1.1",
            count: -5,
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2, 203.0.113.5"],
            expect: .badRequest(detail: "Header \"X-Forwarded-For\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-For\" from \"192.168.1.1\": list index out of range value: 198.51.100.2, 203.0.113.5"])),
        ProxyCase(
            "xff odd spacing",
            proxy: "192.168.1.1",
            count: 2,
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2 ,203.0.113.5 ,  10.0.0.3"],
            expect: .environ(set: ["HTTP_X_FORWARDED_FOR": "203.0.113.5 ,  10.0.0.3", "REMOTE_ADDR": "203.0.113.5", "REMOTE_HOST": "203.0.113.5"], removed: [], warnings: [])),
        ProxyCase(
            "xff bare ipv6",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "2001:db8::1"],
            expect: .environ(set: ["REMOTE_ADDR": "2001:db8::1", "REMOTE_HOST": "2001:db8::1"], removed: [], warnings: [])),
        ProxyCase(
            "xff bracketed ipv6",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "[2001:db8::1]"],
            expect: .environ(set: ["REMOTE_ADDR": "2001:db8::1", "REMOTE_HOST": "2001:db8::1"], removed: [], warnings: [])),
        ProxyCase(
            "xff bracketed ipv6 with port",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "[2001:db8::1]:4711"],
            expect: .environ(set: ["REMOTE_ADDR": "[2001:db8::1]:4711", "REMOTE_HOST": "[2001:db8::1]:4711"], removed: [], warnings: [])),
        ProxyCase(
            "xff ipv4 with port",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2:8080"],
            expect: .environ(set: ["REMOTE_ADDR": "198.51.100.2", "REMOTE_HOST": "198.51.100.2", "REMOTE_PORT": "8080"], removed: [], warnings: [])),
        ProxyCase(
            "xff ipv4-mapped ipv6",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "::ffff:198.51.100.2"],
            expect: .environ(set: ["REMOTE_ADDR": "::ffff", "REMOTE_HOST": "::ffff", "REMOTE_PORT": "198.51.100.2"], removed: [], warnings: [])),
        ProxyCase(
            "xff quoted",
            proxy: "192.168.1.1",
            count: 2,
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "\"198.51.100.2\", 10.0.0.3"],
            expect: .environ(set: ["REMOTE_ADDR": "198.51.100.2", "REMOTE_HOST": "198.51.100.2"], removed: [], warnings: [])),
        ProxyCase(
            "xff quoted pair",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "\"a\\\"b\\\\c\""],
            expect: .environ(set: ["REMOTE_ADDR": "a\"b\\c", "REMOTE_HOST": "a\"b\\c"], removed: [], warnings: [])),
        ProxyCase(
            "xff quoted ipv6",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "\"2001:db8::1\""],
            expect: .environ(set: ["REMOTE_ADDR": "2001:db8::1", "REMOTE_HOST": "2001:db8::1"], removed: [], warnings: [])),
        ProxyCase(
            "xff open quote",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "\"198.51.100.2"],
            expect: .badRequest(detail: "Header \"X-Forwarded-For\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-For\" from \"192.168.1.1\": Invalid quoting in value value: \"198.51.100.2"])),
        ProxyCase(
            "xff close quote only",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2\""],
            expect: .badRequest(detail: "Header \"X-Forwarded-For\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-For\" from \"192.168.1.1\": Invalid quoting in value value: 198.51.100.2\""])),
        ProxyCase(
            "xff lone quote",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "\""],
            expect: .badRequest(detail: "Header \"X-Forwarded-For\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-For\" from \"192.168.1.1\": Invalid quoting in value value: \""])),
        ProxyCase(
            "xff quote inside quotes",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "\"a\"b\""],
            expect: .badRequest(detail: "Header \"X-Forwarded-For\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-For\" from \"192.168.1.1\": Invalid quoting in value value: \"a\"b\""])),
        ProxyCase(
            "xff escaped final quote",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "\"ab\\\""],
            expect: .badRequest(detail: "Header \"X-Forwarded-For\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-For\" from \"192.168.1.1\": Invalid quoting in value value: \"ab\\\""])),
        ProxyCase(
            "xff bad quoting in untrusted hop",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "\"bad, 10.0.0.3"],
            expect: .badRequest(detail: "Header \"X-Forwarded-For\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-For\" from \"192.168.1.1\": Invalid quoting in value value: \"bad, 10.0.0.3"])),
        ProxyCase(
            "xff empty quoted",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "\"\""],
            expect: .environ(set: [:], removed: [], warnings: [])),
        ProxyCase(
            "xff empty leftmost trusted hop",
            proxy: "192.168.1.1",
            count: 2,
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": ", 203.0.113.5"],
            expect: .environ(set: [:], removed: [], warnings: [])),
        ProxyCase(
            "xff empty value",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": ""],
            expect: .environ(set: [:], removed: [], warnings: [])),
        ProxyCase(
            "xff trailing comma",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2,"],
            expect: .environ(set: ["HTTP_X_FORWARDED_FOR": ""], removed: [], warnings: [])),
        ProxyCase(
            "xff unknown",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "unknown"],
            expect: .environ(set: ["REMOTE_ADDR": "unknown", "REMOTE_HOST": "unknown"], removed: [], warnings: [])),
        ProxyCase(
            "xff colon port only",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": ":80"],
            expect: .environ(set: ["REMOTE_ADDR": ":80", "REMOTE_HOST": ":80"], removed: [], warnings: [])),
        ProxyCase(
            "xff dot colon",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "a.b:"],
            expect: .environ(set: ["REMOTE_ADDR": "a.b", "REMOTE_HOST": "a.b", "REMOTE_PORT": ""], removed: [], warnings: [])),
        ProxyCase(
            "xff nbsp stripped",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "\u{a0}198.51.100.2\u{a0}"],
            expect: .environ(set: ["HTTP_X_FORWARDED_FOR": "198.51.100.2", "REMOTE_ADDR": "198.51.100.2", "REMOTE_HOST": "198.51.100.2"], removed: [], warnings: [])),
        ProxyCase(
            "xff latin-1 text",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "h\u{f4}te"],
            expect: .environ(set: ["REMOTE_ADDR": "h\u{f4}te", "REMOTE_HOST": "h\u{f4}te"], removed: [], warnings: [])),
        ProxyCase(
            "xff quoted blank",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "\" \""],
            // Waitress raises IndexError('string index out of range') (a 500); we answer 400.
            expect: .badRequest(detail: "Header \"X-Forwarded-For\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-For\" from \"192.168.1.1\": string index out of range value: \" \""])),
        ProxyCase(
            "xff quoted blank before port",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "\" :1.2\""],
            // Waitress raises IndexError('string index out of range') (a 500); we answer 400.
            expect: .badRequest(detail: "Header \"X-Forwarded-For\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-For\" from \"192.168.1.1\": string index out of range value: \" :1.2\""])),
        ProxyCase(
            "xff untrusted peer count ignored",
            proxy: "10.0.0.1",
            count: 5,
            trust: ["x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "1.2.3.4"],
            expect: .environ(set: [:], removed: ["HTTP_X_FORWARDED_FOR"], warnings: [])),
        ProxyCase(
            "xfh plain",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-host"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "example.com"],
            expect: .environ(set: ["HTTP_HOST": "example.com", "SERVER_NAME": "example.com"], removed: [], warnings: [])),
        ProxyCase(
            "xfh with port",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-host"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "example.com:8443"],
            expect: .environ(set: ["HTTP_HOST": "example.com:8443", "SERVER_NAME": "example.com", "SERVER_PORT": "8443"], removed: [], warnings: [])),
        ProxyCase(
            "xfh chain count 1",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-host"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "example.com, internal:8080"],
            expect: .environ(set: ["HTTP_HOST": "internal:8080", "HTTP_X_FORWARDED_HOST": "internal:8080", "SERVER_NAME": "internal", "SERVER_PORT": "8080"], removed: [], warnings: [])),
        ProxyCase(
            "xfh chain count 2",
            proxy: "192.168.1.1",
            count: 2,
            trust: ["x-forwarded-host"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "example.com, internal:8080"],
            expect: .environ(set: ["HTTP_HOST": "example.com", "SERVER_NAME": "example.com"], removed: [], warnings: [])),
        ProxyCase(
            "xfh ipv6",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-host"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "[2001:db8::1]"],
            expect: .environ(set: ["HTTP_HOST": "[2001:db8::1]", "SERVER_NAME": "[2001:db8::1]"], removed: [], warnings: [])),
        ProxyCase(
            "xfh ipv6 with port",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-host"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "[2001:db8::1]:8080"],
            expect: .environ(set: ["HTTP_HOST": "[2001:db8::1]:8080", "SERVER_NAME": "[2001:db8::1]", "SERVER_PORT": "8080"], removed: [], warnings: [])),
        ProxyCase(
            "xfh empty port",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-host", "x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "example.com:"],
            expect: .environ(set: ["HTTP_HOST": "example.com:", "SERVER_NAME": "example.com"], removed: [], warnings: [])),
        ProxyCase(
            "xfh empty port overrides proto port",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-host", "x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "example.com:", "X_FORWARDED_PROTO": "https"],
            expect: .environ(set: ["HTTP_HOST": "example.com:", "SERVER_NAME": "example.com", "wsgi.url_scheme": "https"], removed: [], warnings: [])),
        ProxyCase(
            "xfh spaces before colon",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-host"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "\"example.com :81\""],
            expect: .environ(set: ["HTTP_HOST": "example.com :81", "SERVER_NAME": "example.com", "SERVER_PORT": "81"], removed: [], warnings: [])),
        ProxyCase(
            "xfh quoted",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-host"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "\"example.com\""],
            expect: .environ(set: ["HTTP_HOST": "example.com", "SERVER_NAME": "example.com"], removed: [], warnings: [])),
        ProxyCase(
            "xfh bad quoting",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-host"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "\"example.com"],
            expect: .badRequest(detail: "Header \"X-Forwarded-Host\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-Host\" from \"192.168.1.1\": Invalid quoting in value value: \"example.com"])),
        ProxyCase(
            "xfh count -3 leaves nothing",
            proxy: "192.168.1.1",
            count: -3,
            trust: ["x-forwarded-host"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "a, b"],
            expect: .badRequest(detail: "Header \"X-Forwarded-Host\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-Host\" from \"192.168.1.1\": list index out of range value: a, b"])),
        ProxyCase(
            "xfh with xfport",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-host", "x-forwarded-port"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "example.com", "X_FORWARDED_PORT": "8080"],
            expect: .environ(set: ["HTTP_HOST": "example.com:8080", "SERVER_NAME": "example.com", "SERVER_PORT": "8080"], removed: [], warnings: [])),
        ProxyCase(
            "xfh port beats xfport",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-host", "x-forwarded-port"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "example.com:9000", "X_FORWARDED_PORT": "8080"],
            expect: .environ(set: ["HTTP_HOST": "example.com:9000", "SERVER_NAME": "example.com", "SERVER_PORT": "9000"], removed: [], warnings: [])),
        ProxyCase(
            "xfh https default port",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-host", "x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "example.com", "X_FORWARDED_PROTO": "https"],
            expect: .environ(set: ["HTTP_HOST": "example.com", "SERVER_NAME": "example.com", "SERVER_PORT": "443", "wsgi.url_scheme": "https"], removed: [], warnings: [])),
        ProxyCase(
            "xfh http default port",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-host", "x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "example.com", "X_FORWARDED_PROTO": "http"],
            expect: .environ(set: ["HTTP_HOST": "example.com", "SERVER_NAME": "example.com", "SERVER_PORT": "80"], removed: [], warnings: [])),
        ProxyCase(
            "xfh https port 80",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-host", "x-forwarded-port", "x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "example.com", "X_FORWARDED_PROTO": "https", "X_FORWARDED_PORT": "80"],
            expect: .environ(set: ["HTTP_HOST": "example.com:80", "SERVER_NAME": "example.com", "SERVER_PORT": "80", "wsgi.url_scheme": "https"], removed: [], warnings: [])),
        ProxyCase(
            "xfh http port 443",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-host", "x-forwarded-port", "x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "example.com", "X_FORWARDED_PROTO": "http", "X_FORWARDED_PORT": "443"],
            expect: .environ(set: ["HTTP_HOST": "example.com:443", "SERVER_NAME": "example.com", "SERVER_PORT": "443"], removed: [], warnings: [])),
        ProxyCase(
            "xfh port 443 under https url_scheme",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-host", "x-forwarded-port"],
            addr: "192.168.1.1",
            scheme: "https",
            headers: ["X_FORWARDED_HOST": "example.com", "X_FORWARDED_PORT": "443"],
            expect: .environ(set: ["HTTP_HOST": "example.com", "SERVER_NAME": "example.com", "SERVER_PORT": "443"], removed: [], warnings: [])),
        ProxyCase(
            "xfh port 443 under http url_scheme",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-host", "x-forwarded-port"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "example.com", "X_FORWARDED_PORT": "443"],
            expect: .environ(set: ["HTTP_HOST": "example.com:443", "SERVER_NAME": "example.com", "SERVER_PORT": "443"], removed: [], warnings: [])),
        ProxyCase(
            "xfh port 80 under http url_scheme",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-host", "x-forwarded-port"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "example.com", "X_FORWARDED_PORT": "80"],
            expect: .environ(set: ["HTTP_HOST": "example.com", "SERVER_NAME": "example.com", "SERVER_PORT": "80"], removed: [], warnings: [])),
        ProxyCase(
            "xfh untrusted port ignored",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-host"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_HOST": "example.com", "X_FORWARDED_PORT": "8080"],
            expect: .environ(set: ["HTTP_HOST": "example.com", "SERVER_NAME": "example.com"], removed: ["HTTP_X_FORWARDED_PORT"], warnings: [])),
        ProxyCase(
            "xfproto https",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_PROTO": "https"],
            expect: .environ(set: ["SERVER_PORT": "443", "wsgi.url_scheme": "https"], removed: [], warnings: [])),
        ProxyCase(
            "xfproto http under https",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-proto"],
            addr: "192.168.1.1",
            scheme: "https",
            headers: ["X_FORWARDED_PROTO": "http"],
            expect: .environ(set: ["SERVER_PORT": "80", "wsgi.url_scheme": "http"], removed: [], warnings: [])),
        ProxyCase(
            "xfproto uppercase",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_PROTO": "HTTPS"],
            expect: .environ(set: ["SERVER_PORT": "443", "wsgi.url_scheme": "https"], removed: [], warnings: [])),
        ProxyCase(
            "xfproto quoted",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_PROTO": "\"https\""],
            expect: .environ(set: ["SERVER_PORT": "443", "wsgi.url_scheme": "https"], removed: [], warnings: [])),
        ProxyCase(
            "xfproto unsupported",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_PROTO": "ftp"],
            expect: .badRequest(detail: "Header \"X-Forwarded-Proto\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-Proto\" from \"192.168.1.1\": unsupported proto value value: ftp"])),
        ProxyCase(
            "xfproto unsupported uppercase",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_PROTO": "WS"],
            expect: .badRequest(detail: "Header \"X-Forwarded-Proto\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-Proto\" from \"192.168.1.1\": unsupported proto value value: ws"])),
        ProxyCase(
            "xfproto multiple",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_PROTO": "https, http"],
            expect: .badRequest(detail: "Header \"X-Forwarded-Proto\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-Proto\" from \"192.168.1.1\": Unspecified behavior for multiple values found in header value: https, http"])),
        ProxyCase(
            "xfproto bad quoting",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_PROTO": "\"https"],
            expect: .badRequest(detail: "Header \"X-Forwarded-Proto\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-Proto\" from \"192.168.1.1\": Invalid quoting in value value: \"https"])),
        ProxyCase(
            "xfproto not stripped",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_PROTO": "\" https\""],
            expect: .badRequest(detail: "Header \"X-Forwarded-Proto\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-Proto\" from \"192.168.1.1\": unsupported proto value value:  https"])),
        ProxyCase(
            "xfproto empty",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-proto"],
            log: true,
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_PROTO": ""],
            expect: .environ(set: [:], removed: [], warnings: [])),
        ProxyCase(
            "xfproto with xfport",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-port", "x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_PROTO": "https", "X_FORWARDED_PORT": "8443"],
            expect: .environ(set: ["SERVER_PORT": "8443", "wsgi.url_scheme": "https"], removed: [], warnings: [])),
        ProxyCase(
            "xfport alone",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-port"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_PORT": "8443"],
            expect: .environ(set: ["SERVER_PORT": "8443"], removed: [], warnings: [])),
        ProxyCase(
            "xfport not validated",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-port"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_PORT": "abc"],
            expect: .environ(set: ["SERVER_PORT": "abc"], removed: [], warnings: [])),
        ProxyCase(
            "xfport multiple",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-port"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_PORT": "80,443"],
            expect: .badRequest(detail: "Header \"X-Forwarded-Port\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-Port\" from \"192.168.1.1\": Unspecified behavior for multiple values found in header value: 80,443"])),
        ProxyCase(
            "xfport bad quoting",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-port"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_PORT": "8443\""],
            expect: .badRequest(detail: "Header \"X-Forwarded-Port\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-Port\" from \"192.168.1.1\": Invalid quoting in value value: 8443\""])),
        ProxyCase(
            "xff error reported before proto error",
            proxy: "192.168.1.1",
            trust: ["x-forwarded-for", "x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "\"x", "X_FORWARDED_PROTO": "ftp"],
            expect: .badRequest(detail: "Header \"X-Forwarded-For\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-For\" from \"192.168.1.1\": Invalid quoting in value value: \"x"])),
        ProxyCase(
            "everything x-forwarded",
            proxy: "192.168.1.1",
            count: 2,
            trust: ["x-forwarded-by", "x-forwarded-for", "x-forwarded-host", "x-forwarded-port", "x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2, 10.0.0.3", "X_FORWARDED_HOST": "example.com, internal", "X_FORWARDED_PROTO": "https", "X_FORWARDED_PORT": "8443", "X_FORWARDED_BY": "10.0.0.3"],
            expect: .environ(set: ["HTTP_HOST": "example.com:8443", "REMOTE_ADDR": "198.51.100.2", "REMOTE_HOST": "198.51.100.2", "SERVER_NAME": "example.com", "SERVER_PORT": "8443", "wsgi.url_scheme": "https"], removed: [], warnings: [])),
        ProxyCase(
            "fwd rfc example",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=192.0.2.60;proto=http;by=203.0.113.43"],
            expect: .environ(set: ["REMOTE_ADDR": "192.0.2.60", "REMOTE_HOST": "192.0.2.60", "SERVER_PORT": "80"], removed: [], warnings: [])),
        ProxyCase(
            "fwd ipv6 with port",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=\"[2001:db8:cafe::17]:4711\""],
            expect: .environ(set: ["REMOTE_ADDR": "2001:db8:cafe::17", "REMOTE_HOST": "2001:db8:cafe::17", "REMOTE_PORT": "4711"], removed: [], warnings: [])),
        ProxyCase(
            "fwd ipv6 no port",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "For=\"[2001:db8:cafe::17]\""],
            expect: .environ(set: ["REMOTE_ADDR": "2001:db8:cafe::17", "REMOTE_HOST": "2001:db8:cafe::17"], removed: [], warnings: [])),
        ProxyCase(
            "fwd unquoted ipv6",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=2001:db8::1"],
            expect: .environ(set: ["REMOTE_ADDR": "2001:db8:", "REMOTE_HOST": "2001:db8:", "REMOTE_PORT": "1"], removed: [], warnings: [])),
        ProxyCase(
            "fwd ipv4 with port",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=\"192.0.2.43:47011\""],
            expect: .environ(set: ["REMOTE_ADDR": "192.0.2.43", "REMOTE_HOST": "192.0.2.43", "REMOTE_PORT": "47011"], removed: [], warnings: [])),
        ProxyCase(
            "fwd obfuscated",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=_HIDDEN;by=_SEVKISEK"],
            expect: .environ(set: ["REMOTE_ADDR": "_hidden", "REMOTE_HOST": "_hidden"], removed: [], warnings: [])),
        ProxyCase(
            "fwd obfuscated with port",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=\"_gazonk:_p1\""],
            expect: .environ(set: ["REMOTE_ADDR": "_gazonk", "REMOTE_HOST": "_gazonk", "REMOTE_PORT": "_p1"], removed: [], warnings: [])),
        ProxyCase(
            "fwd unknown",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=unknown"],
            expect: .environ(set: ["REMOTE_ADDR": "unknown", "REMOTE_HOST": "unknown"], removed: [], warnings: [])),
        ProxyCase(
            "fwd host lowercased",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "host=Example.COM"],
            expect: .environ(set: ["HTTP_HOST": "example.com", "SERVER_NAME": "example.com"], removed: [], warnings: [])),
        ProxyCase(
            "fwd host port proto",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "host=\"example.com:8443\";proto=https"],
            expect: .environ(set: ["HTTP_HOST": "example.com:8443", "SERVER_NAME": "example.com", "SERVER_PORT": "8443", "wsgi.url_scheme": "https"], removed: [], warnings: [])),
        ProxyCase(
            "fwd host proto https",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "host=example.com;proto=HTTPS"],
            expect: .environ(set: ["HTTP_HOST": "example.com", "SERVER_NAME": "example.com", "SERVER_PORT": "443", "wsgi.url_scheme": "https"], removed: [], warnings: [])),
        ProxyCase(
            "fwd host only under https",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            scheme: "https",
            headers: ["FORWARDED": "host=example.com"],
            expect: .environ(set: ["HTTP_HOST": "example.com", "SERVER_NAME": "example.com"], removed: [], warnings: [])),
        ProxyCase(
            "fwd all params",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=198.51.100.2;host=example.com;proto=https;by=10.0.0.3"],
            expect: .environ(set: ["HTTP_HOST": "example.com", "REMOTE_ADDR": "198.51.100.2", "REMOTE_HOST": "198.51.100.2", "SERVER_NAME": "example.com", "SERVER_PORT": "443", "wsgi.url_scheme": "https"], removed: [], warnings: [])),
        ProxyCase(
            "fwd two elements count 1",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=198.51.100.2;host=example.com;proto=https, for=10.0.0.3;host=internal:8080"],
            expect: .environ(set: ["HTTP_FORWARDED": "for=10.0.0.3;host=internal:8080", "HTTP_HOST": "internal:8080", "REMOTE_ADDR": "10.0.0.3", "REMOTE_HOST": "10.0.0.3", "SERVER_NAME": "internal", "SERVER_PORT": "8080"], removed: [], warnings: [])),
        ProxyCase(
            "fwd two elements count 2",
            proxy: "192.168.1.1",
            count: 2,
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=198.51.100.2;host=example.com;proto=https, for=10.0.0.3;host=internal:8080"],
            expect: .environ(set: ["HTTP_HOST": "example.com", "REMOTE_ADDR": "198.51.100.2", "REMOTE_HOST": "198.51.100.2", "SERVER_NAME": "example.com", "SERVER_PORT": "443", "wsgi.url_scheme": "https"], removed: [], warnings: [])),
        ProxyCase(
            "fwd oldest trusted value wins per param",
            proxy: "192.168.1.1",
            count: 3,
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=1.1.1.1, for=2.2.2.2;host=a.example, proto=https;host=b.example, for=4.4.4.4"],
            expect: .environ(set: ["HTTP_FORWARDED": "for=2.2.2.2;host=a.example, proto=https;host=b.example, for=4.4.4.4", "HTTP_HOST": "a.example", "REMOTE_ADDR": "2.2.2.2", "REMOTE_HOST": "2.2.2.2", "SERVER_NAME": "a.example", "SERVER_PORT": "443", "wsgi.url_scheme": "https"], removed: [], warnings: [])),
        ProxyCase(
            "fwd count 0 uses all",
            proxy: "192.168.1.1",
            count: 0,
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=1.1.1.1;proto=https, for=2.2.2.2;host=h"],
            expect: .environ(set: ["HTTP_HOST": "h", "REMOTE_ADDR": "1.1.1.1", "REMOTE_HOST": "1.1.1.1", "SERVER_NAME": "h", "SERVER_PORT": "443", "wsgi.url_scheme": "https"], removed: [], warnings: [])),
        ProxyCase(
            "fwd count -1 single element",
            proxy: "192.168.1.1",
            count: -1,
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "host=a.example;for=1.2.3.4;proto=https"],
            expect: .environ(set: ["HTTP_FORWARDED": "", "HTTP_HOST": "a.example", "SERVER_NAME": "a.example", "SERVER_PORT": "443", "wsgi.url_scheme": "https"], removed: [], warnings: [])),
        ProxyCase(
            "fwd count -1 two elements",
            proxy: "192.168.1.1",
            count: -1,
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "host=a.example;for=1.2.3.4, for=5.6.7.8"],
            expect: .environ(set: ["HTTP_FORWARDED": "for=5.6.7.8", "REMOTE_ADDR": "5.6.7.8", "REMOTE_HOST": "5.6.7.8"], removed: [], warnings: [])),
        ProxyCase(
            "fwd trailing comma",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=198.51.100.2,"],
            expect: .environ(set: ["HTTP_FORWARDED": ""], removed: [], warnings: [])),
        ProxyCase(
            "fwd trailing comma count 2",
            proxy: "192.168.1.1",
            count: 2,
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=198.51.100.2;host=h.example,"],
            expect: .environ(set: ["HTTP_HOST": "h.example", "REMOTE_ADDR": "198.51.100.2", "REMOTE_HOST": "198.51.100.2", "SERVER_NAME": "h.example"], removed: [], warnings: [])),
        ProxyCase(
            "fwd empty pairs skipped",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": ";;for=198.51.100.2;;"],
            expect: .environ(set: ["REMOTE_ADDR": "198.51.100.2", "REMOTE_HOST": "198.51.100.2"], removed: [], warnings: [])),
        ProxyCase(
            "fwd spaces around element",
            proxy: "192.168.1.1",
            count: 2,
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "  for=1.2.3.4  ,   for=5.6.7.8 "],
            expect: .environ(set: ["HTTP_FORWARDED": "for=1.2.3.4  ,   for=5.6.7.8", "REMOTE_ADDR": "1.2.3.4", "REMOTE_HOST": "1.2.3.4"], removed: [], warnings: [])),
        ProxyCase(
            "fwd missing equals",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for"],
            expect: .badRequest(detail: "Header \"Forwarded\" malformed.", warnings: ["Malformed proxy header \"Forwarded\" from \"192.168.1.1\": Invalid forwarded-pair missing \"=\" value: for"])),
        ProxyCase(
            "fwd space in pair",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=1.2.3.4; proto=https"],
            expect: .badRequest(detail: "Header \"Forwarded\" malformed.", warnings: ["Malformed proxy header \"Forwarded\" from \"192.168.1.1\": Token may not be surrounded by whitespace value: for=1.2.3.4; proto=https"])),
        ProxyCase(
            "fwd space before equals",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for =1.2.3.4"],
            expect: .badRequest(detail: "Header \"Forwarded\" malformed.", warnings: ["Malformed proxy header \"Forwarded\" from \"192.168.1.1\": Token may not be surrounded by whitespace value: for =1.2.3.4"])),
        ProxyCase(
            "fwd space after equals",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for= 1.2.3.4"],
            expect: .badRequest(detail: "Header \"Forwarded\" malformed.", warnings: ["Malformed proxy header \"Forwarded\" from \"192.168.1.1\": Value may not be surrounded by whitespace value: for= 1.2.3.4"])),
        ProxyCase(
            "fwd trailing space in value",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=1.2.3.4 ;proto=http"],
            expect: .badRequest(detail: "Header \"Forwarded\" malformed.", warnings: ["Malformed proxy header \"Forwarded\" from \"192.168.1.1\": Value may not be surrounded by whitespace value: for=1.2.3.4 ;proto=http"])),
        ProxyCase(
            "fwd python whitespace in value",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=1.2.3.4\u{85}"],
            expect: .environ(set: ["HTTP_FORWARDED": "for=1.2.3.4", "REMOTE_ADDR": "1.2.3.4", "REMOTE_HOST": "1.2.3.4"], removed: [], warnings: [])),
        ProxyCase(
            "fwd unknown token warned",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=1.2.3.4;Secret=xyz;proto=https"],
            expect: .environ(set: ["REMOTE_ADDR": "1.2.3.4", "REMOTE_HOST": "1.2.3.4", "SERVER_PORT": "443", "wsgi.url_scheme": "https"], removed: [], warnings: ["Unknown Forwarded token: secret"])),
        ProxyCase(
            "fwd unknown token then error",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "x=1;for=\"bad"],
            expect: .badRequest(detail: "Header \"Forwarded\" malformed.", warnings: ["Unknown Forwarded token: x", "Malformed proxy header \"Forwarded\" from \"192.168.1.1\": Invalid quoting in value value: x=1;for=\"bad"])),
        ProxyCase(
            "fwd unknown token in untrusted element",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "a=1;for=1.1.1.1, b=2;for=2.2.2.2"],
            expect: .environ(set: ["HTTP_FORWARDED": "b=2;for=2.2.2.2", "REMOTE_ADDR": "2.2.2.2", "REMOTE_HOST": "2.2.2.2"], removed: [], warnings: ["Unknown Forwarded token: a", "Unknown Forwarded token: b"])),
        ProxyCase(
            "fwd bad quoting",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=\"1.2.3.4"],
            expect: .badRequest(detail: "Header \"Forwarded\" malformed.", warnings: ["Malformed proxy header \"Forwarded\" from \"192.168.1.1\": Invalid quoting in value value: for=\"1.2.3.4"])),
        ProxyCase(
            "fwd bad quoting in by",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=1.2.3.4;by=\"x"],
            expect: .badRequest(detail: "Header \"Forwarded\" malformed.", warnings: ["Malformed proxy header \"Forwarded\" from \"192.168.1.1\": Invalid quoting in value value: for=1.2.3.4;by=\"x"])),
        ProxyCase(
            "fwd bad quoting in untrusted element",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=\"x, for=1.2.3.4"],
            expect: .badRequest(detail: "Header \"Forwarded\" malformed.", warnings: ["Malformed proxy header \"Forwarded\" from \"192.168.1.1\": Invalid quoting in value value: for=\"x, for=1.2.3.4"])),
        ProxyCase(
            "fwd quoted comma splits",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=\"a,b\""],
            expect: .badRequest(detail: "Header \"Forwarded\" malformed.", warnings: ["Malformed proxy header \"Forwarded\" from \"192.168.1.1\": Invalid quoting in value value: for=\"a,b\""])),
        ProxyCase(
            "fwd quoted semicolon splits",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=\"a;b\""],
            expect: .badRequest(detail: "Header \"Forwarded\" malformed.", warnings: ["Malformed proxy header \"Forwarded\" from \"192.168.1.1\": Invalid quoting in value value: for=\"a;b\""])),
        ProxyCase(
            "fwd equals in value",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=a=b"],
            expect: .environ(set: ["REMOTE_ADDR": "a=b", "REMOTE_HOST": "a=b"], removed: [], warnings: [])),
        ProxyCase(
            "fwd quoted pair",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=\"\\[::1\\]\""],
            expect: .environ(set: ["REMOTE_ADDR": "::1", "REMOTE_HOST": "::1"], removed: [], warnings: [])),
        ProxyCase(
            "fwd proto unsupported",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=1.2.3.4;proto=ftp"],
            expect: .badRequest(detail: "Header \"Forwarded Proto=\" malformed.", warnings: ["Malformed proxy header \"Forwarded Proto=\" from \"192.168.1.1\": unsupported proto value value: ftp"])),
        ProxyCase(
            "fwd proto unsupported in untrusted element",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "proto=ftp, for=1.2.3.4"],
            expect: .environ(set: ["HTTP_FORWARDED": "for=1.2.3.4", "REMOTE_ADDR": "1.2.3.4", "REMOTE_HOST": "1.2.3.4"], removed: [], warnings: [])),
        ProxyCase(
            "fwd proto quoted",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "proto=\"https\""],
            expect: .environ(set: ["SERVER_PORT": "443", "wsgi.url_scheme": "https"], removed: [], warnings: [])),
        ProxyCase(
            "fwd empty header",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            log: true,
            addr: "192.168.1.1",
            headers: ["FORWARDED": ""],
            expect: .environ(set: [:], removed: [], warnings: [])),
        ProxyCase(
            "fwd empty header with proto",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            log: true,
            addr: "192.168.1.1",
            headers: ["FORWARDED": "", "X_FORWARDED_PROTO": "ftp"],
            expect: .environ(set: [:], removed: ["HTTP_X_FORWARDED_PROTO"], warnings: ["Removed untrusted headers (X-Forwarded-Proto). Waitress recommends these be removed upstream."])),
        ProxyCase(
            "fwd trusted absent clears x-forwarded",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            log: true,
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "1.2.3.4", "X_FORWARDED_PROTO": "https"],
            expect: .environ(set: [:], removed: ["HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO"], warnings: ["Removed untrusted headers (X-Forwarded-For, X-Forwarded-Proto). Waitress recommends these be removed upstream."])),
        ProxyCase(
            "fwd trusted, x-forwarded cleared",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            log: true,
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "198.51.100.2", "X_FORWARDED_HOST": "example.com", "X_FORWARDED_PROTO": "https", "X_FORWARDED_PORT": "8443", "X_FORWARDED_BY": "192.168.1.1", "FORWARDED": "for=198.51.100.9"],
            expect: .environ(set: ["REMOTE_ADDR": "198.51.100.9", "REMOTE_HOST": "198.51.100.9"], removed: ["HTTP_X_FORWARDED_BY", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PROTO"], warnings: ["Removed untrusted headers (X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto, X-Forwarded-Port, X-Forwarded-By). Waitress recommends these be removed upstream."])),
        ProxyCase(
            "fwd latin-1 lowercased",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=\u{c0}B\u{de}\u{df}"],
            expect: .environ(set: ["REMOTE_ADDR": "\u{e0}b\u{fe}\u{df}", "REMOTE_HOST": "\u{e0}b\u{fe}\u{df}"], removed: [], warnings: [])),
        ProxyCase(
            "fwd final sigma",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "host=\u{391}\u{3a3}"],
            expect: .environ(set: ["HTTP_HOST": "\u{3b1}\u{3c2}", "SERVER_NAME": "\u{3b1}\u{3c2}"], removed: [], warnings: [])),
        ProxyCase(
            "fwd lone sigma",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "host=\u{3a3}"],
            expect: .environ(set: ["HTTP_HOST": "\u{3c3}", "SERVER_NAME": "\u{3c3}"], removed: [], warnings: [])),
        ProxyCase(
            "fwd sigma then letter",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "host=\u{391}\u{3a3}\u{391}"],
            expect: .environ(set: ["HTTP_HOST": "\u{3b1}\u{3c3}\u{3b1}", "SERVER_NAME": "\u{3b1}\u{3c3}\u{3b1}"], removed: [], warnings: [])),
        ProxyCase(
            "fwd dotted capital I",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "host=\u{130}x"],
            expect: .environ(set: ["HTTP_HOST": "i\u{307}x", "SERVER_NAME": "i\u{307}x"], removed: [], warnings: [])),
        ProxyCase(
            "fwd colon port only",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=\":80\""],
            // Waitress raises IndexError('string index out of range') (a 500); we answer 400.
            expect: .badRequest(detail: "Header \"Forwarded\" malformed.", warnings: ["Malformed proxy header \"Forwarded\" from \"192.168.1.1\": string index out of range value: for=\":80\""])),
        ProxyCase(
            "fwd quoted blank",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=\" \""],
            // Waitress raises IndexError('string index out of range') (a 500); we answer 400.
            expect: .badRequest(detail: "Header \"Forwarded\" malformed.", warnings: ["Malformed proxy header \"Forwarded\" from \"192.168.1.1\": string index out of range value: for=\" \""])),
        ProxyCase(
            "fwd empty brackets",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=\"[]\""],
            expect: .environ(set: ["REMOTE_ADDR": "", "REMOTE_HOST": ""], removed: [], warnings: [])),
        ProxyCase(
            "fwd empty for",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=;host=h.example"],
            expect: .environ(set: ["HTTP_HOST": "h.example", "SERVER_NAME": "h.example"], removed: [], warnings: [])),
        ProxyCase(
            "fwd empty quoted for",
            proxy: "192.168.1.1",
            trust: ["forwarded"],
            addr: "192.168.1.1",
            headers: ["FORWARDED": "for=\"\""],
            expect: .environ(set: [:], removed: [], warnings: [])),
        ProxyCase(
            "both: forwarded wins, xff cleared",
            proxy: "192.168.1.1",
            trust: ["forwarded", "x-forwarded-for"],
            log: true,
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "1.1.1.1", "FORWARDED": "for=2.2.2.2"],
            expect: .environ(set: ["REMOTE_ADDR": "2.2.2.2", "REMOTE_HOST": "2.2.2.2"], removed: ["HTTP_X_FORWARDED_FOR"], warnings: ["Removed untrusted headers (X-Forwarded-For). Waitress recommends these be removed upstream."])),
        ProxyCase(
            "both: forwarded without for keeps xff client",
            proxy: "192.168.1.1",
            trust: ["forwarded", "x-forwarded-for"],
            log: true,
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "1.1.1.1", "FORWARDED": "host=h.example"],
            expect: .environ(set: ["HTTP_HOST": "h.example", "REMOTE_ADDR": "1.1.1.1", "REMOTE_HOST": "1.1.1.1", "SERVER_NAME": "h.example"], removed: ["HTTP_X_FORWARDED_FOR"], warnings: ["Removed untrusted headers (X-Forwarded-For). Waitress recommends these be removed upstream."])),
        ProxyCase(
            "both: xfport dropped by forwarded",
            proxy: "192.168.1.1",
            trust: ["forwarded", "x-forwarded-host", "x-forwarded-port"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_PORT": "8080", "X_FORWARDED_HOST": "x.example", "FORWARDED": "for=2.2.2.2"],
            expect: .environ(set: ["REMOTE_ADDR": "2.2.2.2", "REMOTE_HOST": "2.2.2.2"], removed: ["HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT"], warnings: [])),
        ProxyCase(
            "both: xfport used without forwarded",
            proxy: "192.168.1.1",
            trust: ["forwarded", "x-forwarded-host", "x-forwarded-port"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_PORT": "8080", "X_FORWARDED_HOST": "x.example"],
            expect: .environ(set: ["HTTP_HOST": "x.example:8080", "SERVER_NAME": "x.example", "SERVER_PORT": "8080"], removed: ["HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT"], warnings: [])),
        ProxyCase(
            "both: xfproto unsupported without forwarded",
            proxy: "192.168.1.1",
            trust: ["forwarded", "x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_PROTO": "ftp"],
            expect: .badRequest(detail: "Header \"X-Forwarded-Proto\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-Proto\" from \"192.168.1.1\": unsupported proto value value: ftp"])),
        ProxyCase(
            "both: xfproto overridden by forwarded",
            proxy: "192.168.1.1",
            trust: ["forwarded", "x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_PROTO": "ftp", "FORWARDED": "for=1.2.3.4"],
            expect: .environ(set: ["REMOTE_ADDR": "1.2.3.4", "REMOTE_HOST": "1.2.3.4"], removed: ["HTTP_X_FORWARDED_PROTO"], warnings: [])),
        ProxyCase(
            "both: forwarded proto error names Forwarded",
            proxy: "192.168.1.1",
            trust: ["forwarded", "x-forwarded-proto"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_PROTO": "https", "FORWARDED": "proto=gopher"],
            expect: .badRequest(detail: "Header \"Forwarded Proto=\" malformed.", warnings: ["Malformed proxy header \"Forwarded Proto=\" from \"192.168.1.1\": unsupported proto value value: gopher"])),
        ProxyCase(
            "both: xff crash source",
            proxy: "192.168.1.1",
            trust: ["forwarded", "x-forwarded-for"],
            addr: "192.168.1.1",
            headers: ["X_FORWARDED_FOR": "\" \"", "FORWARDED": "host=h.example"],
            // Waitress raises IndexError('string index out of range') (a 500); we answer 400.
            expect: .badRequest(detail: "Header \"X-Forwarded-For\" malformed.", warnings: ["Malformed proxy header \"X-Forwarded-For\" from \"192.168.1.1\": string index out of range value: \" \""])),
    ]

    // MARK: - Hand-written checks of the API's shape
    //
    // The environ effects expected here were also confirmed against the real
    // middleware; these pin down the Swift types the bridge consumes.

    func testNoProxyHeadersMeansNoChangeEvenWhenTrusted() {
        let config = ProxyConfiguration(
            trustedProxy: "*", trustedProxyHeaders: Set(ProxyHeader.allCases.map(\.rawValue)), logUntrusted: true)
        let input = ProxyInput(remoteAddr: "10.0.0.1", urlScheme: "http")
        XCTAssertEqual(applyProxyHeaders(input, config), .apply(ProxyChanges()))
        XCTAssertTrue(ProxyChanges().isEmpty)
    }

    func testChangesForAFullXForwardedRequest() {
        let config = ProxyConfiguration(
            trustedProxy: "10.0.0.1", trustedProxyCount: 2,
            trustedProxyHeaders: ["x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"], logUntrusted: true)
        let input = ProxyInput(
            remoteAddr: "10.0.0.1", urlScheme: "http",
            headers: [
                .xForwardedFor: "203.0.113.9, 2001:db8::7, 10.0.0.2",
                .xForwardedHost: "example.com:8443, proxy.internal",
                .xForwardedProto: "https",
                .xForwardedBy: "10.0.0.2",
            ])
        let expected = ProxyChanges(
            remoteAddr: "2001:db8::7", serverName: "example.com", serverPort: "8443",
            httpHost: "example.com:8443", urlScheme: "https",
            // Both X-Forwarded-Host hops are trusted: stored back unchanged.
            rewrittenHeaders: [
                .xForwardedFor: "2001:db8::7, 10.0.0.2", .xForwardedHost: "example.com:8443, proxy.internal",
            ],
            removedHeaders: [.xForwardedBy],
            warnings: ["Removed untrusted headers (X-Forwarded-By). Waitress recommends these be removed upstream."])
        guard case .apply(let changes) = applyProxyHeaders(input, config) else {
            return XCTFail("expected changes")
        }
        XCTAssertEqual(changes, expected)
        XCTAssertEqual(
            changes.environAssignments.map { "\($0.key)=\($0.value)" },
            [
                "HTTP_X_FORWARDED_FOR=2001:db8::7, 10.0.0.2", "HTTP_X_FORWARDED_HOST=example.com:8443, proxy.internal",
                "wsgi.url_scheme=https", "SERVER_NAME=example.com", "HTTP_HOST=example.com:8443",
                "SERVER_PORT=8443", "REMOTE_ADDR=2001:db8::7", "REMOTE_HOST=2001:db8::7",
            ])
        XCTAssertEqual(changes.environRemovals, ["HTTP_X_FORWARDED_BY"])
    }

    func testForwardedWithPortSetsRemotePort() {
        let config = ProxyConfiguration(trustedProxy: "localhost", trustedProxyHeaders: ["forwarded"])
        let input = ProxyInput(
            remoteAddr: "localhost", urlScheme: "http",
            headers: [.forwarded: "for=\"[2001:db8:cafe::17]:4711\";proto=https;host=Example.com"])
        XCTAssertEqual(
            applyProxyHeaders(input, config),
            .apply(
                ProxyChanges(
                    remoteAddr: "2001:db8:cafe::17", remotePort: "4711", serverName: "example.com",
                    serverPort: "443", httpHost: "example.com", urlScheme: "https",
                    rewrittenHeaders: [.forwarded: "for=\"[2001:db8:cafe::17]:4711\";proto=https;host=Example.com"])))
    }

    func testRewrittenHeaderThatIsAlsoClearedIsOnlyRemoved() {
        // The bare middleware trusting both kinds: X-Forwarded-For is read,
        // then made untrusted again by trusting Forwarded, and removed.
        let config = ProxyConfiguration(trustedProxy: "*", trustedProxyHeaders: ["x-forwarded-for", "forwarded"])
        let input = ProxyInput(remoteAddr: "10.0.0.1", urlScheme: "http", headers: [.xForwardedFor: "a.b.c.d, 1.2.3.4"])
        guard case .apply(let changes) = applyProxyHeaders(input, config) else { return XCTFail() }
        XCTAssertEqual(changes.remoteAddr, "1.2.3.4")
        XCTAssertEqual(changes.rewrittenHeaders, [:])
        XCTAssertEqual(changes.removedHeaders, [.xForwardedFor])
    }

    func testMalformedCarriesWhatWaitressLogs() {
        let config = ProxyConfiguration(trustedProxy: "10.0.0.1", trustedProxyHeaders: ["forwarded"])
        let input = ProxyInput(remoteAddr: "10.0.0.1", urlScheme: "http", headers: [.forwarded: "for=1.2.3.4;proto=FTP"])
        XCTAssertEqual(
            applyProxyHeaders(input, config),
            .badRequest(
                MalformedProxyHeader(
                    header: "Forwarded Proto=", reason: "unsupported proto value", value: "ftp", remotePeer: "10.0.0.1",
                    warnings: [
                        "Malformed proxy header \"Forwarded Proto=\" from \"10.0.0.1\": unsupported proto value value: ftp"
                    ])))
        let detail = MalformedProxyHeader(header: "X-Forwarded-For", reason: "", value: "", remotePeer: "", warnings: [])
            .detail
        XCTAssertEqual(detail, "Header \"X-Forwarded-For\" malformed.")
        XCTAssertEqual(
            ErrorPage.body(reason: "Bad Request", detail: detail, ident: "waitress"),
            Array("Bad Request\r\n\r\nHeader \"X-Forwarded-For\" malformed.\r\n\r\n(generated by waitress)".utf8))
    }

    func testInputFromWSGIHeaders() {
        let input = ProxyInput(
            remoteAddr: "10.0.0.1", urlScheme: "https",
            wsgiHeaders: [
                (name: "X_FORWARDED_FOR", value: "1.1.1.1"), (name: "HOST", value: "example.com"),
                (name: "X_FORWARDED_FOR", value: "2.2.2.2"), (name: "FORWARDED", value: "for=x"),
                (name: "x_forwarded_proto", value: "https"),
            ])
        XCTAssertEqual(input.headers, [.xForwardedFor: "1.1.1.1, 2.2.2.2", .forwarded: "for=x"])
        XCTAssertEqual(input.urlScheme, "https")
    }

    func testHeaderNames() {
        XCTAssertEqual(
            ProxyHeader.allCases.map(\.rawValue),
            ["x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port", "x-forwarded-by", "forwarded"])
        XCTAssertEqual(
            ProxyHeader.allCases.map(\.environKey),
            [
                "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_PORT",
                "HTTP_X_FORWARDED_BY", "HTTP_FORWARDED",
            ])
        for header in ProxyHeader.allCases {
            XCTAssertEqual(ProxyHeader(wsgiName: header.wsgiName), header)
            XCTAssertEqual(ProxyHeader(environKey: header.environKey), header)
            // Waitress's log spelling: "-".join(part.capitalize() for part in name.split("_"))
            XCTAssertEqual(
                header.displayName,
                header.wsgiName.split(separator: "_").map { $0.prefix(1) + $0.dropFirst().lowercased() }
                    .joined(separator: "-"))
        }
        XCTAssertNil(ProxyHeader(wsgiName: "HOST"))
        XCTAssertNil(ProxyHeader(environKey: "X_FORWARDED_FOR"))
        XCTAssertNil(ProxyHeader(environKey: "HTTP_"))
    }

    func testTrustedProxyMatching() {
        let exact = ProxyConfiguration(trustedProxy: "192.0.2.1")
        XCTAssertTrue(exact.trusts(remoteAddr: "192.0.2.1"))
        XCTAssertFalse(exact.trusts(remoteAddr: "192.0.2.10"))
        XCTAssertFalse(exact.trusts(remoteAddr: " 192.0.2.1"))
        XCTAssertTrue(ProxyConfiguration(trustedProxy: "*").trusts(remoteAddr: "anything"))
        XCTAssertTrue(ProxyConfiguration(trustedProxy: "localhost").trusts(remoteAddr: "localhost"))
        XCTAssertFalse(ProxyConfiguration(trustedProxy: "localhost").trusts(remoteAddr: "127.0.0.1"))
        XCTAssertFalse(ProxyConfiguration().trusts(remoteAddr: "127.0.0.1"))
        // Code points, not canonical equivalence: "é" precomposed is not "e" + U+0301.
        XCTAssertFalse(ProxyConfiguration(trustedProxy: "\u{e9}").trusts(remoteAddr: "e\u{301}"))
    }

    func testDefaultsAreTheMiddlewares() {
        let config = ProxyConfiguration()
        XCTAssertNil(config.trustedProxy)
        XCTAssertEqual(config.trustedProxyCount, 1)
        XCTAssertEqual(config.trustedProxyHeaders, [])
        XCTAssertTrue(config.clearUntrustedHeaders)
        XCTAssertFalse(config.logUntrusted)
    }

    // MARK: - The Python-semantics helpers

    func testUndquote() throws {
        func undquote(_ text: String) -> String? {
            (try? ProxyQuoting.undquote(ProxyText.scalars(text))).map { ProxyText.string($0) }
        }
        // Recorded from waitress.utilities.undquote (None = ValueError).
        let table: [(String, String?)] = [
            ("", ""), ("abc", "abc"), ("\"\"", ""), ("\"abc\"", "abc"), ("\"a b\tc\"", "a b\tc"),
            ("\"a\\\"b\"", "a\"b"), ("\"a\\\\b\"", "a\\b"), ("\"\\a\"", "a"), ("\"a\\ b\"", "a b"),
            ("\"\u{e9}\\\u{ff}\"", "\u{e9}\u{ff}"), ("\"", nil), ("\"abc", nil), ("abc\"", nil),
            ("\"a\"b\"", nil), ("\"ab\\\"", nil), ("\"a\\\"", nil), ("\"a\u{1}b\"", nil), ("\"a\u{7f}\"", nil),
            ("\"\u{100}\"", nil), ("\"a\\\u{1}\"", nil), ("\"\\\"", nil), ("a\"b", "a\"b"), ("a\\b", "a\\b"),
            ("\"\"\"", nil), ("\"\\\"\"", "\""),
        ]
        for (input, expected) in table {
            XCTAssertEqual(undquote(input), expected, input.debugDescription)
        }
    }

    func testPythonStrip() {
        func strip(_ text: String) -> String { ProxyText.string(ProxyText.strip(ProxyText.scalars(text))) }
        XCTAssertEqual(strip(" \t\n\u{b}\u{c}\r\u{1c}\u{1d}\u{1e}\u{1f}\u{85}\u{a0}x\u{3000}\u{2028}"), "x")
        XCTAssertEqual(strip("\u{1}x\u{200b}"), "\u{1}x\u{200b}")  // not whitespace to Python
        XCTAssertEqual(strip("   "), "")
        XCTAssertEqual(strip(""), "")
        // Every code point Python's str.isspace() accepts, and no other below U+3001.
        let pythonSpaces: Set<UInt32> = [
            0x9, 0xA, 0xB, 0xC, 0xD, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003,
            0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
        ]
        for value in UInt32(0)...0x3001 {
            guard let scalar = Unicode.Scalar(value) else { continue }
            XCTAssertEqual(ProxyText.isSpace(scalar), pythonSpaces.contains(value), "U+\(String(value, radix: 16))")
        }
    }

    func testPythonLower() {
        func lower(_ text: String) -> [UInt32] { ProxyText.lower(ProxyText.scalars(text)).map(\.value) }
        XCTAssertEqual(lower("FoR=ABC"), Array("for=abc".unicodeScalars.map(\.value)))
        // Latin-1: U+00C0...U+00DE except U+00D7 map down by 0x20; ß, µ, ÿ stay.
        for value in UInt32(0x80)...0xFF {
            let expected = (0xC0...0xDE).contains(value) && value != 0xD7 ? value + 0x20 : value
            XCTAssertEqual(lower(String(Unicode.Scalar(value)!)), [expected], "U+\(String(value, radix: 16))")
        }
        XCTAssertEqual(lower("\u{130}"), [0x69, 0x307])
        XCTAssertEqual(lower("\u{3a3}"), [0x3C3])
        XCTAssertEqual(lower("\u{391}\u{3a3}"), [0x3B1, 0x3C2])
        XCTAssertEqual(lower("\u{391}\u{3a3} x"), [0x3B1, 0x3C2, 0x20, 0x78])
        XCTAssertEqual(lower("\u{391}\u{3a3}\u{391}"), [0x3B1, 0x3C3, 0x3B1])
        XCTAssertEqual(lower("\u{391}'\u{3a3}'"), [0x3B1, 0x27, 0x3C2, 0x27])  // apostrophe is case-ignorable
    }

    func testPythonSplitAndSlices() {
        func split(_ text: String) -> [String] {
            ProxyText.split(ProxyText.scalars(text), on: ",").map { ProxyText.string($0) }
        }
        XCTAssertEqual(split(""), [""])
        XCTAssertEqual(split(","), ["", ""])
        XCTAssertEqual(split("a, b,,c"), ["a", " b", "", "c"])
        let hops = [1, 2, 3]
        // Python's hops[-n:] for n in -4...4.
        let expected: [Int: [Int]] = [
            -4: [], -3: [], -2: [3], -1: [2, 3], 0: [1, 2, 3], 1: [3], 2: [2, 3], 3: [1, 2, 3], 4: [1, 2, 3],
        ]
        for (count, kept) in expected {
            XCTAssertEqual(Array(ProxyHops.trusted(hops, count: count)), kept, "count \(count)")
        }
        XCTAssertEqual(Array(ProxyHops.trusted(hops, count: .min)), [])
        XCTAssertEqual(Array(ProxyHops.trusted(hops, count: .max)), [1, 2, 3])
    }
}

/// One recorded run of Waitress's middleware.
struct ProxyCase {
    enum Expected: CustomStringConvertible {
        case environ(set: [String: String], removed: [String], warnings: [String])
        case badRequest(detail: String, warnings: [String])

        var warnings: [String] {
            switch self {
            case .environ(_, _, let warnings), .badRequest(_, let warnings): return warnings
            }
        }

        var description: String {
            switch self {
            case .environ(let set, let removed, _): return "environ set \(set) removed \(removed)"
            case .badRequest(let detail, _): return "400 \(detail)"
            }
        }
    }

    let name: String
    let config: ProxyConfiguration
    let input: ProxyInput
    let expect: Expected

    init(
        _ name: String, proxy: String?, count: Int = 1, trust: Set<String> = [], clear: Bool = true,
        log: Bool = false, addr: String, scheme: String = "http", headers: [String: String], expect: Expected
    ) {
        self.name = name
        config = ProxyConfiguration(
            trustedProxy: proxy, trustedProxyCount: count, trustedProxyHeaders: trust, clearUntrustedHeaders: clear,
            logUntrusted: log)
        input = ProxyInput(
            remoteAddr: addr, urlScheme: scheme,
            wsgiHeaders: headers.map { (name: $0.key, value: $0.value) })
        precondition(input.headers.count == headers.count, "\(name): every header is a proxy header")
        self.expect = expect
    }

    /// The environ the recording started from (Waitress's task.py keys the
    /// middleware touches, plus the request's proxy headers).
    var baseEnviron: [String: String] {
        var environ = [
            "REMOTE_ADDR": input.remoteAddr, "REMOTE_HOST": input.remoteAddr, "REMOTE_PORT": "5555",
            "SERVER_NAME": "localhost", "SERVER_PORT": "6543", "HTTP_HOST": "localhost:6543",
            "wsgi.url_scheme": input.urlScheme,
        ]
        for (header, value) in input.headers { environ[header.environKey] = value }
        return environ
    }

    /// Applies the changes as the bridge will, and reports what differs from
    /// the base environ the way the recording did.
    func environDiff(after changes: ProxyChanges) -> (set: [String: String], removed: [String]) {
        let base = baseEnviron
        var environ = base
        for (key, value) in changes.environAssignments { environ[key] = value }
        for key in changes.environRemovals { environ[key] = nil }
        // Compare code points, as Python does (String == is canonical equivalence).
        let set = environ.filter { key, value in
            base[key].map { !$0.unicodeScalars.elementsEqual(value.unicodeScalars) } ?? true
        }
        return (set, base.keys.filter { environ[$0] == nil }.sorted())
    }
}
