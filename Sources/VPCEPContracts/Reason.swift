/// A stable, machine-readable error reason (e.g. `QUOTA_EXCEEDED`): what scripts, the client's retry
/// policy and the CLI's hints match on. Every reason the server, the client or the CLI produces is a
/// constant here, listed in docs/DOMAIN.md or docs/PROTOCOL.md; a reason read off the wire that this
/// build does not know (a newer server's) is kept as its raw string.
///
/// Deliberately not `ExpressibleByStringLiteral`, so a reason cannot be spelled as a bare literal.
public struct Reason: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The bytes on the wire, e.g. `QUOTA_EXCEEDED`.
    public let rawValue: String

    /// Whether a call that failed with this reason provably never reached or never started on the
    /// server, whatever the method, so it is safe to send again (even a write without an idempotency key).
    public let wasNeverProcessed: Bool

    private init(_ rawValue: String, neverProcessed: Bool = false) {
        self.rawValue = rawValue
        self.wasNeverProcessed = neverProcessed
    }

    /// A reason read off the wire: a known one gets its constant's properties, an unknown one none.
    public init(rawValue: String) {
        self = Self.byRawValue[rawValue] ?? Reason(rawValue)
    }

    // Identity is the wire string alone; the flags follow from it.
    public static func == (lhs: Reason, rhs: Reason) -> Bool { lhs.rawValue == rhs.rawValue }
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    public var description: String { rawValue }
}

// MARK: - The RPC runtime: server and client (docs/PROTOCOL.md §5, §9)

extension Reason {
    /// The empty reason of a call that succeeded.
    public static let ok = Reason("")

    /// The call header could not be read (PROTOCOL §3.2).
    public static let malformedCallHeader = Reason("MALFORMED_CALL_HEADER")
    /// The request bytes are not a valid message of the method's type.
    public static let malformedRequest = Reason("MALFORMED_REQUEST")
    /// The request id is not acceptable (PROTOCOL §4.3).
    public static let requestIDInvalid = Reason("REQUEST_ID_INVALID")
    /// No such method (PROTOCOL §4.2).
    public static let methodNotFound = Reason("METHOD_NOT_FOUND")
    /// The client certificate names no identity (PROTOCOL §1.4).
    public static let certificateIdentityMissing = Reason("CERTIFICATE_IDENTITY_MISSING")
    /// The connection already runs as many calls as the server allows (PROTOCOL §8).
    public static let tooManyConcurrentCalls = Reason("TOO_MANY_CONCURRENT_CALLS")
    /// A frame is larger than the limit.
    public static let frameTooLarge = Reason("FRAME_TOO_LARGE")
    /// The peer broke the framing protocol.
    public static let protocolViolation = Reason("PROTOCOL_VIOLATION")
    /// The call's deadline passed.
    public static let deadlineExceeded = Reason("DEADLINE_EXCEEDED")
    /// The caller cancelled the call.
    public static let cancelled = Reason("CANCELLED")
    /// The call arrived after the server's GOAWAY; the server did nothing for it.
    public static let serverGoingAway = Reason("SERVER_GOING_AWAY", neverProcessed: true)
    /// The server holds more unsent responses than its budget; it did nothing for the call.
    public static let serverOverloaded = Reason("SERVER_OVERLOADED", neverProcessed: true)
    /// The server is shutting down (GOAWAY status, PROTOCOL §7).
    public static let serverShuttingDown = Reason("SERVER_SHUTTING_DOWN")
    /// The server shut down before the call finished.
    public static let shutdownGraceExpired = Reason("SHUTDOWN_GRACE_EXPIRED")
    /// The server closed a connection that stayed idle too long.
    public static let idleTimeout = Reason("IDLE_TIMEOUT")
    /// A bug; the message names the request id to look for in the server log.
    public static let internalError = Reason("INTERNAL")
    /// A failure the runtime cannot classify.
    public static let unknown = Reason("UNKNOWN")

