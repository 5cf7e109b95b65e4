// Removing the quotes from a proxy-header value: Waitress's `undquote`
// (utilities.py), which every X-Forwarded-* value and every Forwarded pair
// value passes through.

/// Why `undquote` refused a value. Waitress raises `ValueError` with this text,
/// which ends up in the "Malformed proxy header" log line.
struct InvalidQuoting: Error, Equatable {
    static let reason = "Invalid quoting in value"
}

enum ProxyQuoting {
    /// A value that neither starts nor ends with `"` is returned as it is.
    /// One that both starts and ends with `"` must be exactly one
    /// quoted-string (RFC 7230 §3.2.6): its quotes are removed and each
    /// quoted-pair (`\` and the character after it) becomes that character.
    /// Anything else (a quote at one end only, a stray quote or backslash
    /// inside, a lone `"`) is an error.
    static func undquote(_ value: ProxyScalars) throws(InvalidQuoting) -> ProxyScalars {
        let opens = value.first == "\""
        let closes = value.last == "\""
        if !opens && !closes { return value }
        guard opens && closes && value.count >= 2 else { throw InvalidQuoting() }

        // The quoted-string grammar is unambiguous: `\` can only start a
        // quoted-pair and qdtext never contains `"` or `\`, so one greedy
        // left-to-right scan decides it. The scan must stop exactly on the
        // final quote; a quote it stops on earlier, or a final quote that was
        // taken as the second half of `\"`, means the value is not one
        // quoted-string.
        var unquoted: ProxyScalars = []
        unquoted.reserveCapacity(value.count - 2)
        var index = 1
        while index < value.count {
            let scalar = value[index]
            if isQuotedText(scalar) {
                unquoted.append(scalar)
                index += 1
            } else if scalar == "\\", index + 1 < value.count, isQuotedPairCharacter(value[index + 1]) {
                unquoted.append(value[index + 1])
                index += 2
            } else {
                break
            }
        }
        guard index == value.count - 1 else { throw InvalidQuoting() }
        return unquoted
    }

    /// qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
    private static func isQuotedText(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x20, 0x21, 0x23...0x5B, 0x5D...0x7E, 0x80...0xFF: return true
        default: return false
        }
    }

    /// quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
    private static func isQuotedPairCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x20...0x7E, 0x80...0xFF: return true
        default: return false
        }
    }
}
