/// How an RPC exchanges messages.
public struct MethodKind: Sendable, Hashable, CustomStringConvertible {
    private enum Wrapped: Hashable {
        case unary
        case serverStreaming
    }

    private let wrapped: Wrapped

    private init(_ wrapped: Wrapped) {
        self.wrapped = wrapped
    }

    /// One request, one response.
    public static let unary = MethodKind(.unary)

    /// One request, a stream of responses.
    public static let serverStreaming = MethodKind(.serverStreaming)

    public var description: String {
        switch wrapped {
        case .unary: "unary"
        case .serverStreaming: "server streaming"
        }
    }
}
