import Synchronization
import VPCEPProto
import VPCEPRPC

/// Call handlers running now; the fuzz target checks it is back to zero after each connection.
let liveHandlers = Atomic<Int>(0)

/// A server-streaming method: the API has none, the handler supports them.
let streamMethod = MethodDescriptor<CreateVpcRequest, Vpc>(service: "fuzz.Test", method: "Stream", kind: .serverStreaming)

/// Every method of the API, each with a handler that decodes its real request type, plus
/// `streamMethod`.
func makeRouter() -> RPCRouter {
    var router = RPCRouter()
    let methods: [any MethodDescribing] = InventoryAPI.allMethods + EndpointServicesAPI.allMethods
        + EndpointsAPI.allMethods + QuotasAPI.allMethods + HealthAPI.allMethods + [streamMethod]
    for method in methods {
        guard let method = method as? any FuzzRegistrable else { fatalError("\(method.path) cannot be registered") }
        method.register(into: &router)
    }
    return router
}

/// What a handler does, from its request's encoded size.
enum Behaviour {
    case answer, fail, yieldOnce, waitForCancellation

    init(_ request: some ProtoMessage) {
        let size = (try? request.serializedBytes().count) ?? 0
        self = [.answer, .fail, .yieldOnce, .waitForCancellation][size % 4]
    }

    func perform() async throws {
        switch self {
        case .answer: return
        case .fail: throw VPCEPError(code: .failedPrecondition, reason: "FUZZ_REFUSED", message: "refused on purpose")
        case .yieldOnce: await Task.yield()
        case .waitForCancellation: await CancellationWaiter().wait()
        }
    }
}

protocol FuzzRegistrable {
    func register(into router: inout RPCRouter)
}

extension MethodDescriptor: FuzzRegistrable {
    func register(into router: inout RPCRouter) {
        if kind == .unary {
            router.register(self) { request, _ in
                liveHandlers.add(1, ordering: .relaxed)
                defer { liveHandlers.subtract(1, ordering: .relaxed) }
                try await Behaviour(request).perform()
                return Response()
            }
        } else {
            router.registerServerStreaming(self) { request, _, writer in
                liveHandlers.add(1, ordering: .relaxed)
                defer { liveHandlers.subtract(1, ordering: .relaxed) }
                let count = ((try? request.serializedBytes().count) ?? 0) % 5
                for _ in 0..<count { try await writer.send(Response()) }
                try await Behaviour(request).perform()
            }
        }
    }
}

/// Waits until its task is cancelled. Resumed by the cancelling thread, which here is always the
/// channel's event loop, so the call stays on that loop (no timers, no other threads).
final class CancellationWaiter: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<Void, Never>?, cancelled: Bool)>((nil, false))

    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Bool in
                    if state.cancelled { return true }
                    state.continuation = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let continuation = state.withLock { state in
                state.cancelled = true
                defer { state.continuation = nil }
                return state.continuation
            }
            continuation?.resume()
        }
    }
}