    /// The client could not connect; the server never saw the call.
    public static let connectionFailed = Reason("CONNECTION_FAILED", neverProcessed: true)
    /// The connection to the server closed while the call was open.
    public static let connectionClosed = Reason("CONNECTION_CLOSED")
    /// The TLS handshake failed for another reason than a certificate.
    public static let tlsHandshakeFailed = Reason("TLS_HANDSHAKE_FAILED")
    /// The server's certificate did not verify against the client's CA or name.
    public static let serverCertificateInvalid = Reason("SERVER_CERTIFICATE_INVALID")
    /// The server refused the client's certificate.
    public static let clientCertificateRejected = Reason("CLIENT_CERTIFICATE_REJECTED")
    /// The server's response could not be decoded.
    public static let malformedResponse = Reason("MALFORMED_RESPONSE")
    /// The server's status could not be decoded.
    public static let malformedStatus = Reason("MALFORMED_STATUS")
    /// A unary call ended OK without a response message.
    public static let missingResponse = Reason("MISSING_RESPONSE")
    /// The connection used up its call ids.
    public static let callIDsExhausted = Reason("CALL_IDS_EXHAUSTED")
    /// The server stopped answering keepalive pings.
    public static let keepaliveTimeout = Reason("KEEPALIVE_TIMEOUT")
    /// The request could not be encoded; nothing was sent.
    public static let unencodableRequest = Reason("UNENCODABLE_REQUEST")
}

// MARK: - The registry (docs/DOMAIN.md)

extension Reason {
    /// The call names a region this server does not serve.
    public static let regionNotServed = Reason("REGION_NOT_SERVED")
    /// The caller's identity cannot be used.
    public static let callerInvalid = Reason("CALLER_INVALID")
    /// The change conflicted with a concurrent one; retry.
    public static let concurrentModification = Reason("CONCURRENT_MODIFICATION")
    /// The registry store is unavailable; retry later.
    public static let storeUnavailable = Reason("STORE_UNAVAILABLE")
    /// The registry store failed.
    public static let storeFailure = Reason("STORE_FAILURE")
    /// A stored record cannot be read back.
    public static let storedDataInvalid = Reason("STORED_DATA_INVALID")
    /// An enum field holds a value the server does not know.
    public static let enumValueUnknown = Reason("ENUM_VALUE_UNKNOWN")

    /// The idempotency key is not 1-128 printable ASCII characters.
    public static let idempotencyKeyInvalid = Reason("IDEMPOTENCY_KEY_INVALID")
    /// The idempotency key was used before for a different request.
    public static let idempotencyKeyReused = Reason("IDEMPOTENCY_KEY_REUSED")

    /// A name is not 1-64 allowed characters.
    public static let nameInvalid = Reason("NAME_INVALID")
    /// A service name is not 0-16 allowed characters.
    public static let serviceNameInvalid = Reason("SERVICE_NAME_INVALID")
    /// A description is too long or holds forbidden characters.
    public static let descriptionInvalid = Reason("DESCRIPTION_INVALID")
    /// A request message or a decision's reason is too long or holds forbidden characters.
    public static let messageInvalid = Reason("MESSAGE_INVALID")
    /// A CIDR's prefix length is out of range.
    public static let cidrPrefixOutOfRange = Reason("CIDR_PREFIX_OUT_OF_RANGE")
    /// Not a CIDR.
    public static let cidrInvalid = Reason("CIDR_INVALID")
    /// A CIDR has bits set beyond its prefix length.
    public static let cidrHostBitsSet = Reason("CIDR_HOST_BITS_SET")
    /// Too many ingress CIDRs.
    public static let tooManyIngressCIDRs = Reason("TOO_MANY_INGRESS_CIDRS")
    /// No port mapping given.
    public static let portMappingsRequired = Reason("PORT_MAPPINGS_REQUIRED")
    /// Too many port mappings.
    public static let tooManyPortMappings = Reason("TOO_MANY_PORT_MAPPINGS")
    /// A port is not 1-65535.
    public static let portOutOfRange = Reason("PORT_OUT_OF_RANGE")
    /// A port mapping's protocol is not TCP.
    public static let protocolUnsupported = Reason("PROTOCOL_UNSUPPORTED")
    /// A terminal port appears twice.
    public static let portMappingDuplicate = Reason("PORT_MAPPING_DUPLICATE")
    /// Too many tags.
    public static let tooManyTags = Reason("TOO_MANY_TAGS")
    /// A tag key or value is not well formed.
    public static let tagInvalid = Reason("TAG_INVALID")
    /// A tag key appears twice.
    public static let tagDuplicateKey = Reason("TAG_DUPLICATE_KEY")
    /// A tag filter is not well formed.
    public static let tagFilterInvalid = Reason("TAG_FILTER_INVALID")
    /// Too many tag filter keys or values.
    public static let tooManyTagFilters = Reason("TOO_MANY_TAG_FILTERS")
    /// No permission entry given.
    public static let permissionsRequired = Reason("PERMISSIONS_REQUIRED")
    /// Too many permission entries in one request.
    public static let tooManyPermissions = Reason("TOO_MANY_PERMISSIONS")
    /// A permission entry is not `*` or `iam:domain::<tenant-id>`.
    public static let permissionInvalid = Reason("PERMISSION_INVALID")
    /// A permission entry appears twice.
    public static let permissionDuplicate = Reason("PERMISSION_DUPLICATE")
    /// The service's allow-list would exceed its limit.
    public static let permissionLimitExceeded = Reason("PERMISSION_LIMIT_EXCEEDED")
    /// Too many whitelist entries.
    public static let tooManyWhitelistEntries = Reason("TOO_MANY_WHITELIST_ENTRIES")
    /// A page limit is out of range.
    public static let limitOutOfRange = Reason("LIMIT_OUT_OF_RANGE")
    /// A page offset is negative.
    public static let offsetOutOfRange = Reason("OFFSET_OUT_OF_RANGE")
    /// A sort key is not created_at or updated_at.
    public static let sortKeyInvalid = Reason("SORT_KEY_INVALID")
    /// A sort direction is not asc or desc.
    public static let sortDirInvalid = Reason("SORT_DIR_INVALID")
    /// A page token is not one this server issued.
    public static let pageTokenInvalid = Reason("PAGE_TOKEN_INVALID")
    /// A page token was issued for another query (other filters, order, region or list).
    public static let pageTokenMismatch = Reason("PAGE_TOKEN_MISMATCH")
    /// A page token and an offset were given together.
    public static let pageTokenWithOffset = Reason("PAGE_TOKEN_WITH_OFFSET")
    /// A tag add or remove names no tag.
    public static let tagsRequired = Reason("TAGS_REQUIRED")

