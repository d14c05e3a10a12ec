// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let nioEmbedded = Target.Dependency.product(name: "NIOEmbedded", package: "swift-nio")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let configuration = Target.Dependency.product(name: "Configuration", package: "swift-configuration")

let package = Package(
    name: "vpcep",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "VPCEPClient", targets: ["VPCEPClient"]),
        // Benchmarks/ only: its SPI (`@_spi(Benchmarks)`), not an API; the messages come from VPCEPClient.
        .library(name: "VPCEPBenchSupport", targets: ["VPCEPBenchSupport"]),
        .executable(name: "vpcep-server", targets: ["vpcep-server"]),
        .executable(name: "vpcep", targets: ["vpcep"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // No traits: the default one (JSON) and the others (YAML, Reloading, …) bring code and
        // dependencies vpcep does not use; TOML comes from VPCEPConfiguration.
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: []),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.25.0"),
    ],
    targets: [
        // C modules: system libraries, the committed protoc-c output, and OpenSSL macro shims.
        .systemLibrary(name: "CProtobufC", pkgConfig: "libprotobuf-c", providers: [.apt(["libprotobuf-c-dev"])]),
        .target(name: "CVPCEPProto", dependencies: ["CProtobufC"]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .target(name: "COpenSSLShims", dependencies: ["COpenSSL"]),
        .target(name: "CSQLiteShims", dependencies: [.product(name: "SQLiteNIO", package: "sqlite-nio")]),

        // Swift layers, bottom up.
        .target(name: "VPCEPContracts", swiftSettings: strict),
        .target(name: "VPCEPProto", dependencies: ["CVPCEPProto", "CProtobufC"], swiftSettings: strict),
        .target(name: "VPCEPWire", dependencies: [nioCore], swiftSettings: strict),
        .target(name: "VPCEPTLS", dependencies: ["COpenSSL", "COpenSSLShims", nioCore, logging], swiftSettings: strict),
        .target(
            name: "VPCEPRPC",
            dependencies: [
                "VPCEPContracts", "VPCEPWire", "VPCEPTLS", "VPCEPProto", nioCore, nioPosix, logging,
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .target(name: "VPCEPRegistry", dependencies: ["VPCEPContracts"], swiftSettings: strict),
        .target(
            name: "VPCEPStoreSQLite",
            dependencies: [
                "VPCEPRegistry", "CSQLiteShims", .product(name: "SQLiteNIO", package: "sqlite-nio"), logging, nioCore, nioPosix,
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "VPCEPStorePostgres",
            dependencies: [
                "VPCEPRegistry", .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), nioCore, logging,
            ],
            swiftSettings: strict
        ),
        .target(
            name: "VPCEPService",
            dependencies: ["VPCEPRPC", "VPCEPRegistry", "VPCEPProto", logging],
            swiftSettings: strict
        ),
        .target(name: "VPCEPClient", dependencies: ["VPCEPContracts", "VPCEPRPC", "VPCEPProto", "VPCEPTLS", nioCore, nioPosix], swiftSettings: strict),

        .target(
            name: "VPCEPBenchSupport",
            dependencies: ["VPCEPService", "VPCEPRegistry", "VPCEPStoreSQLite", "VPCEPRPC", "VPCEPTLS", "VPCEPProto"],
            swiftSettings: strict
        ),

        .target(
            name: "VPCEPConfiguration",
            dependencies: [configuration, .product(name: "TOMLKit", package: "TOMLKit")],
            swiftSettings: strict
        ),
        .target(
            name: "VPCEPAdmin",
            dependencies: [
                nioCore, nioPosix, logging,
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),

        // Executables: wiring only.
        .executableTarget(
            name: "vpcep-server",
            dependencies: [
                "VPCEPService", "VPCEPRegistry", "VPCEPStoreSQLite", "VPCEPStorePostgres", "VPCEPRPC", "VPCEPTLS", "VPCEPAdmin",
                "VPCEPConfiguration",
                argumentParser, configuration, logging, nioCore, nioPosix,
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "vpcep", dependencies: ["VPCEPContracts", "VPCEPClient", "VPCEPConfiguration", argumentParser, configuration],
            swiftSettings: strict
        ),

        // Tests. `VPCEPTestSupport` holds what several test targets share (minted certificates, a real
        // server process, failure expectations, registry fixtures); only test targets depend on it.
        .target(
            name: "VPCEPTestSupport",
            dependencies: [
                "VPCEPClient", "VPCEPTLS", "VPCEPRegistry", "VPCEPStoreSQLite", .product(name: "SQLiteNIO", package: "sqlite-nio"),
            ],
            path: "Tests/VPCEPTestSupport",
            swiftSettings: strict
        ),
        .testTarget(name: "VPCEPProtoTests", dependencies: ["VPCEPProto"], swiftSettings: strict),
        .testTarget(
            name: "VPCEPConfigurationTests",
            dependencies: ["VPCEPConfiguration", configuration, .product(name: "ConfigurationTesting", package: "swift-configuration")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "VPCEPAdminTests",
            dependencies: ["VPCEPAdmin", nioCore, nioPosix, .product(name: "Prometheus", package: "swift-prometheus")],
            swiftSettings: strict
        ),
        .testTarget(name: "VPCEPWireTests", dependencies: ["VPCEPWire", nioCore, nioEmbedded], swiftSettings: strict),
        .testTarget(
            name: "VPCEPTLSTests", dependencies: ["VPCEPTLS", "VPCEPTestSupport", nioCore, nioPosix, nioEmbedded], swiftSettings: strict
        ),
        .testTarget(
            name: "VPCEPRPCTests",
            dependencies: [
                "VPCEPRPC", "VPCEPClient", "VPCEPTLS", "VPCEPWire", "VPCEPProto", "VPCEPTestSupport", nioCore, nioPosix, nioEmbedded,
                logging,
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "VPCEPClientTests", dependencies: ["VPCEPClient"], swiftSettings: strict),
        .testTarget(
            name: "VPCEPRegistryTests",
            dependencies: ["VPCEPRegistry", "VPCEPStoreSQLite", "VPCEPTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "VPCEPStoreSQLiteTests",
            dependencies: [
                "VPCEPStoreSQLite", "VPCEPRegistry", "VPCEPTestSupport", .product(name: "SQLiteNIO", package: "sqlite-nio"),
            ],
            swiftSettings: strict
        ),
        // One suite, every store: what the registry relies on a `RegistryStore` for.
        .testTarget(
            name: "VPCEPStoreContractTests",
            dependencies: [
                "VPCEPRegistry", "VPCEPStoreSQLite", "VPCEPStorePostgres", "VPCEPTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"), logging,
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "VPCEPServiceTests",
            dependencies: [
                "VPCEPService", "VPCEPStoreSQLite", "VPCEPRegistry", "VPCEPRPC", "VPCEPTLS", "VPCEPClient", "VPCEPProto",
                "VPCEPTestSupport", nioPosix, logging,
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "VPCEPEndToEndTests",
            dependencies: [
                "VPCEPClient", "VPCEPProto", "VPCEPTestSupport", "vpcep-server", "vpcep",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
            ],
            swiftSettings: strict
        ),
    ]
)
