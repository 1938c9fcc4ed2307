// swift-tools-version: 6.0
//
// Sandhi: an embedded distributed-transaction coordinator.
// Layers (dependencies point down only), see ../shared/DESIGN.md:
//
//   sandhi (executable)      command line; the only place that wires layers together
//   SandhiConsole            the operator console: model-update-view over engine events and keys; pure
//   SandhiCursesBackend      the only code that touches the terminal: draws a cell grid with ncursesw,
//                            reads keys and resizes, restores the terminal on exit and on signals
//   SandhiTerminalUI         pure terminal layer: cell grid with a display-width table, layout, widgets,
//                            themes (TOML), key decoding, grid diff; no ncurses, no project imports
//   SandhiPostgresLog        the decision log in a PostgreSQL table (the runtime's DecisionLogStorage)
//   SandhiPostgresTools      for tools and tests: a throwaway cluster, fresh databases, the hand-written
//                            two-phase client the PostgreSQL bench measures against
//   SandhiService            `sandhi serve`: the coordinator's HTTP API (Hummingbird) on a unix socket and
//                            loopback TCP: transfers, lookups, accounts, idempotency keys, tokens and roles
//   SandhiRuntime            real-time driver: decision-log segments, group commit, timers, recovery
//   SandhiSimulation         deterministic driver: seeded faults, virtual time, invariant checks, over
//                            the runtime's own components on simulated disks (the decision-log store)
//   SandhiPostgres           participant resource on a real PostgreSQL database (native two-phase
//                            commit: PREPARE TRANSACTION / COMMIT PREPARED) over postgres-nio
//   SandhiParticipants       participant resources: embedded SQLite banks
//   SandhiProcess            child processes: posix_spawn and waitpid with deadlines
//   SandhiIO                 I/O interfaces: the file system (POSIX, a simulated disk that loses what a
//                            power cut loses, a recording one for power-loss tests), locks, clocks,
//                            the allocator's settings
//   SandhiEngine             pure protocol state machines; no I/O, no project imports
//   SandhiHistory            offline serializability checker for recorded histories (Adya/Elle); no project imports
//   CSQLite                  system library: the SQLite C API
//   CMalloc                  system header: glibc's allocator settings (mallopt)
//   CNcursesw                system library: ncursesw, with a shim for the macros Swift cannot import
import PackageDescription