    /// An id field is empty.
    public static let idRequired = Reason("ID_REQUIRED")
    /// Exactly one of a service's id and name must be given.
    public static let idOrNameRequired = Reason("ID_OR_NAME_REQUIRED")
    /// vpc_id is empty.
    public static let vpcIDRequired = Reason("VPC_ID_REQUIRED")
    /// subnet_id is empty.
    public static let subnetIDRequired = Reason("SUBNET_ID_REQUIRED")
    /// backend_type is missing.
    public static let backendTypeRequired = Reason("BACKEND_TYPE_REQUIRED")
    /// backend_id is empty.
    public static let backendIDRequired = Reason("BACKEND_ID_REQUIRED")
    /// An update names no field to change.
    public static let updateEmpty = Reason("UPDATE_EMPTY")

    /// No such VPC visible to the caller.
    public static let vpcNotFound = Reason("VPC_NOT_FOUND")
    /// No such subnet visible to the caller.
    public static let subnetNotFound = Reason("SUBNET_NOT_FOUND")
    /// No such VM or load balancer visible to the caller.
    public static let backendNotFound = Reason("BACKEND_NOT_FOUND")
    /// No such endpoint service visible to the caller.
    public static let serviceNotFound = Reason("SERVICE_NOT_FOUND")
    /// No such endpoint visible to the caller.
    public static let endpointNotFound = Reason("ENDPOINT_NOT_FOUND")
    /// No such endpoint on this service.
    public static let connectionNotFound = Reason("CONNECTION_NOT_FOUND")

    /// A subnet overlaps the reserved endpoint source range.
    public static let subnetCIDRReserved = Reason("SUBNET_CIDR_RESERVED")
    /// A subnet lies outside its VPC's CIDR.
    public static let subnetCIDROutsideVPC = Reason("SUBNET_CIDR_OUTSIDE_VPC")
    /// A subnet overlaps another subnet of the VPC.
    public static let subnetCIDROverlap = Reason("SUBNET_CIDR_OVERLAP")
    /// Not an IPv4 address.
    public static let ipInvalid = Reason("IP_INVALID")
    /// The address is not inside the subnet.
    public static let ipOutsideSubnet = Reason("IP_OUTSIDE_SUBNET")
    /// The network, gateway or broadcast address was asked for.
    public static let ipReserved = Reason("IP_RESERVED")
    /// The address is already in use in the subnet.
    public static let ipInUse = Reason("IP_IN_USE")
    /// The subnet has no free address.
    public static let subnetFull = Reason("SUBNET_FULL")
    /// The subnet is not in the VPC.
    public static let subnetNotInVPC = Reason("SUBNET_NOT_IN_VPC")
    /// The backend is not in the VPC.
    public static let backendNotInVPC = Reason("BACKEND_NOT_IN_VPC")
    /// The resource is still used by others.
    public static let resourceInUse = Reason("RESOURCE_IN_USE")

