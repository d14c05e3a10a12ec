/// What the schema says repeating a call does: protobuf's standard method option
/// `idempotency_level` (google/protobuf/descriptor.proto), emitted by scripts/protogen.py into
/// every generated `MethodDescriptor`. The client's retry policy reads it, so which calls are
/// safe to send again is decided once, in proto/, not by a method's name.
public struct MethodIdempotency: Sendable, Hashable, CustomStringConvertible {
    private enum Wrapped: Hashable {
        case unknown
        case noSideEffects
        case idempotent
    }

    private let wrapped: Wrapped

    private init(_ wrapped: Wrapped) {
        self.wrapped = wrapped
    }

    /// No option: the call may change state each time it runs (`IDEMPOTENCY_UNKNOWN`).
    public static let unknown = MethodIdempotency(.unknown)

    /// A read: the call changes nothing (`NO_SIDE_EFFECTS`).
    public static let noSideEffects = MethodIdempotency(.noSideEffects)

    /// Running the call twice has the effect of running it once (`IDEMPOTENT`).
    public static let idempotent = MethodIdempotency(.idempotent)

    /// Whether the call may be sent again without a key when its outcome is unknown.
    public var isSafeToRetry: Bool { wrapped != .unknown }

    /// The option's value as written in proto/.
    public var description: String {
        switch wrapped {
        case .unknown: "IDEMPOTENCY_UNKNOWN"
        case .noSideEffects: "NO_SIDE_EFFECTS"
        case .idempotent: "IDEMPOTENT"
        }
    }
}
