import Foundation
import SandhiRuntime
import SandhiTestSupport
import Testing

/// The decision-log suite (`DecisionLogConformance`, shared with the PostgreSQL log in
/// `SandhiPostgresTests/PostgresDecisionLogTests.swift`) against the segment files.
@Suite struct DecisionLogConformanceTests {
    /// A fresh directory's log; small segments when the check wants early reclamation (the file
    /// log reclaims whole segments, when one rolls).
    static func withSubject(smallSegments: Bool = false, _ body: (DecisionLogSubject) throws -> Void) throws {
        try DecisionLogFixture.withTemporaryDirectory { directory in
            let segmentMaxBytes = smallSegments ? 512 : 64 << 20
            let subject = DecisionLogSubject(
                name: "segment files", excludesSecondOpener: false,
                open: {
                    let (store, recovered) = try DecisionLogStore.open(directory: directory, segmentMaxBytes: segmentMaxBytes,
                                                                       preallocationBytes: 4096, logger: DecisionLogFixture.logger)
                    return (store, recovered)
                },
                read: { try DecisionLogStore.read(directory: directory) })
            try body(subject)
        }
    }

    @Test func appendSyncReopenRoundTrip() throws {
        try Self.withSubject { try DecisionLogConformance.appendSyncReopenRoundTrip($0) }
    }

    @Test func recoversUnfinishedCommitsAndEpochs() throws {
        try Self.withSubject { try DecisionLogConformance.recoversUnfinishedCommitsAndEpochs($0) }
    }

    @Test func failedSyncIsSticky() throws {
        try Self.withSubject { try DecisionLogConformance.failedSyncIsSticky($0) }
    }

    @Test func reclamationKeepsUnfinishedCommitsAndDropsFinishedOnes() throws {
        try Self.withSubject(smallSegments: true) { try DecisionLogConformance.reclamationKeepsUnfinishedCommitsAndDropsFinishedOnes($0) }
    }

    @Test func unsyncedRecordsAreBounded() throws {
        try Self.withSubject { try DecisionLogConformance.unsyncedRecordsAreBounded($0) }
    }

    /// The file log leaves exclusion to the data directory's lock (`DataDirectory.lock`): the
    /// check is a no-op for it, run so that the suite is the same list for both.
    @Test func secondOpenerIsRefusedUntilTheHolderCloses() throws {
        try Self.withSubject { try DecisionLogConformance.secondOpenerIsRefusedUntilTheHolderCloses($0) }
    }
}
