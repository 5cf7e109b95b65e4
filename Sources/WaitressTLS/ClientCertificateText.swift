import NIOSSL

/// A client certificate as mod_ssl writes it in the environ.
enum ClientCertificateText {
    /// RFC 4514 (RFC 2253) form, mod_ssl's default since 2.3: the most
    /// specific name first ("CN=alice,O=Example"), with `,+"\<>;` and
    /// leading `#` or space escaped.
    static func distinguishedName(_ names: [SSLCertificateName]) -> String {
        names.reversed().map { "\(attributeType($0.type))=\(escaped($0.value))" }.joined(separator: ",")
    }

    static func attributeType(_ type: SSLCertificateNameType) -> String {
        switch type {
        case .commonName: return "CN"
        case .organization: return "O"
        case .organizationalUnit: return "OU"
        case .country: return "C"
        case .state: return "ST"
        case .city: return "L"
        case .emailAddress: return "emailAddress"
        case .userId: return "UID"
        default: return "UNDEF"
        }
    }

    static func escaped(_ value: String) -> String {
        var out = ""
        for (index, character) in value.enumerated() {
            if ",+\"\\<>;".contains(character) || (index == 0 && (character == "#" || character == " ")) {
                out.append("\\")
            }
            out.append(character)
        }
        if out.hasSuffix(" ") && !out.hasSuffix("\\ ") {
            out.removeLast()
            out.append("\\ ")
        }
        return out
    }

    /// PEM ("-----BEGIN CERTIFICATE-----", base64 in lines of 64).
    static func pem(_ der: [UInt8]) -> String {
        let text = base64(der)
        var lines = "-----BEGIN CERTIFICATE-----\n"
        var start = text.startIndex
        while start < text.endIndex {
            let end = text.index(start, offsetBy: 64, limitedBy: text.endIndex) ?? text.endIndex
            lines += text[start..<end] + "\n"
            start = end
        }
        return lines + "-----END CERTIFICATE-----\n"
    }

    static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let b0 = UInt32(bytes[index])
            let b1 = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
            let b2 = index + 2 < bytes.count ? UInt32(bytes[index + 2]) : 0
            let triple = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(triple >> 18 & 63)])
            out.append(alphabet[Int(triple >> 12 & 63)])
            out.append(index + 1 < bytes.count ? alphabet[Int(triple >> 6 & 63)] : UInt8(ascii: "="))
            out.append(index + 2 < bytes.count ? alphabet[Int(triple & 63)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
