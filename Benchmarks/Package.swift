// swift-tools-version:6.1
// The benchmark harness for vpcep (issue 6). A separate package so that the main build and CI's
// tests never compile gRPC. Run it with Benchmarks/run.sh; see BENCHMARKS.md.
import Foundation
import PackageDescription

// The main package by path; its identity is the name of the folder it was cloned into.
let mainIdentity = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent
let vpcep = Target.Dependency.product(name: "VPCEPClient", package: mainIdentity)
let vpcepSupport = Target.Dependency.product(name: "VPCEPBenchSupport", package: mainIdentity)
let grpcCore = Target.Dependency.product(name: "GRPCCore", package: "grpc-swift-2")
let grpcHTTP2 = Target.Dependency.product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport")

let package = Package(
    name: "vpcep-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", exact: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", exact: "2.9.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // The gRPC peer's service definition over vpcep's own generated messages (no swift-protobuf).
        .target(name: "GRPCPeerService", dependencies: [vpcep, grpcCore]),
        // The few etcd v3 messages of the watch scenario, encoded by hand (no swift-protobuf).
        .target(name: "EtcdWatchAPI", dependencies: [grpcCore]),
        .executableTarget(
            name: "vpcep-grpc-peer",
            dependencies: ["GRPCPeerService", vpcep, vpcepSupport, grpcCore, grpcHTTP2]
        ),
        // Issue 14's scale scenario: seeds a store through the registry and measures; no gRPC, so it
        // builds with the main package alone (Benchmarks/scale.sh).
        .executableTarget(name: "vpcep-scale", dependencies: [vpcep, vpcepSupport]),
        .executableTarget(
            name: "vpcep-bench",
            dependencies: [
                "GRPCPeerService", "EtcdWatchAPI", vpcep, vpcepSupport, grpcCore, grpcHTTP2,
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ]
)
