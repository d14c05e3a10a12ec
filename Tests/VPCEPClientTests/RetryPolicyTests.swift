import Testing
import VPCEPProto
@testable import VPCEPClient

@Suite("Client retry policy")
struct RetryPolicyTests {
    private let policy = RetryPolicy()
    private let unavailable = VPCEPError(code: .unavailable, reason: .init(rawValue: "CONNECTION_CLOSED"), message: "closed")

    @Test("reads are retried on transient failures; writes only with an idempotency key", arguments: [
        (EndpointServicesAPI.getEndpointService as any MethodDescribing, false, true),
        (InventoryAPI.listVpcs, false, true),
        (EndpointServicesAPI.describeEndpointService, false, true),
        (HealthAPI.whoAmI, false, true),
        (EndpointServicesAPI.createEndpointService, false, false),
        (EndpointServicesAPI.createEndpointService, true, true),
        (EndpointsAPI.deleteEndpoint, false, false),
        (EndpointServicesAPI.acceptConnections, true, true),
    ])
    func safety(method: any MethodDescribing, keyed: Bool, retried: Bool) {
        #expect(policy.shouldRetry(method: method, hasIdempotencyKey: keyed, error: unavailable) == retried)
    }

    @Test("a server certificate that does not verify is not retried, even for a read")
    func certificateNotRetried() {
        let invalid = VPCEPError(code: .unavailable, reason: .serverCertificateInvalid, message: "name mismatch")
        #expect(!policy.shouldRetry(method: InventoryAPI.listVpcs, hasIdempotencyKey: true, error: invalid))
    }

    @Test("the schema's idempotency decides, not the method's name")
    func schemaNotName() {
        let oddRead = MethodDescriptor<WhoAmIRequest, WhoAmIResponse>(
            service: "test.Odd", method: "Frobnicate", kind: .unary, idempotency: .noSideEffects)
        let idempotentWrite = MethodDescriptor<WhoAmIRequest, WhoAmIResponse>(
            service: "test.Odd", method: "PutThing", kind: .unary, idempotency: .idempotent)
        let readLookingWrite = MethodDescriptor<WhoAmIRequest, WhoAmIResponse>(
            service: "test.Odd", method: "GetOrCreateThing", kind: .unary)
        #expect(policy.shouldRetry(method: oddRead, hasIdempotencyKey: false, error: unavailable))
        #expect(policy.shouldRetry(method: idempotentWrite, hasIdempotencyKey: false, error: unavailable))
        #expect(!policy.shouldRetry(method: readLookingWrite, hasIdempotencyKey: false, error: unavailable))
    }

    @Test("a call the server never processed is retried whatever it was")
    func notProcessed() {
        for reason in ["CONNECTION_FAILED", "SERVER_GOING_AWAY", "SERVER_OVERLOADED"] {
            let error = VPCEPError(code: .unavailable, reason: .init(rawValue: reason), message: "")
            #expect(policy.shouldRetry(method: InventoryAPI.createVpc, hasIdempotencyKey: false, error: error))
        }
    }

    @Test("definite answers are never retried")
    func definite() {
        for code in [StatusCode.invalidArgument, .notFound, .permissionDenied, .failedPrecondition, .deadlineExceeded,
                     .unauthenticated, .internalError] {
            let error = VPCEPError(code: code, reason: .init(rawValue: "X"), message: "")
            #expect(!policy.shouldRetry(method: InventoryAPI.listVpcs, hasIdempotencyKey: true, error: error))
        }
        let hinted = VPCEPError(code: .resourceExhausted, reason: .init(rawValue: "TOO_MANY_CONCURRENT_CALLS"), message: "",
                                retryAfter: .milliseconds(100))
        #expect(policy.shouldRetry(method: InventoryAPI.listVpcs, hasIdempotencyKey: false, error: hinted))
        let quota = VPCEPError(code: .resourceExhausted, reason: .init(rawValue: "QUOTA_EXCEEDED"), message: "")
        #expect(!policy.shouldRetry(method: InventoryAPI.listVpcs, hasIdempotencyKey: false, error: quota))
    }

    @Test("backoff grows, stays under the cap, and honours the server's hint")
    func backoff() {
        for attempt in 1...10 {
            let pause = policy.backoff(attempt: attempt, hint: nil)
            #expect(pause <= policy.maxBackoff)
            #expect(pause >= policy.initialBackoff * 0.5)
        }
        #expect(policy.backoff(attempt: 1, hint: .seconds(1)) >= .seconds(1))
        #expect(policy.backoff(attempt: 4, hint: nil) >= .milliseconds(200))
    }
}
