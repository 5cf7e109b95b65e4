// Text operations with Python `str` semantics, for the proxy-header rules.
//
// Waitress's proxy_headers.py works on Python `str` values: it splits, strips,
// lowercases and compares code points. Swift's `String` works on grapheme
// clusters and compares by canonical equivalence, so a value such as `"\u{301}`
// (a quote followed by a combining accent) would not end with `"` in Python
// but could be judged differently by `String`. To reproduce Waitress exactly,
// these helpers work on arrays of Unicode scalars (= Python code points).
// Request headers reach the environ latin-1 decoded, so in practice every
// scalar is <= U+00FF; the rules still hold for any `str` an application hands
// to the public `proxy_headers_middleware`.

/// A string as Python sees it: a sequence of code points.
typealias ProxyScalars = [Unicode.Scalar]

enum ProxyText {
    static func scalars(_ string: String) -> ProxyScalars {
        Array(string.unicodeScalars)
    }

    static func string<S: Sequence>(_ scalars: S) -> String where S.Element == Unicode.Scalar {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    /// Python's `str.isspace()`: White_Space plus the information separators
    /// U+001C...U+001F, which Python counts as whitespace (bidirectional class
    /// B or S) although Unicode's White_Space property does not.
    static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0: return true
        case 0..<0x100: return false
        case 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    /// Python's `str.strip()` with no argument.
    static func strip(_ text: ArraySlice<Unicode.Scalar>) -> ArraySlice<Unicode.Scalar> {
        var start = text.startIndex
        var end = text.endIndex
        while start < end, isSpace(text[start]) { start += 1 }
        while end > start, isSpace(text[end - 1]) { end -= 1 }
        return text[start..<end]
    }

    static func strip(_ text: ProxyScalars) -> ProxyScalars {
        Array(strip(text[...]))
    }

    /// Python's `str.split(separator)`: every piece, empty ones included; at
    /// least one piece.
    static func split(_ text: ProxyScalars, on separator: Unicode.Scalar) -> [ProxyScalars] {
        var pieces: [ProxyScalars] = []
        var current: ProxyScalars = []
        for scalar in text {
            if scalar == separator {
                pieces.append(current)
                current = []
            } else {
                current.append(scalar)
            }
        }
        pieces.append(current)
        return pieces
    }

    /// Python's `str.join` with a one-character separator.
    static func join<C: Collection>(_ pieces: C, with separator: Unicode.Scalar) -> ProxyScalars
    where C.Element == ProxyScalars {
        var joined: ProxyScalars = []
        for (index, piece) in pieces.enumerated() {
            if index > 0 { joined.append(separator) }
            joined.append(contentsOf: piece)
        }
        return joined
    }

    /// Python's `str.rsplit(":", 1)` for a text known to contain a colon:
    /// the parts before and after the last one.
    static func splitAtLastColon(_ text: ProxyScalars) -> (before: ProxyScalars, after: ProxyScalars) {
        let colon = text.lastIndex(of: ":")!
        return (Array(text[..<colon]), Array(text[(colon + 1)...]))
    }

    /// Python's `str.lower()`: the full lowercase mapping of each code point
    /// (so U+0130 becomes two code points), with the Final_Sigma rule for
    /// U+03A3 that CPython applies (Unicode §3.13).
    static func lower(_ text: ProxyScalars) -> ProxyScalars {
        var lowered: ProxyScalars = []
        lowered.reserveCapacity(text.count)
        for (index, scalar) in text.enumerated() {
            switch scalar.value {
            case 0x41...0x5A:
                lowered.append(Unicode.Scalar(scalar.value | 0x20)!)
            case 0..<0x80:
                lowered.append(scalar)
            case 0x3A3:
                lowered.append(isFinalSigma(text, at: index) ? "\u{3C2}" : "\u{3C3}")
            default:
                lowered.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return lowered
    }

    /// CPython's rule: the capital sigma follows a cased letter and is not
    /// followed by one, skipping case-ignorable code points both ways.
    private static func isFinalSigma(_ text: ProxyScalars, at index: Int) -> Bool {
        var before = index - 1
        while before >= 0, text[before].properties.isCaseIgnorable { before -= 1 }
        guard before >= 0, text[before].properties.isCased else { return false }
        var after = index + 1
        while after < text.count, text[after].properties.isCaseIgnorable { after += 1 }
        return after == text.count || !text[after].properties.isCased
    }
}
