import ArgumentParser
import Foundation
import SandhiEngine
import SandhiRuntime

struct LogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log", abstract: "Inspect the coordinator's decision log.", subcommands: [Dump.self])

    struct Dump: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every record of the decision log (read-only: a torn tail is reported, not cut).")

        @OptionGroup var common: CommonOptions

        @Flag(help: "Print JSON lines.")
        var json = false

        func run() async throws {
            try await reportingErrors {
                let directory = common.directory
                _ = try directory.loadConfiguration()
                let log = try DecisionLogStore.read(directory: directory.coordinatorPath)
                for note in log.notes { printError("note: \(note)") }
                for (position, record) in log.records {
                    let (kind, detail) = Self.describe(record)
                    if json {
                        print(jsonLine(["segment": String(position.segment), "offset": String(position.offset), "record": kind, "detail": detail]))
                    } else {
                        print(pad("\(position.segment)@\(position.offset)", 16) + pad(kind, 9) + detail)
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
}