    /// Only operators create gateway services.
    public static let gatewayRequiresOperator = Reason("GATEWAY_REQUIRES_OPERATOR")
    /// Only operators create public services.
    public static let publicRequiresOperator = Reason("PUBLIC_REQUIRES_OPERATOR")
    /// Only operators may do this (e.g. set quotas).
    public static let operatorRequired = Reason("OPERATOR_REQUIRED")
    /// Only the owner may change this resource.
    public static let ownerOnly = Reason("OWNER_ONLY")
    /// Another service already uses the backend's port.
    public static let servicePortConflict = Reason("SERVICE_PORT_CONFLICT")
    /// The service's revision is not the one given.
    public static let revisionMismatch = Reason("REVISION_MISMATCH")
    /// The service is not available for this.
    public static let serviceNotAvailable = Reason("SERVICE_NOT_AVAILABLE")
    /// The service still has endpoints.
    public static let serviceInUse = Reason("SERVICE_IN_USE")
    /// The service's allow-list does not admit the caller.
    public static let notAllowedByService = Reason("NOT_ALLOWED_BY_SERVICE")
    /// The allow-list entry that decides for the caller denies it.
    public static let accessDenied = Reason("ACCESS_DENIED")
    /// The allow-list entry that admitted the caller has expired, and no other admits it.
    public static let accessExpired = Reason("ACCESS_EXPIRED")
    /// The caller already holds as many endpoints on the service as its entry's connection limit.
    public static let connectionLimitExceeded = Reason("CONNECTION_LIMIT_EXCEEDED")
    /// An entry's connection limit is out of range.
    public static let connectionLimitOutOfRange = Reason("CONNECTION_LIMIT_OUT_OF_RANGE")
    /// An entry's new expiry time is not in the future.
    public static let expiryInPast = Reason("EXPIRY_IN_PAST")
    /// An entry asks for an action on expiry but has no expiry time.
    public static let expiryRequired = Reason("EXPIRY_REQUIRED")
    /// No endpoint id given.
    public static let endpointIDsRequired = Reason("ENDPOINT_IDS_REQUIRED")
    /// Too many endpoint ids in one request.
    public static let tooManyEndpointIDs = Reason("TOO_MANY_ENDPOINT_IDS")
    /// An endpoint id is empty.
    public static let endpointIDRequired = Reason("ENDPOINT_ID_REQUIRED")
    /// An endpoint id appears twice.
    public static let endpointIDDuplicate = Reason("ENDPOINT_ID_DUPLICATE")
    /// The endpoint's connection state does not allow the decision.
    public static let connectionStateInvalid = Reason("CONNECTION_STATE_INVALID")
    /// The tenant's quota for this resource is used up.
    public static let quotaExceeded = Reason("QUOTA_EXCEEDED")
    /// tenant_id is not 1-64 allowed characters.
    public static let tenantIDInvalid = Reason("TENANT_ID_INVALID")
    /// A quota's type is missing.
    public static let quotaTypeRequired = Reason("QUOTA_TYPE_REQUIRED")
    /// A quota's limit is out of range.
    public static let quotaLimitOutOfRange = Reason("QUOTA_LIMIT_OUT_OF_RANGE")

    /// A history time bound is not an RFC 3339 timestamp.
    public static let timeInvalid = Reason("TIME_INVALID")
    /// A history range ends before it starts.
    public static let historyRangeInvalid = Reason("HISTORY_RANGE_INVALID")
    /// A Watch's after_seq is not used by its start mode.
    public static let watchStartInvalid = Reason("WATCH_START_INVALID")
    /// A Watch resumes after a sequence that retention already removed; start again with a snapshot.
    public static let sequenceCompacted = Reason("SEQUENCE_COMPACTED")
    /// A Watch resumes after a sequence the log has not reached.
    public static let sequenceBeyondHead = Reason("SEQUENCE_BEYOND_HEAD")
    /// A Watch's reader took too long to take its messages; resume after the last sequence it got.
    public static let watchTooSlow = Reason("WATCH_TOO_SLOW")
}