let package = Package(
    name: "Sandhi",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sandhi", targets: ["sandhi"]),
        .library(name: "SandhiEngine", targets: ["SandhiEngine"]),
        .library(name: "SandhiParticipants", targets: ["SandhiParticipants"]),
        .library(name: "SandhiPostgres", targets: ["SandhiPostgres"]),
        .library(name: "SandhiIO", targets: ["SandhiIO"]),
        .library(name: "SandhiRuntime", targets: ["SandhiRuntime"]),
        .library(name: "SandhiService", targets: ["SandhiService"]),
        .library(name: "SandhiHistory", targets: ["SandhiHistory"]),
        .library(name: "SandhiSimulation", targets: ["SandhiSimulation"]),
        .library(name: "SandhiTerminalUI", targets: ["SandhiTerminalUI"]),
        .library(name: "SandhiConsole", targets: ["SandhiConsole"]),
        .library(name: "SandhiCursesBackend", targets: ["SandhiCursesBackend"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CSQLite",
            path: "Sources/CSQLite",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .systemLibrary(
            name: "CMalloc",
            path: "Sources/CMalloc"
        ),
        .systemLibrary(
            name: "CNcursesw",
            path: "Sources/CNcursesw",
            providers: [.apt(["libncurses-dev"])]
        ),
        .target(
            name: "SandhiEngine",
            dependencies: [
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        .target(
            name: "SandhiIO",
            dependencies: ["SandhiEngine", "CMalloc"]
        ),
        .target(
            name: "SandhiParticipants",
            dependencies: [
                "SandhiEngine",
                "SandhiIO",
                "CSQLite",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "SandhiPostgres",
            dependencies: [
                "SandhiEngine",
                "SandhiParticipants",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The decision log in a PostgreSQL table: the runtime's log protocol over the same
        // sessions the banks use. Above both, so that neither depends on the other.
        .target(
            name: "SandhiPostgresLog",
            dependencies: [
                "SandhiEngine",
                "SandhiPostgres",
                "SandhiRuntime",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // For tools and tests, not for running a coordinator: a throwaway cluster, fresh
        // databases, and the hand-written client the PostgreSQL bench measures against.
        .target(
            name: "SandhiPostgresTools",
            dependencies: [
                "SandhiPostgres",
                "SandhiProcess",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "SandhiRuntime",
            dependencies: [
                "SandhiEngine",
                "SandhiIO",
                "SandhiParticipants",
                "SandhiHistory",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(name: "SandhiHistory"),
        // `sandhi serve`: the coordinator as a service, its client and operator APIs over HTTP
        // (Hummingbird) on a unix socket in the data directory.
        .target(
            name: "SandhiService",
            dependencies: [
                "SandhiEngine",
                "SandhiIO",
                "SandhiParticipants",
                "SandhiRuntime",
                "CSQLite",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            resources: [.copy("openapi.json")]
        ),
        .target(
            name: "SandhiSimulation",
            dependencies: [
                "SandhiEngine",
                "SandhiHistory",
                "SandhiIO",
                "SandhiParticipants",
                "SandhiRuntime",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "sandhi",
            dependencies: [
                "SandhiService",
                "SandhiEngine",
                "SandhiParticipants",
                "SandhiPostgres",
                "SandhiPostgresLog",
                "SandhiPostgresTools",
                "SandhiRuntime",
                "SandhiHistory",
                "SandhiSimulation",
                "SandhiConsole",
                "SandhiTerminalUI",
                "SandhiCursesBackend",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .target(
            name: "SandhiTerminalUI",
            dependencies: [
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        .target(
            name: "SandhiConsole",
            dependencies: [
                "SandhiEngine",
                "SandhiTerminalUI",
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        .target(
            name: "SandhiCursesBackend",
            dependencies: ["CNcursesw", "SandhiTerminalUI"]
        ),
        .target(name: "SandhiProcess"),
        .target(
            name: "SandhiTestSupport",
            dependencies: ["SandhiEngine", "SandhiIO", "SandhiParticipants", "SandhiRuntime", "SandhiPostgres", "SandhiPostgresTools", "SandhiProcess"],
            path: "Tests/SandhiTestSupport"
        ),
        .testTarget(name: "SandhiEngineTests", dependencies: ["SandhiEngine"]),
        .testTarget(name: "SandhiParticipantsTests", dependencies: ["SandhiParticipants", "SandhiIO", "SandhiTestSupport"]),
        .testTarget(name: "SandhiPostgresTests", dependencies: ["SandhiPostgres", "SandhiPostgresLog", "SandhiPostgresTools", "SandhiRuntime", "SandhiTestSupport"]),
        .testTarget(name: "SandhiRuntimeTests", dependencies: ["SandhiRuntime", "SandhiIO", "SandhiTestSupport",
                                                       .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "SandhiHistoryTests", dependencies: ["SandhiHistory"]),
        .testTarget(name: "SandhiServiceTests", dependencies: [
            "SandhiService", "SandhiRuntime", "SandhiIO", "SandhiParticipants", "SandhiEngine", "SandhiTestSupport",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "SandhiSimulationTests", dependencies: ["SandhiSimulation"]),
        .testTarget(name: "SandhiCLITests", dependencies: ["SandhiRuntime", "SandhiIO", "SandhiParticipants", "SandhiProcess", "SandhiTestSupport",
                                                    .product(name: "Logging", package: "swift-log")]),
        // Golden frames are read from the source folder (#filePath), not bundled.
        .testTarget(name: "SandhiTerminalUITests", dependencies: ["SandhiTerminalUI", "SandhiTestSupport"], exclude: ["Golden"]),
        .testTarget(name: "SandhiConsoleTests", dependencies: ["SandhiConsole", "SandhiEngine", "SandhiTerminalUI", "SandhiTestSupport"],
                    exclude: ["Golden"]),
    ],
    swiftLanguageModes: [.v6]
)
