// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "XeroML",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "XeroML", targets: ["XeroML"]),
        .library(name: "XeroMLSQLite", targets: ["XeroMLSQLite"]),
        .library(name: "XeroMLHTTP", targets: ["XeroMLHTTP"]),
        .library(name: "XeroMLJudge", targets: ["XeroMLJudge"]),
        .library(name: "XeroMLTesting", targets: ["XeroMLTesting"]),
        .library(name: "XeroMLSyncAPI", targets: ["XeroMLSyncAPI"]),
        .library(name: "XeroMLSync", targets: ["XeroMLSync"]),
        .executable(name: "xeroml", targets: ["xeroml"]),
        .executable(name: "xeroml-bench", targets: ["xeroml-bench"]),
        .executable(name: "xeroml-server", targets: ["xeroml-server"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // libsqlite3 from the system (Debian: libsqlite3-dev). See docs/decisions/0001-system-sqlite.md.
        .systemLibrary(
            name: "XeroMLCSQLite",
            providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]
        ),
        .target(name: "XeroMLSQLite", dependencies: ["XeroMLCSQLite"]),
        .target(
            name: "XeroML",
            dependencies: [
                "XeroMLSQLite",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // HTTP kept out of the core: AsyncHTTPClient on SwiftNIO (the default transport), and URLSession
        // (FoundationNetworking on Linux). See docs/decisions/0005-http-transport-asynchttpclient.md.
        .target(
            name: "XeroMLHTTP",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .target(name: "XeroMLJudge", dependencies: ["XeroML", "XeroMLHTTP"]),
        // Test support for users' suites and ours: assertions, temporary stores, a fake model server.
        .target(name: "XeroMLTesting", dependencies: ["XeroML", "XeroMLJudge", "XeroMLHTTP", "XeroMLCSpawn"]),
        // posix_spawn with the GNU file actions (close from 3, change directory), for XeroMLTesting's child processes.
        .target(name: "XeroMLCSpawn"),
        // zlib from the system, for gzip sync bodies.
        .systemLibrary(name: "XeroMLCZlib", providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        // The sync protocol's wire types, shared by the client and the team server; no NIO.
        .target(name: "XeroMLSyncAPI", dependencies: ["XeroMLCZlib"]),
        // Pushes finished runs to a team server, over XeroMLHTTP (URLSession); no NIO.
        .target(name: "XeroMLSync", dependencies: ["XeroML", "XeroMLSQLite", "XeroMLHTTP", "XeroMLSyncAPI"]),
        // Dashboard pages: HTML and SVG from values, read through a query interface; no NIO.
        .target(name: "XeroMLDashboard", dependencies: ["XeroML", "XeroMLSQLite"]),
        // The HTTP server (`xeroml ui`): the only target that depends on SwiftNIO, through Hummingbird.
        .target(
            name: "XeroMLServer",
            dependencies: [
                "XeroML",
                "XeroMLDashboard",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The team server: sync ingestion and the dashboard over PostgreSQL (PostgresNIO).
        .target(
            name: "XeroMLTeamServer",
            dependencies: [
                "XeroML",
                "XeroMLSyncAPI",
                "XeroMLDashboard",
                "XeroMLServer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "xeroml-server",
            dependencies: [
                "XeroMLTeamServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "xeroml",
            dependencies: [
                "XeroML",
                "XeroMLSync",
                "XeroMLJudge",
                "XeroMLDashboard",
                "XeroMLServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "xeroml-bench", dependencies: ["XeroML", "XeroMLSQLite", "XeroMLJudge", "XeroMLHTTP", "XeroMLTesting", "XeroMLDashboard", "XeroMLSync", "XeroMLSyncAPI"]),
        // Started and killed by the crash-recovery tests; not a product.
        .executableTarget(name: "xeroml-testhelper", dependencies: ["XeroML"]),
        .testTarget(name: "XeroMLSQLiteTests", dependencies: ["XeroMLSQLite"]),
        .testTarget(name: "XeroMLTests", dependencies: ["XeroML", "XeroMLSQLite", "XeroMLTesting", "xeroml", "xeroml-testhelper"]),
        .testTarget(
            name: "XeroMLServerTests",
            dependencies: [
                "XeroMLServer", "XeroMLDashboard", "XeroML", "XeroMLSQLite", "XeroMLTesting", "xeroml", "xeroml-testhelper",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "XeroMLTeamServerTests",
            dependencies: [
                "XeroMLTeamServer", "XeroMLSyncAPI", "XeroMLDashboard", "XeroMLServer", "XeroMLSync", "XeroML", "XeroMLTesting", "xeroml", "xeroml-server",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .testTarget(name: "XeroMLSyncTests", dependencies: ["XeroMLSync", "XeroMLSyncAPI", "XeroML", "XeroMLSQLite", "XeroMLTesting", "XeroMLHTTP", "xeroml"]),
        .testTarget(name: "XeroMLJudgeTests", dependencies: ["XeroMLJudge", "XeroMLHTTP", "XeroMLTesting", "XeroML", "xeroml"]),
    ]
)

// One settings loop for every target: Swift 6 language mode everywhere, plus the upcoming
// features we want from day one.
for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.swiftLanguageMode(.v6))
    settings.append(.enableUpcomingFeature("NonisolatedNonsendingByDefault"))
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    target.swiftSettings = settings
}
