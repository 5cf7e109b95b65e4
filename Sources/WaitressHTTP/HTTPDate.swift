#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// IMF-fixdate (RFC 9110 §5.6.7), the form of Waitress's `build_http_date`:
/// "Sun, 06 Nov 1994 08:49:37 GMT". Formatting is cached per second.
public struct HTTPDateCache {
    private var second: time_t = -1
    private var text: [UInt8] = []

    public init() {}

    public mutating func current() -> [UInt8] {
        let now = time(nil)
        if now != second {
            second = now
            text = Self.format(now)
        }
        return text
    }

    static let days: [StaticString] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    static let months: [StaticString] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    public static func format(_ t: time_t) -> [UInt8] {
        var seconds = t
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var out: [UInt8] = []
        out.reserveCapacity(29)
        func append(_ s: StaticString) { out.append(contentsOf: staticBytes(s)) }
        func two(_ v: Int32) {
            out.append(UInt8(ascii: "0") + UInt8(v / 10))
            out.append(UInt8(ascii: "0") + UInt8(v % 10))
        }
        append(days[Int(parts.tm_wday)])
        append(", ")
        two(parts.tm_mday)
        append(" ")
        append(months[Int(parts.tm_mon)])
        append(" ")
        out.append(contentsOf: Array(String(parts.tm_year + 1900).utf8))
        append(" ")
        two(parts.tm_hour)
        append(":")
        two(parts.tm_min)
        append(":")
        two(parts.tm_sec)
        append(" GMT")
        return out
    }
}
