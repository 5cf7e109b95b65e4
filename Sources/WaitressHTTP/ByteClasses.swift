// Byte classes of RFC 9110 §5.6.2 (tchar) and §5.5 (field-vchar), as lookup
// tables so the parser's inner loops are one load and one compare per byte.

@usableFromInline
let byteClassTable: [UInt8] = {
    var table = [UInt8](repeating: 0, count: 256)
    for b in UInt8(0x21)...UInt8(0x7E) { table[Int(b)] |= ByteClass.fieldValue }
    for b in UInt8(0x80)...UInt8(0xFF) { table[Int(b)] |= ByteClass.fieldValue }
    table[0x20] |= ByteClass.fieldValue
    table[0x09] |= ByteClass.fieldValue
    let tokenPunctuation = Array("!#$%&'*+-.^_`|~".utf8)
    for b in tokenPunctuation { table[Int(b)] |= ByteClass.token }
    for b in UInt8(ascii: "0")...UInt8(ascii: "9") { table[Int(b)] |= ByteClass.token | ByteClass.hexDigit }
    for b in UInt8(ascii: "A")...UInt8(ascii: "Z") { table[Int(b)] |= ByteClass.token }
    for b in UInt8(ascii: "a")...UInt8(ascii: "z") { table[Int(b)] |= ByteClass.token }
    for b in UInt8(ascii: "A")...UInt8(ascii: "F") { table[Int(b)] |= ByteClass.hexDigit }
    for b in UInt8(ascii: "a")...UInt8(ascii: "f") { table[Int(b)] |= ByteClass.hexDigit }
    // request-target: visible ASCII only (RFC 9112 §3.2; non-ASCII is rejected).
    // '#' is left out: a fragment is never part of a request-target, so the
    // request-line scan stops at it and the line is rejected.
    for b in UInt8(0x21)...UInt8(0x7E) where b != UInt8(ascii: "#") { table[Int(b)] |= ByteClass.target }
    // reg-name bytes of RFC 3986 §3.2.2 besides pct-encoded: unreserved and sub-delims.
    for b in Array("-._~!$&'()*+,;=".utf8) { table[Int(b)] |= ByteClass.regName }
    for b in UInt8(ascii: "0")...UInt8(ascii: "9") { table[Int(b)] |= ByteClass.regName }
    for b in UInt8(ascii: "A")...UInt8(ascii: "Z") { table[Int(b)] |= ByteClass.regName }
    for b in UInt8(ascii: "a")...UInt8(ascii: "z") { table[Int(b)] |= ByteClass.regName }
    return table
}()

@usableFromInline
enum ByteClass {
    static let token: UInt8 = 1
    static let fieldValue: UInt8 = 2
    static let hexDigit: UInt8 = 4
    static let target: UInt8 = 8
    static let regName: UInt8 = 16
}

@inline(__always)
func hexValue(_ b: UInt8) -> Int? {
    switch b {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(b &- UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(b &- UInt8(ascii: "a") &+ 10)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(b &- UInt8(ascii: "A") &+ 10)
    default: return nil
    }
}

@inline(__always) @usableFromInline
func asciiLower(_ b: UInt8) -> UInt8 {
    (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) ? b | 0x20 : b
}

@inline(__always)
func asciiUpper(_ b: UInt8) -> UInt8 {
    (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) ? b & ~0x20 : b
}

/// Case-insensitive comparison of an ASCII byte range with a lowercase literal
/// (inlinable: start_response's field checks call it for every app header).
@inlinable @inline(__always)
public func equalsLowercased(_ bytes: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
    guard bytes.count == lower.utf8CodeUnitCount else { return false }
    let literal = lower.utf8Start
    for i in 0..<bytes.count where asciiLower(bytes[i]) != literal[i] {
        return false
    }
    return true
}
