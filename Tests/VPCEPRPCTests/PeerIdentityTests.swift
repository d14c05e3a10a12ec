import Testing
@testable import VPCEPRPC

@Suite("Peer identity (§1.4)")
struct PeerIdentityTests {
    @Test("the first vpcep:// URI SAN is the identity; other schemes before it do not count")
    func firstVPCEPURI() {
        #expect(PeerIdentity(uriSANs: ["vpcep://tenant/alice"]) == PeerIdentity(kind: .tenant, id: "alice"))
        #expect(PeerIdentity(uriSANs: ["spiffe://example/x", "vpcep://operator/ops"]) == PeerIdentity(kind: .operator, id: "ops"))
        #expect(PeerIdentity(uriSANs: ["vpcep://tenant/alice", "vpcep://tenant/alice"]) == PeerIdentity(kind: .tenant, id: "alice"))
    }

    @Test("no valid identity: none, a malformed first vpcep:// URI (never skipped for a later one), or two identities",
          arguments: [
            [], ["spiffe://example/alice"], ["vpcep://tenant/bad!", "vpcep://tenant/alice"],
            ["vpcep://tenant/a%20b", "vpcep://tenant/alice"], ["vpcep://admin/alice", "vpcep://tenant/alice"],
            ["vpcep://tenant/alice", "vpcep://tenant/bob"], ["vpcep://tenant/alice", "vpcep://tenant/"],
            ["vpcep://tenant/" + String(repeating: "a", count: 65)],
          ])
    func noIdentity(uris: [String]) {
        #expect(PeerIdentity(uriSANs: uris) == nil)
    }
}
