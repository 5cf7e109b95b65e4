import XCTest
@testable import WaitressHTTP
final class ZZProbeTests: XCTestCase {
    func testProbeManyDistinctNames() {
        var text = "GET / HTTP/1.1\r\n"
        let letters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        var n = 0
        outer: for a in letters { for b in letters { for c in letters { for d in letters {
            text += "\(a)\(b)\(c)\(d):\r\n"; n += 1
            if text.utf8.count > 262_000 { break outer }
        }}}}
        text += "\r\n"
        let bytes = Array(text.utf8)
        var parser = RequestHeadParser(maxHeaderSize: 262_144, maxBodySize: 1 << 30)
        let start = Date()
        let r = bytes.withUnsafeBytes { parser.parse($0) }
        if case .head(let h, _) = r { print("fields", h.fields.count) } else { print(r) }
        print("n", n, "seconds", Date().timeIntervalSince(start))
    }
}
