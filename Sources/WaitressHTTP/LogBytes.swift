#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A growable byte buffer that access-log lines are written into: raw memory
/// with a count, owned by one value (not copyable), so an append is a bounds
/// check and a copy, with none of an Array's uniqueness checks or generic
/// append paths (measured with callgrind: those were a seventh of a line's
/// cost). The log keeps two: lines are formatted straight into the one waiting
/// to be written, and the writer thread exchanges it for the one it empties.
public struct LogBytes: ~Copyable {
    @usableFromInline var base: UnsafeMutablePointer<UInt8>
    @usableFromInline var capacity: Int
    public private(set) var count = 0

    public init(capacity: Int = 512) {
        self.capacity = max(16, capacity)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    public var isEmpty: Bool { count == 0 }

    /// The bytes written so far, valid until the next change.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    public mutating func removeAll() { count = 0 }

    /// Forgets everything from `newCount` on (a line that was begun and is not kept).
    public mutating func truncate(to newCount: Int) {
        precondition(newCount >= 0 && newCount <= count)
        count = newCount
    }

    /// Exchanges contents with `other` (no bytes are copied).
    public mutating func exchange(with other: inout LogBytes) {
        Swift.swap(&base, &other.base)
        Swift.swap(&capacity, &other.capacity)
        Swift.swap(&count, &other.count)
    }

    @inline(__always)
    public mutating func append(_ byte: UInt8) {
        if count == capacity { grow(1) }
        base[count] = byte
        count += 1
    }

    @inline(__always)
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        guard n > 0 else { return }
        if capacity - count < n { grow(n) }
        UnsafeMutableRawPointer(base + count).copyMemory(from: bytes.baseAddress!, byteCount: n)
        count += n
    }

    @inline(__always)
    public mutating func append(_ text: StaticString) {
        append(staticBytes(text))
    }

    @inline(__always)
    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// The decimal digits of `value` (a `-` first when negative).
    public mutating func append(decimal value: Int) {
        if value < 0 { append(UInt8(ascii: "-")) }
        var rest = value.magnitude
        var digits = 1
        var probe = rest
        while probe >= 10 {
            probe /= 10
            digits += 1
        }
        if capacity - count < digits { grow(digits) }
        var i = count + digits
        repeat {
            i -= 1
            base[i] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
        } while rest > 0
        count += digits
    }

    @usableFromInline
    mutating func grow(_ needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity - count < needed { newCapacity *= 2 }
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }
}
