import ArgumentParser
import Foundation
import SandhiEngine
import SandhiRuntime

struct LogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log", abstract: "Inspect the coordinator's decision log (segment files, or PostgreSQL with `[coordinator] log`).",
        subcommands: [Dump.self, Verify.self])

    struct Dump: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every record of the decision log (read-only: a torn tail is reported, not cut).")

        @OptionGroup var common: CommonOptions

        @Flag(help: "Print JSON lines.")
        var json = false

        func run() async throws {
            try await reportingErrors {
                let directory = common.directory
                let configuration = try directory.loadConfiguration()
                let log = try directory.readDecisionLog(configuration, logger: common.makeLogger())
                for note in log.notes { printError("note: \(note)") }
                let rows: Bool
                switch log.source {
                case .segmentFiles: rows = false
                case .postgres(let description):
                    rows = true
                    if !json { print("decision log: \(description)") }
                }
                for (position, record) in log.records {
                    let (kind, detail) = Self.describe(record)
                    if json {
                        let place = rows ? ["seq": String(position.offset)]
                            : ["segment": String(position.segment), "offset": String(position.offset)]
                        print(jsonLine(place.merging(["record": kind, "detail": detail]) { first, _ in first }))
                    } else {
                        print(pad(rows ? "seq \(position.offset)" : "\(position.segment)@\(position.offset)", 16) + pad(kind, 9) + detail)
                    }
                }
                if !json { print("\(log.records.count) record(s), \(log.unfinishedCommits.count) commit(s) awaiting acknowledgement") }
                return 0
            }
        }

        static func describe(_ record: DecisionRecord) -> (String, String) {
            switch record {
            case .segmentHeader(let segment, let epoch): return ("segment", "segment \(segment), epoch \(epoch)")
            case .epochStarted(let epoch): return ("epoch", "coordinator started epoch \(epoch)")
            case .commit(let tx, let participants): return ("COMMIT", "\(tx) at \(participants.map(\.name).joined(separator: ", "))")
            case .end(let tx): return ("END", "\(tx) acknowledged everywhere")
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every record's checksum and decoding (read-only); exit 1 if the log is damaged.",
            discussion: """
                With --audit, the audit trail instead (DIR/audit.log): every line's ML-DSA-65
                signature under DIR/audit.pub, the numbering and the hash chain; the first bad
                line is named. Needs no lock: it may run beside a service.
                """)

        @OptionGroup var common: CommonOptions

        @Flag(name: .long, help: "Verify the signed audit trail of operator commands instead of the decision log.")
        var audit = false

        func run() async throws {
            try await reportingErrors {
                if audit { return try verifyAudit() }
                let directory = common.directory
                let configuration = try directory.loadConfiguration()
                let log: RecoveredDecisionLog
                do {
                    log = try directory.readDecisionLog(configuration, logger: common.makeLogger())
                } catch let error as DecisionLogError {
                    // Damage is this command's answer, not a failure to run it.
                    print("damaged: \(error)")
                    return 1
                }
                for note in log.notes { print("note: \(note)") }
                print("ok: \(log.records.count) record(s), every checksum good, highest epoch \(log.maxEpoch), "
                      + "\(log.unfinishedCommits.count) commit(s) awaiting acknowledgement")
                return 0
            }
        }

        private func verifyAudit() throws -> Int32 {
            let directory = common.directory
            guard DataDirectory.exists(directory.configurationPath) else {
                throw ValidationError("\(directory.path) is not a Sandhi data directory (no sandhi.toml)")
            }
            let publicKey = try AuditKey.loadPublic(from: directory.path)
            let bytes = FileManager.default.contents(atPath: directory.auditTrailPath).map { Array($0) } ?? []
            let verification = AuditTrail.verify(bytes, publicKey: publicKey)
            if let problem = verification.problem {
                print("damaged: \(directory.auditTrailPath): line \(problem.line): \(problem.why) "
                      + "(\(verification.records) good record(s) before it)")
                return 1
            }
            print("ok: \(verification.records) audit record(s), every signature good, the chain whole"
                  + (verification.records > 0 ? "; last record's hash \(verification.lastHash)" : ""))
            return 0
        }
    }
}
