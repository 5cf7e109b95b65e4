/// The two HTTP versions the server speaks (RFC 9112 §2.3). A request with a
/// higher HTTP/1.x minor version is answered as HTTP/1.1, as RFC 9110 §2.5 asks.
public enum HTTPVersion: Sendable, Equatable {
    case http10
    case http11

    /// "1.0" or "1.1": the form Waitress's status line and SERVER_PROTOCOL use.
    public var text: StaticString {
        switch self {
        case .http10: return "1.0"
        case .http11: return "1.1"
        }
    }
}
