/// An RPC method with its types erased, e.g. for a table of every method a server serves.
public protocol MethodDescribing: Sendable {
    /// `"/vpcep.v1.Inventory/CreateVpc"`: `/` package `.` service `/` method.
    var path: String { get }
    var kind: MethodKind { get }
    /// The schema's `idempotency_level` for the method.
    var idempotency: MethodIdempotency { get }
}

/// One RPC method of the vpcep API with its request and response types.
///
/// The generated `<Service>API` enums hold one per rpc, e.g. `InventoryAPI.createVpc`.
public struct MethodDescriptor<Request: ProtoMessage, Response: ProtoMessage>: Sendable, MethodDescribing {
    /// The full service name, e.g. `"vpcep.v1.Inventory"`.
    public let service: String

    /// The method name, e.g. `"CreateVpc"`.
    public let method: String

    public let kind: MethodKind

    /// From the rpc's `option idempotency_level` in proto/.
    public let idempotency: MethodIdempotency

    /// `"/vpcep.v1.Inventory/CreateVpc"`.
    public let path: String

    public init(service: String, method: String, kind: MethodKind, idempotency: MethodIdempotency = .unknown) {
        self.service = service
        self.method = method
        self.kind = kind
        self.idempotency = idempotency
        self.path = "/\(service)/\(method)"
    }
}
