import Foundation

/// The remembered outcome of a mutation made with an idempotency key, kept for
/// `Registry.idempotencyLifetime` and written in the mutation's own transaction.
public struct IdempotencyRecord: Sendable, Hashable {
    /// The caller's owner key (tenant id or `operator:<name>`), the region and the key: the record's identity.
    public var ownerID: String
    public var region: String
    public var key: String
    /// The registry operation, e.g. `createVPC`.
    public var method: String
    /// The request's arguments as canonical JSON; a retry must match it exactly.
    public var fingerprint: String
    /// The operation's result as JSON, returned again to every retry.
    public var result: String
    public var createdAt: Date
    public var expiresAt: Date

    public init(
        ownerID: String, region: String, key: String, method: String, fingerprint: String, result: String,
        createdAt: Date, expiresAt: Date
    ) {
        self.ownerID = ownerID
        self.region = region
        self.key = key
        self.method = method
        self.fingerprint = fingerprint
        self.result = result
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

/// The result remembered for operations that return nothing (deletes).
struct NoResult: Codable, Sendable {}

/// A request's arguments, encoded in order as one JSON array.
private struct Fingerprint: Encodable {
    let parts: [any Encodable]

    func encode(to encoder: any Encoder) throws {
        var container = encoder.unkeyedContainer()
        for part in parts {
            try container.encode(part)
        }
    }
}

extension Registry {
    /// How long a key's outcome is remembered (choice: one day, ample for any client's retries).
    public static let idempotencyLifetime: TimeInterval = 24 * 60 * 60
    /// How many expired records one keyed write deletes at most: more than it adds, so the table stays bounded.
    static let idempotencyPruneBatch = 32

    /// Runs a mutation in one store transaction, honouring the call's idempotency key: without a key it just
    /// runs; with one, the first successful run's result is stored in the same transaction and every later
    /// call with the key (same caller, same region) gets that result back without running `body` again.
    /// The key with another operation or other arguments is `IDEMPOTENCY_KEY_REUSED`. A failed run stores
    /// nothing. `method` names the operation and `request` lists every argument that shapes its outcome.
    ///
    /// A call whose deadline has passed by the time its transaction begins (it queued behind other
    /// writes) fails with `DEADLINE_EXCEEDED` and changes nothing: its caller has been told so already.
    func write<T: Codable & Sendable>(
        _ ctx: CallContext, _ method: String, request: [any Encodable],
        _ body: @Sendable (any RegistryTransaction) async throws -> T
    ) async throws(RegistryError) -> T {
        let key = ctx.idempotencyKey
        let deadline = ctx.deadline
        guard !key.isEmpty else {
            return try await write { tx in
                try Self.checkDeadline(deadline)
                return try await body(tx)
            }
        }
        try Validation.idempotencyKey(key)
        let fingerprint: String
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            fingerprint = String(decoding: try encoder.encode(Fingerprint(parts: request)), as: UTF8.self)
        } catch {
            throw RegistryError(wrapping: error)
        }
        let ownerID = ctx.caller.ownerID
        let region = ctx.region
        let now = now()
        return try await write { tx in
            try Self.checkDeadline(deadline)
            _ = try await tx.deleteIdempotencyRecords(expiredBy: now, limit: Self.idempotencyPruneBatch)
            if let record = try await tx.idempotencyRecord(ownerID: ownerID, region: region, key: key),
                record.expiresAt > now
            {
                guard record.method == method, record.fingerprint == fingerprint else {
                    throw RegistryError.invalid(
                        .idempotencyKeyReused,
                        "the idempotency key was already used for a different request; use a new key for each request",
                        field: "idempotency_key")
                }
                return try JSONDecoder().decode(T.self, from: Data(record.result.utf8))
            }
            let value = try await body(tx)
            let result = String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
            try await tx.saveIdempotencyRecord(
                IdempotencyRecord(
                    ownerID: ownerID, region: region, key: key, method: method, fingerprint: fingerprint, result: result,
                    createdAt: now, expiresAt: now.addingTimeInterval(Self.idempotencyLifetime)))
            return value
        }
    }

    private static func checkDeadline(_ deadline: ContinuousClock.Instant?) throws(RegistryError) {
        guard let deadline, ContinuousClock.now >= deadline else { return }
        throw RegistryError(
            code: .deadlineExceeded, reason: .deadlineExceeded,
            message: "the call's deadline passed before its change could begin; nothing was changed")
    }

    /// `write(_:_:request:_:)` for operations that return nothing.
    func write(
        _ ctx: CallContext, _ method: String, request: [any Encodable],
        _ body: @Sendable (any RegistryTransaction) async throws -> Void
    ) async throws(RegistryError) {
        _ = try await write(ctx, method, request: request) { tx in
            try await body(tx)
            return NoResult()
        }
    }
}

extension Validation {
    static let maxIdempotencyKey = 128

    /// Idempotency keys: 1-128 printable ASCII characters (space to `~`).
    static func idempotencyKey(_ key: String) throws(RegistryError) {
        guard (1...maxIdempotencyKey).contains(key.utf8.count), key.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else {
            throw .invalid(
                .idempotencyKeyInvalid, "idempotency_key must be 1-128 printable ASCII characters",
                field: "idempotency_key")
        }
    }
}
