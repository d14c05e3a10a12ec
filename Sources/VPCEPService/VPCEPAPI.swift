import VPCEPProto
import VPCEPRPC
import VPCEPRegistry

/// Every method of the API, bound to the registry.
public enum VPCEPAPI {
    public static func makeRouter(registry: Registry) -> RPCRouter {
        var router = RPCRouter()
        InventoryMethods(registry: registry).register(into: &router)
        EndpointServiceMethods(registry: registry).register(into: &router)
        EndpointMethods(registry: registry).register(into: &router)
        QuotaMethods(registry: registry).register(into: &router)
        HistoryMethods(registry: registry).register(into: &router)
        HealthMethods(registry: registry).register(into: &router)
        return router
    }
}
