import Foundation

/// The domain: every resource, rule, quota and visibility decision of vpcep. Its state is its store's,
/// apart from a read cache that the store's commit version keeps exact (and that is off for a store
/// that cannot count every commit).
public final class Registry: Sendable {
    let store: any RegistryStore
    let serviceCache: ServiceReadCache
    /// The read cache's default memory budget (`serviceCacheBytes`), in bytes.
    public static let defaultServiceCacheBytes = ServiceReadCache.defaultByteBudget
    /// The regions this registry serves; a call for any other fails with `REGION_NOT_SERVED`.
    public let regions: Set<String>
    private let clock: @Sendable () -> Date
    let makeID: @Sendable () -> String
    /// Follows the change log for every Watch of this registry.
    public let changeFeed: ChangeFeed

    public init(
        store: any RegistryStore, regions: Set<String>, clock: @escaping @Sendable () -> Date = Date.init,
        makeID: @escaping @Sendable () -> String = ResourceID.make,
        changeFeed: ChangeFeedConfiguration = .defaults, serviceCacheBytes: Int = Registry.defaultServiceCacheBytes
    ) {
        serviceCache = ServiceReadCache(byteBudget: serviceCacheBytes)
        self.changeFeed = ChangeFeed(store: store, configuration: changeFeed)
        self.store = store
        self.regions = regions
        self.clock = clock
        self.makeID = makeID
    }

    /// The clock, truncated to the millisecond the store keeps.
    func now() -> Date {
        let milliseconds = (clock().timeIntervalSince1970 * 1000).rounded(.down)
        return Date(timeIntervalSince1970: milliseconds / 1000)
    }

    /// Checks the region and the caller; the first step of every call.
    func scope(_ ctx: CallContext) throws(RegistryError) -> Scope {
        guard regions.contains(ctx.region) else {
            // Region names are not secret; naming them tells the caller what to use instead.
            let named = ctx.region.isEmpty ? "no region" : "region \"\(ctx.region.prefix(64))\""
            throw .invalid(
                .regionNotServed,
                "the call names \(named); this server serves \(regions.sorted().joined(separator: ", "))",
                field: "region")
        }
        switch ctx.caller {
        // (utf8: Foundation's `contains` on String searches through NSString.)
        case .tenant(let id) where id.isEmpty || id.utf8.contains(UInt8(ascii: ":")),
            .operator(let id) where id.isEmpty:
            throw RegistryError(
                code: .permissionDenied, reason: .callerInvalid, message: "the caller identity is not usable")
        default:
            return Scope(region: ctx.region, ownerID: ctx.caller.ownerID, isOperator: ctx.caller.isOperator)
        }
    }

    /// Runs `body` in one store transaction; store failures become `RegistryError`s.
    func write<T: Sendable>(_ body: @Sendable (any RegistryTransaction) async throws -> T) async throws(RegistryError) -> T {
        do {
            let result = try await store.transaction(body)
            // Also after a write that logged nothing: telling the feed costs less than knowing.
            changeFeed.headMoved()
            return result
        } catch {
            throw RegistryError(wrapping: error)
        }
    }

    /// Runs `body` on one consistent snapshot; store failures become `RegistryError`s.
    func read<T: Sendable>(_ body: @Sendable (any RegistryReader) async throws -> T) async throws(RegistryError) -> T {
        do {
            return try await store.read(body)
        } catch {
            throw RegistryError(wrapping: error)
        }
    }
}

/// `""` from the wire means "not given".
func nonEmpty(_ text: String?) -> String? {
    guard let text, !text.isEmpty else { return nil }
    return text
}
