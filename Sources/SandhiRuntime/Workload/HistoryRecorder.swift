import Glibc
import SandhiEngine
import SandhiHistory

/// Writes what a workload's clients saw as a history file (`SandhiHistory`'s JSON lines): one
/// line per transaction attempt, with every read's value, version and writer and every write's
/// new value and version, for `sandhi check-history` to look for anomalies in.
///
/// A committed attempt's operations come from what its participants observed at prepare. An
/// aborted attempt is recorded with no operations: its writes never installed, so a read that
/// names it as the writer is an aborted read, which the checker reports.
public final class HistoryRecorder: Sendable {
    private struct State {
        var buffer: [UInt8] = []
        var file: UnsafeMutablePointer<FILE>?
        var failure: String?
        var transactions = 0
    }

    private let state: Lock<State>
    public let path: String
    /// Lines are written in chunks of about this many bytes.
    private static let flushBytes = 1 << 20

    /// Creates (or truncates) `path` and writes the header. `baseline` is every account's state
    /// when recording starts: accounts written before (by an earlier run, or by recovery) name
    /// writers this history would not otherwise contain, so each such writer is recorded as a
    /// committed transaction that wrote exactly those versions.
    public init(path: String, totalPaise: Int64, baseline: [ParticipantID: [Observation]] = [:]) throws {
        guard let file = fopen(path, "w") else {
            throw DecisionLogError.io("cannot create history file \(path): \(String(cString: strerror(errno)))")
        }
        self.path = path
        var initial = State()
        initial.file = file
        initial.buffer.append(contentsOf: Array(HistoryCodec.encode(header: HistoryHeader(totalPaise: totalPaise)).utf8))
        initial.buffer.append(UInt8(ascii: "\n"))
        var earlier: [TransactionID: [HistoryTransaction.Op]] = [:]
        for (participant, accounts) in baseline.sorted(by: { $0.key < $1.key }) {
            for account in accounts {
                guard let writer = account.writer else { continue } // the opening balance: the initial state
                let key = ResourceID(participant: participant, account: account.account).description
                earlier[writer, default: []].append(.write(key: key, value: account.balance.value, version: Int64(account.version)))
            }
        }
        for (writer, ops) in earlier.sorted(by: { $0.key < $1.key }) {
            initial.buffer.append(contentsOf: Array(HistoryCodec.encode(HistoryTransaction(id: writer.description, outcome: .committed, ops: ops)).utf8))
            initial.buffer.append(UInt8(ascii: "\n"))
        }
        state = Lock(initial)
    }

    /// The history's view of one attempt.
    public static func transaction(_ id: TransactionID, outcome: Outcome?, audit: Bool, startUs: UInt64, endUs: UInt64,
                                   branches: [Branch], observed: [ParticipantID: [Observation]]) -> HistoryTransaction {
        let historyOutcome: HistoryTransaction.Outcome
        switch outcome {
        case .committed?: historyOutcome = .committed
        case .aborted?: historyOutcome = .aborted
        case nil: historyOutcome = .unknown
        }
        var ops: [HistoryTransaction.Op] = []
        if historyOutcome == .committed {
            for branch in branches {
                let seen = observed[branch.participant] ?? []
                var next = 0
                for operation in branch.operations {
                    guard let account = operation.account else { continue }
                    precondition(next < seen.count, "\(id): \(branch.participant) observed fewer operations than it ran")
                    let observation = seen[next]
                    next += 1
                    ops += HistoryTransaction.Op.access(key: ResourceID(participant: branch.participant, account: account).description,
                                   sawValue: observation.balance.value, sawVersion: Int64(observation.version),
                                   writer: observation.writer?.description, delta: operation.isWrite ? operation.delta.value : nil)
                }
            }
        }
        return HistoryTransaction(id: id.description, outcome: historyOutcome, audit: audit, startUs: startUs, endUs: endUs, ops: ops)
    }

    public func record(_ transaction: HistoryTransaction) {
        let line = HistoryCodec.encode(transaction)
        state.withLock { state in
            state.buffer.append(contentsOf: line.utf8)
            state.buffer.append(UInt8(ascii: "\n"))
            state.transactions += 1
            if state.buffer.count >= Self.flushBytes { Self.flush(&state) }
        }
    }

    /// Writes what is buffered and closes the file. Returns the first write error, if any.
    @discardableResult
    public func close() -> String? {
        state.withLock { state in
            Self.flush(&state)
            if let file = state.file {
                if fclose(file) != 0 && state.failure == nil { state.failure = String(cString: strerror(errno)) }
                state.file = nil
            }
            return state.failure.map { "writing history \(path): \($0)" }
        }
    }

    public var transactionCount: Int { state.withLock { $0.transactions } }

    private static func flush(_ state: inout State) {
        guard let file = state.file, !state.buffer.isEmpty else { return }
        let written = state.buffer.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        if written != state.buffer.count && state.failure == nil { state.failure = String(cString: strerror(errno)) }
        state.buffer.removeAll(keepingCapacity: true)
    }
}
