import Foundation
import SandhiEngine
import SandhiIO

/// The last deadlocks a coordinator found, kept in the data directory so that `sandhi check
/// --deadlocks` (another process) can show them: when, who, who was aborted and why.
///
/// A diagnostic record, not a durable one: the running node rewrites it (to a temporary file,
/// then renamed over the old one, so a reader never sees half a file) at most once a second
/// while deadlocks happen, and on a clean stop. A crash loses at most the last second of it,
/// and a power cut whatever was not yet written back: so nothing here is synced.
public struct DeadlockJournal: Codable, Sendable, Equatable {
    public struct Candidate: Codable, Sendable, Equatable {
        public var transaction: String
        public var waitsFor: String?
        public var locksHeld: Int
        public var operations: Int
        public var ageUs: UInt64
        public var participantsPrepared: Int
    }

    public struct Entry: Codable, Sendable, Equatable {
        public var id: UInt64
        /// Wall-clock milliseconds since 1970 when it was found.
        public var detectedAtMs: Int64
        public var cycle: [String]
        public var candidates: [Candidate]
        public var policy: String
        public var victim: String?
        public var reason: String
        public var foundByFullCheck: Bool
        /// `victim aborted`, `operator aborted T-…`, `dissolved: T-… left`, or `unresolved`.
        public var resolution: String
    }

    /// Every deadlock this coordinator found since it started, including those no longer kept.
    public var total: Int
    /// The newest last.
    public var entries: [Entry]

    public init(deadlocks: [Deadlock], total: Int, nowMonotonicUs: UInt64 = MonotonicClock.nowUs(),
                nowWallMs: Int64 = Int64(Date().timeIntervalSince1970 * 1_000)) {
        self.total = total
        entries = deadlocks.map { deadlock in
            let ageMs = Int64((nowMonotonicUs &- deadlock.detectedAtUs) / 1_000)
            let resolution: String
            switch deadlock.resolution {
            case .victimAborted(let tx, _)?: resolution = "victim \(tx) aborted"
            case .operatorAborted(let tx, _)?: resolution = "operator aborted \(tx)"
            case .dissolved(let tx, _)?: resolution = "dissolved: \(tx) left"
            case nil: resolution = "unresolved"
            }
            return Entry(
                id: deadlock.id, detectedAtMs: nowWallMs - ageMs, cycle: deadlock.cycle.map(\.description),
                candidates: deadlock.candidates.map {
                    Candidate(transaction: $0.transaction.description, waitsFor: $0.waitsFor?.description, locksHeld: $0.locksHeld,
                              operations: $0.operations, ageUs: $0.ageUs, participantsPrepared: $0.participantsPrepared)
                },
                policy: deadlock.policy.rawValue, victim: deadlock.victim?.description, reason: deadlock.reason,
                foundByFullCheck: deadlock.foundByFullCheck, resolution: resolution)
        }
    }

    /// Replaces the journal at `path` in one rename (unsynced: see the type's comment).
    public func write(to path: String, fileSystem files: any FileSystem = PosixFileSystem()) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let bytes = Array(try encoder.encode(self))
        let temporary = path + ".tmp"
        try logIO { () throws(FileSystemError) in
            let fd = try files.createReplacing(temporary)
            defer { files.close(fd) }
            try files.writeAll(fd, bytes, atOffset: 0, path: temporary)
        }
        try logIO { () throws(FileSystemError) in try files.rename(temporary, to: path) }
    }

    /// The journal at `path`, or nil if no deadlock was ever recorded there.
    public static func read(from path: String, fileSystem files: any FileSystem = PosixFileSystem()) throws -> DeadlockJournal? {
        guard files.fileExists(path) else { return nil }
        let bytes = try logIO { () throws(FileSystemError) in try files.readAll(path) }
        do {
            return try JSONDecoder().decode(DeadlockJournal.self, from: Data(bytes))
        } catch {
            throw DecisionLogError.io("\(path) is damaged: \(error)")
        }
    }
}
