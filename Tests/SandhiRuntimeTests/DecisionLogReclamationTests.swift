import Foundation
import SandhiEngine
@testable import SandhiRuntime
import Testing

/// Segments whose commits have all ended are deleted at each roll and at open; the newest epoch
/// survives because every segment header carries it.
@Suite struct DecisionLogReclamationTests {
    typealias Fixture = DecisionLogFixture
    static let segmentMaxBytes = 256

    private func onDisk(_ directory: String) throws -> [UInt64] {
        try Fixture.fileNames(directory).compactMap { name in
            name.hasPrefix("segment-") ? UInt64(name.dropFirst(8).dropLast(4)) : nil
        }
    }

    @Test func finishedSegmentsAreDeletedAfterRoll() throws {
        try Fixture.withTemporaryDirectory { directory in
            let (store, _) = try DecisionLogStore.open(
                directory: directory, segmentMaxBytes: Self.segmentMaxBytes, logger: Fixture.logger)
            var highestSegment: UInt64 = 0
            for sequence in 1...60 as ClosedRange<UInt64> {
                let positions = try store.append([Fixture.commit(sequence), Fixture.end(sequence)])
                highestSegment = max(highestSegment, positions[1].segment)
                #expect(try onDisk(directory) == store.segmentNumbers)
            }
            try store.sync()
            #expect(highestSegment >= 10)
            // Only the active segment and, at most, the one whose last COMMIT's END crossed the roll.
            #expect(store.segmentNumbers.count <= 2)
            #expect(store.segmentNumbers.last == highestSegment)
            #expect(!store.segmentNumbers.contains(1))
            store.close()

            let (reopened, recovered) = try DecisionLogStore.open(
                directory: directory, segmentMaxBytes: Self.segmentMaxBytes, logger: Fixture.logger)
            reopened.close()
            #expect(recovered.unfinishedCommits.isEmpty)
            #expect(reopened.segmentNumbers == [highestSegment])  // Open reclaims the rest.
            #expect(try onDisk(directory) == [highestSegment])
        }
    }

    @Test func commitWithoutEndKeepsItsSegmentAcrossReopen() throws {
        try Fixture.withTemporaryDirectory { directory in
            let open = { try DecisionLogStore.open(
                directory: directory, segmentMaxBytes: Self.segmentMaxBytes, logger: Fixture.logger) }
            let (store, _) = try open()
            _ = try store.append([Fixture.commit(1), Fixture.end(1)])
            let pending = DecisionRecord.commit(transaction: Fixture.transaction(1000), participants: Fixture.participants("axis"))
            let pendingSegment = try store.append([pending])[0].segment
            for sequence in 2...40 as ClosedRange<UInt64> {
                _ = try store.append([Fixture.commit(sequence), Fixture.end(sequence)])
            }
            try store.sync()
            let active = store.segmentNumbers.last!
            #expect(active > pendingSegment + 2)
            #expect(store.segmentNumbers.contains(pendingSegment))
            store.close()

            let (reopened, recovered) = try open()
            #expect(recovered.unfinishedCommits == [Fixture.transaction(1000): Fixture.participants("axis")])
            #expect(reopened.segmentNumbers == [pendingSegment, active])
            #expect(try onDisk(directory) == [pendingSegment, active])
            #expect(recovered.records.contains { $0.record == pending && $0.position.segment == pendingSegment })

            // The END arrives after the restart; the next roll reclaims the old segment.
            _ = try reopened.append([.end(transaction: Fixture.transaction(1000))])
            #expect(reopened.segmentNumbers.contains(pendingSegment))  // No roll yet.
            for sequence in 41...50 as ClosedRange<UInt64> {
                _ = try reopened.append([Fixture.commit(sequence), Fixture.end(sequence)])
            }
            try reopened.sync()
            #expect(!reopened.segmentNumbers.contains(pendingSegment))
            reopened.close()

            let final = try DecisionLogStore.read(directory: directory)
            #expect(final.unfinishedCommits.isEmpty)
            #expect(!final.records.contains { $0.record == pending })
        }
    }

    @Test func maxEpochSurvivesReclamationOfItsSegment() throws {
        try Fixture.withTemporaryDirectory { directory in
            let (store, _) = try DecisionLogStore.open(
                directory: directory, segmentMaxBytes: Self.segmentMaxBytes, logger: Fixture.logger)
            store.epoch = 7
            let epochSegment = try store.append([.epochStarted(epoch: 7)])[0].segment
            for sequence in 1...30 as ClosedRange<UInt64> {
                _ = try store.append([Fixture.commit(sequence), Fixture.end(sequence)])
            }
            // The runtime forgot to set `epoch` this time: the store still carries it forward.
            _ = try store.append([.epochStarted(epoch: 9)])
            for sequence in 31...60 as ClosedRange<UInt64> {
                _ = try store.append([Fixture.commit(sequence), Fixture.end(sequence)])
            }
            try store.sync()
            #expect(store.epoch == 9)
            #expect(!store.segmentNumbers.contains(epochSegment))
            store.close()

            let recovered = try DecisionLogStore.read(directory: directory)
            #expect(!recovered.records.contains { if case .epochStarted = $0.record { true } else { false } })
            #expect(recovered.maxEpoch == 9)
            let (reopened, reopenedLog) = try DecisionLogStore.open(directory: directory, logger: Fixture.logger)
            reopened.close()
            #expect(reopenedLog.maxEpoch == 9)
            #expect(reopened.epoch == 9)
        }
    }

