import Foundation
import Logging
import SandhiEngine
import SandhiRuntime

/// Shared fixtures for the DecisionLog*Tests suites: temporary directories, file surgery, records.
enum DecisionLogFixture {
    /// Tests open hundreds of logs; a torn-tail warning per open would drown the test output.
    static let logger = Logger(label: "sandhi.test.decision-log") { _ in SwiftLogNoOpLogHandler() }

    /// Runs `body` with a fresh directory under the system temporary directory, removed afterwards.
    static func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("sandhi-decision-log-test-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: url) }
        return try body(url.path)
    }

    static func segmentPath(_ directory: String, _ number: UInt64) -> String {
        directory + "/" + String(format: "segment-%08llu.log", number)
    }

    static func readFile(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static func fileNames(_ directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    }

    static func transaction(_ sequence: UInt64, epoch: UInt32 = 1) -> TransactionID {
        TransactionID(epoch: epoch, sequence: sequence)
    }

    static func participants(_ names: String...) -> [ParticipantID] {
        names.map { ParticipantID(validated: $0) }
    }

    static func commit(_ sequence: UInt64) -> DecisionRecord {
        .commit(transaction: transaction(sequence), participants: participants("hdfc", "icici", "sbi"))
    }

    static func end(_ sequence: UInt64) -> DecisionRecord {
        .end(transaction: transaction(sequence))
    }
}
