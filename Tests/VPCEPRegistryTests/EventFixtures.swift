import Foundation
import VPCEPRegistry

/// Created events of VPCs numbered as their sequences, for the tests of what keeps events in memory.
func vpcCreatedEvents(_ seqs: ClosedRange<UInt64>) -> [ChangeEvent] {
    seqs.map { seq in
        let at = Date(timeIntervalSince1970: 1)
        let vpc = VPC(id: "vpc-\(seq)", name: "v", cidr: "10.0.0.0/16", region: "r1", ownerID: "t", createdAt: at, updatedAt: at)
        return ChangeEvent(seq: seq, type: .created, state: .vpc(vpc), committedAt: at)
    }
}
