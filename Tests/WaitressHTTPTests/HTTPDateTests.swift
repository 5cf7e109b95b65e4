#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import XCTest

@testable import WaitressHTTP

/// IMF-fixdate, as Waitress's build_http_date writes it.
final class HTTPDateTests: XCTestCase {
    func testKnownTimestamps() {
        for (timestamp, expected) in [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_000_000_000, "Sun, 09 Sep 2001 01:46:40 GMT"),
            (1_234_567_890, "Fri, 13 Feb 2009 23:31:30 GMT"),
            (1_700_000_000, "Tue, 14 Nov 2023 22:13:20 GMT"),
            (1_709_251_199, "Thu, 29 Feb 2024 23:59:59 GMT"),
            (2_147_483_647, "Tue, 19 Jan 2038 03:14:07 GMT"),
            (4_102_444_800, "Fri, 01 Jan 2100 00:00:00 GMT"),
            (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ] as [(Int, String)] {
            XCTAssertEqual(latin1String(HTTPDateCache.format(time_t(timestamp))), expected, "\(timestamp)")
        }
    }

    func testEveryMonthAndWeekday() {
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        // The 15th of each month of 2021 at noon; 2021-01-15 was a Friday.
        let days = ["Fri", "Mon", "Mon", "Thu", "Sat", "Tue", "Thu", "Sun", "Wed", "Fri", "Mon", "Wed"]
        var t = 1_610_712_000  // 2021-01-15 12:00:00 UTC
        let monthLengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        for month in 0..<12 {
            XCTAssertEqual(
                latin1String(HTTPDateCache.format(time_t(t))), "\(days[month]), 15 \(months[month]) 2021 12:00:00 GMT")
            t += monthLengths[month] * 86_400
        }
    }

    func testCurrentIsTodayAndCached() {
        var cache = HTTPDateCache()
        let before = time(nil)
        let first = cache.current()
        let after = time(nil)
        XCTAssertEqual(first.count, 29)
        XCTAssertTrue(
            [HTTPDateCache.format(before), HTTPDateCache.format(after)].contains(first), latin1String(first))
        let second = cache.current()
        XCTAssertEqual(second.count, 29)
    }
}
