import ArgumentParser
import Foundation
import Logging
import SandhiIO
import SandhiParticipants
import SandhiPostgresLog
import SandhiRuntime

/// Options every command takes.
struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "The data directory.")
    var data: String = "./sandhi-data"

    @Flag(name: .long, help: "Log what the engine does (to stderr).")
    var verbose = false

    /// The data directory, able to open every kind of participant, and of decision log, this program knows.
    var directory: DataDirectory {
        DataDirectory(path: data, bankOpener: PostgresParticipants.opener, decisionLogOpener: PostgresDecisionLogOpener.opener,
                      io: IOTraceRecording.io)
    }

    /// Libraries take a logger; the executable makes the only one, on stderr.
    func makeLogger() -> Logger {
        var logger = Logger(label: "sandhi") { label in StreamLogHandler.standardError(label: label) }
        logger.logLevel = verbose ? .info : .warning
        return logger
    }
}

/// Runs a command body; any error becomes one line on stderr and exit status 2. A body that
/// returns non-zero (an invariant violated, a transfer aborted) exits with that status.
func reportingErrors(_ body: () async throws -> Int32) async throws {
    let status: Int32
    do {
        status = try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        printError("sandhi: \(error)")
        throw ExitCode(2)
    }
    if status != 0 { throw ExitCode(status) }
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// One failure the command itself detected (bad input), printed as one line.
struct UsageFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func jsonLine<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
}

func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
    let count = text.count
    guard count < width else { return text }
    let padding = String(repeating: " ", count: width - count)
    return right ? padding + text : text + padding
}
