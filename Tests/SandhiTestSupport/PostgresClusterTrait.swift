import Testing
@_exported import SandhiPostgres
@_exported import SandhiPostgresTools
@_exported import SandhiProcess

/// The tests' name for the throwaway cluster, and the suite they share it in.
public typealias PostgresCluster = ThrowawayCluster

extension ThrowawayCluster {
    /// The cluster of the running suite (see `.postgresCluster`).
    @TaskLocal public static var current: ThrowawayCluster?
}

/// A suite trait: one throwaway PostgreSQL cluster for the whole suite, as
/// `PostgresCluster.current` in every test of it, stopped after its last test.
public struct PostgresClusterTrait: SuiteTrait, TestScoping {
    public var isRecursive: Bool { false }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        // Without the server programs the suite's `.requiresPostgres` skips every test (saying
        // why); there is nothing to start.
        guard PostgresCluster.binDirectory != nil else { return try await function() }
        let cluster = try await onOwnThread { try PostgresCluster.start() }
        do {
            try await PostgresCluster.$current.withValue(cluster) { try await function() }
        } catch {
            try? await onOwnThread { cluster.stop() }
            throw error
        }
        try await onOwnThread { cluster.stop() }
    }
}

extension Trait where Self == PostgresClusterTrait {
    /// Runs the suite against its own throwaway PostgreSQL cluster.
    public static var postgresCluster: Self { PostgresClusterTrait() }
}

extension Trait where Self == ConditionTrait {
    /// Skips, loudly and with the reason, when no PostgreSQL server programs are installed.
    public static var requiresPostgres: Self {
        .enabled(if: PostgresCluster.binDirectory != nil, Comment(rawValue: "SKIPPED: \(PostgresCluster.missingReason) to run the PostgreSQL tests"))
    }
}