    /// A finished transaction whose COMMIT sits in a pinned segment and whose END sits in a
    /// reclaimable one: the END is carried forward, so recovery never reports it unfinished.
    @Test func endsOfCommitsInPinnedSegmentsAreCarriedForward() throws {
        try Fixture.withTemporaryDirectory { directory in
            let open = { try DecisionLogStore.open(
                directory: directory, segmentMaxBytes: Self.segmentMaxBytes, logger: Fixture.logger) }
            let pending = Fixture.commit(1000)
            let (store, _) = try open()
            let pinned = try store.append([pending, Fixture.commit(500)])[0].segment
            var sequence: UInt64 = 1
            // Fill until the log rolls, then end 500 in the new segment.
            while store.segmentNumbers.last == pinned {
                _ = try store.append([Fixture.commit(sequence), Fixture.end(sequence)])
                sequence += 1
            }
            let endSegment = try store.append([Fixture.end(500)])[0].segment
            #expect(endSegment > pinned)
            func rollSeveralTimes(_ log: DecisionLogStore) throws {
                let target = log.segmentNumbers.last! + 4
                while log.segmentNumbers.last! < target {
                    _ = try log.append([Fixture.commit(sequence), Fixture.end(sequence)])
                    sequence += 1
                }
                try log.sync()
            }
            try rollSeveralTimes(store)
            #expect(!store.segmentNumbers.contains(endSegment))
            #expect(store.segmentNumbers.first == pinned)
            #expect(try DecisionLogStore.read(directory: directory).unfinishedCommits.keys.sorted()
                == [Fixture.transaction(1000)])
            store.close()

            // Across a reopen the carried END keeps being carried.
            let (reopened, recovered) = try open()
            #expect(recovered.unfinishedCommits.keys.sorted() == [Fixture.transaction(1000)])
            try rollSeveralTimes(reopened)
            reopened.close()
            let (again, recoveredAgain) = try open()
            #expect(recoveredAgain.unfinishedCommits.keys.sorted() == [Fixture.transaction(1000)])
            #expect(again.segmentNumbers.count == 2)

            // Once the pending one ends, everything but the active segment goes.
            _ = try again.append([Fixture.end(1000)])
            try rollSeveralTimes(again)
            #expect(again.segmentNumbers.count <= 2)
            #expect(!again.segmentNumbers.contains(pinned))
            again.close()
            #expect(try DecisionLogStore.read(directory: directory).unfinishedCommits.isEmpty)
        }
    }

    /// A crash at any unlink during a roll, once the unlinks are durable, leaves the newest
    /// segment as it was on disk then, and possibly nothing older (every older one here holds
    /// only finished transactions). That segment alone must carry the epoch: a headerless one
    /// would be given epoch 0 by open.
    @Test func newSegmentCarriesTheEpochOnDiskBeforeAnyOlderSegmentIsUnlinked() throws {
        try Fixture.withTemporaryDirectory { root in
            let directory = root + "/log"
            let (store, _) = try DecisionLogStore.open(
                directory: directory, segmentMaxBytes: Self.segmentMaxBytes, logger: Fixture.logger)
            store.epoch = 7
            _ = try store.append([.epochStarted(epoch: 7)])
            var newestAtUnlink: [(number: UInt64, bytes: [UInt8])] = []
            var captureErrors: [String] = []
            store.willUnlinkSegmentForTesting = { [self] unlinking in
                do {
                    let newest = try onDisk(directory).max()!
                    #expect(Fixture.segmentPath(directory, newest) != unlinking)
                    newestAtUnlink.append((newest, try Fixture.readFile(Fixture.segmentPath(directory, newest))))
                } catch {
                    captureErrors.append("\(error)")
                }
            }
            for sequence in 1...40 as ClosedRange<UInt64> {
                _ = try store.append([Fixture.commit(sequence), Fixture.end(sequence)])
            }
            store.close()
            #expect(captureErrors.isEmpty, "\(captureErrors)")
            #expect(newestAtUnlink.count >= 5)

            for (index, capture) in newestAtUnlink.enumerated() {
                let image = root + "/crash-\(index)"
                try FileManager.default.createDirectory(atPath: image, withIntermediateDirectories: false)
                try Fixture.writeFile(Fixture.segmentPath(image, capture.number), capture.bytes)
                let dumped = try DecisionLogStore.read(directory: image)
                #expect(dumped.records.first?.record == .segmentHeader(segment: capture.number, epoch: 7),
                        "segment \(capture.number) at unlink \(index): \(dumped.notes)")
                let (reopened, recovered) = try DecisionLogStore.open(directory: image, logger: Fixture.logger)
                reopened.close()
                #expect(recovered.maxEpoch == 7, "segment \(capture.number) at unlink \(index)")
                #expect(reopened.epoch == 7)
            }
        }
    }

    @Test func endInALaterSegmentReleasesTheEarlierOne() throws {
        try Fixture.withTemporaryDirectory { directory in
            let (store, _) = try DecisionLogStore.open(
                directory: directory, segmentMaxBytes: Self.segmentMaxBytes, logger: Fixture.logger)
            defer { store.close() }
            // Commits fill several segments; their ENDs come only afterwards.
            var commitSegments = Set<UInt64>()
            for sequence in 1...20 as ClosedRange<UInt64> {
                commitSegments.insert(try store.append([Fixture.commit(sequence)])[0].segment)
            }
            #expect(commitSegments.count >= 4)
            #expect(Set(store.segmentNumbers).isSuperset(of: commitSegments))
            for sequence in 1...20 as ClosedRange<UInt64> {
                _ = try store.append([Fixture.end(sequence)])
            }
            // One more roll triggers reclamation of every finished segment, not only a prefix.
            for sequence in 21...30 as ClosedRange<UInt64> {
                _ = try store.append([Fixture.commit(sequence), Fixture.end(sequence)])
            }
            try store.sync()
            #expect(Set(store.segmentNumbers).isDisjoint(with: commitSegments))
            #expect(try onDisk(directory) == store.segmentNumbers)
        }
    }
}