// MARK: - The client library and the CLI (docs/PROTOCOL.md §9)

extension Reason {
    /// The client's TLS settings (CA, certificate, key) cannot be loaded.
    public static let tlsConfigurationInvalid = Reason("TLS_CONFIGURATION_INVALID")
    /// The CLI's own settings are wrong (flags, environment, config file).
    public static let clientConfiguration = Reason("CLIENT_CONFIGURATION")
    /// `--wait` saw the resource settle in a status other than the one waited for.
    public static let statusNotReached = Reason("STATUS_NOT_REACHED")
    /// `--wait` gave up before the resource reached the status.
    public static let waitTimedOut = Reason("WAIT_TIMED_OUT")
}

extension Reason {
    /// Every reason this build knows, for look-ups from the wire and for the docs' completeness test.
    public static let all: [Reason] = [
        .malformedCallHeader, .malformedRequest, .requestIDInvalid, .methodNotFound, .certificateIdentityMissing,
        .tooManyConcurrentCalls, .frameTooLarge, .protocolViolation, .deadlineExceeded, .cancelled,
        .serverGoingAway, .serverOverloaded, .serverShuttingDown, .shutdownGraceExpired, .idleTimeout,
        .internalError, .unknown, .connectionFailed, .connectionClosed, .tlsHandshakeFailed,
        .serverCertificateInvalid, .clientCertificateRejected, .malformedResponse, .malformedStatus,
        .missingResponse, .callIDsExhausted, .keepaliveTimeout, .unencodableRequest,

        .regionNotServed, .callerInvalid, .concurrentModification, .storeUnavailable, .storeFailure,
        .storedDataInvalid, .enumValueUnknown, .idempotencyKeyInvalid, .idempotencyKeyReused,
        .nameInvalid, .serviceNameInvalid, .descriptionInvalid, .messageInvalid, .cidrPrefixOutOfRange, .cidrInvalid,
        .cidrHostBitsSet, .tooManyIngressCIDRs, .portMappingsRequired, .tooManyPortMappings, .portOutOfRange,
        .protocolUnsupported, .portMappingDuplicate, .tooManyTags, .tagInvalid, .tagDuplicateKey,
        .tagFilterInvalid, .tooManyTagFilters, .permissionsRequired, .tooManyPermissions, .permissionInvalid,
        .permissionDuplicate, .permissionLimitExceeded, .tooManyWhitelistEntries, .limitOutOfRange,
        .offsetOutOfRange, .sortKeyInvalid, .sortDirInvalid, .pageTokenInvalid, .pageTokenMismatch,
        .pageTokenWithOffset, .tagsRequired, .idRequired, .idOrNameRequired, .vpcIDRequired,
        .subnetIDRequired, .backendTypeRequired, .backendIDRequired, .updateEmpty, .vpcNotFound,
        .subnetNotFound, .backendNotFound, .serviceNotFound, .endpointNotFound, .connectionNotFound,
        .subnetCIDRReserved, .subnetCIDROutsideVPC, .subnetCIDROverlap, .ipInvalid, .ipOutsideSubnet,
        .ipReserved, .ipInUse, .subnetFull, .subnetNotInVPC, .backendNotInVPC, .resourceInUse,
        .gatewayRequiresOperator, .publicRequiresOperator, .operatorRequired, .ownerOnly, .servicePortConflict,
        .revisionMismatch, .serviceNotAvailable, .serviceInUse, .notAllowedByService, .accessDenied, .accessExpired,
        .connectionLimitExceeded, .connectionLimitOutOfRange, .expiryInPast, .expiryRequired, .endpointIDsRequired,
        .tooManyEndpointIDs, .endpointIDRequired, .endpointIDDuplicate, .connectionStateInvalid,
        .quotaExceeded, .tenantIDInvalid, .quotaTypeRequired, .quotaLimitOutOfRange, .timeInvalid,
        .historyRangeInvalid, .watchStartInvalid, .sequenceCompacted, .sequenceBeyondHead, .watchTooSlow,

        .tlsConfigurationInvalid, .clientConfiguration, .statusNotReached, .waitTimedOut,
    ]

    private static let byRawValue: [String: Reason] = Dictionary(all.map { ($0.rawValue, $0) }, uniquingKeysWith: { a, _ in a })
}
