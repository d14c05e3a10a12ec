// swift-tools-version:6.1
// Coverage-guided fuzz targets for vpcep (libFuzzer). A separate package so that the main build
// and CI never compile them; build and run them with scripts/fuzz.sh.
//
// Each target is an executable without a `main`: built with `--sanitize=fuzzer`, libFuzzer
// supplies `main` and calls the target's `LLVMFuzzerTestOneInput`.
import Foundation
import PackageDescription

// The main package by path; its identity is the name of the folder it was cloned into.
let mainIdentity = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent
// VPCEPClient is the smallest product that brings VPCEPRPC, VPCEPWire and VPCEPProto (no SQLite).
let vpcep = Target.Dependency.product(name: "VPCEPClient", package: mainIdentity)
let fuzzEntry: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]

let package = Package(
    name: "vpcep-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // Bytes as the decrypted stream of one server connection: frame decoder, connection state
        // machine, call headers, request decoding of every method, and the handler's timers.
        .executableTarget(
            name: "FuzzServerConnection",
            dependencies: [
                vpcep,
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: fuzzEntry
        ),
        // Bytes decoded as each generated message type; what decodes must re-encode and decode
        // to the same value.
        .executableTarget(name: "FuzzProtoMessages", dependencies: [vpcep], swiftSettings: fuzzEntry),
    ]
)
