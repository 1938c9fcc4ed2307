import Foundation
import Logging
import SandhiEngine
import SandhiParticipants
import SandhiRuntime
import Synchronization

/// A mixed outcome, made the way real ones are: the coordinator stops after every bank has
/// prepared (its COMMIT record's fsync fails), and while it is down SBI's database operator,
/// tired of a prepared transaction holding locks, decides the branch by hand. When the
/// coordinator comes back it finds SBI's outcome against its own decision, records the case
/// for reconciliation, and `sandhi reconcile` settles it.
enum HeuristicDemo {
    static let amount = Paise.rupees(50_000)

    static func run(directory: DataDirectory, logger: Logger) async throws -> Int32 {
        let (created, configuration) = try MumbaiDemo.prepareDirectory(directory, logger: logger)
        let hdfc = MumbaiDemo.hdfc, sbi = MumbaiDemo.sbi, client = MumbaiDemo.client
        print("Sandhi demo: heuristic — a bank decides alone while the coordinator is down")
        print("data \(directory.path) (\(created ? "created" : "reused"))")
        print("")
        print("1. Transfer \(amount) from hdfc/client to sbi/client; the coordinator's next fsync will fail.")
        let lock = try directory.lock()
        let began = Mutex<TransactionID?>(nil)
        let node = try await SandhiNode.start(directory: directory, lock: lock, logger: logger) { event in
            if case .began(let tx, _, _) = event.kind { began.withLock { if $0 == nil { $0 = tx } } }
        }
        node.driver.failNextLogSync()
        let branches = [Branch(participant: hdfc, operations: [.debit(account: client, amount: amount)]),
                        Branch(participant: sbi, operations: [.credit(account: client, amount: amount)])]
        do {
            let result = try await node.driver.transfer(branches)
            node.stop()
            print("   the transfer finished (\(result.outcome.label)) before the fault struck; run the demo again")
            return 1
        } catch {
            print("   \(error)")
        }
        node.stop()
        guard let tx = began.withLock({ $0 }) else { throw UsageFailure("the demo's transfer never began") }
        let restartLock = try directory.lock()
        // Whether the COMMIT record reached the file despite the failed fsync decides what SBI's
        // operator must do to contradict it; the coordinator will find out either way.
        let logged = try directory.readDecisionLog(try directory.loadConfiguration(), logger: logger).unfinishedCommits[tx] != nil
        print("   \(tx) is prepared at hdfc and sbi, locks held; the COMMIT record is \(logged ? "in the log after all (the data reached the file)" : "not in the log: presumed abort")")
        print("")
        let decideCommit = !logged
        print("2. sbi's operator stops waiting and \(decideCommit ? "commits" : "rolls back") \(tx) by hand (a heuristic \(decideCommit ? "commit" : "rollback")).")
        let bank = try SQLiteBank(path: directory.bankPath(sbi), participant: sbi, logger: logger)
        let replies = try bank.decideAlone(tx, commit: decideCommit)
        try bank.makeDurable()
        bank.close()
        guard !replies.isEmpty else { throw UsageFailure("\(tx) was not prepared at sbi") }
        print("")
        print("3. The coordinator restarts and recovers.")
        let restarted = try await SandhiNode.start(directory: directory, lock: restartLock, logger: logger)
        for item in restarted.recovery.resolved { print("   recovered \(item.transaction): \(item.outcome.label)") }
        let heuristicCase = restarted.driver.reconciliation[tx]
        let queue = restarted.driver.reconciliation
        restarted.stop()
        guard let heuristicCase else {
            print("   no heuristic case was recorded for \(tx): that is a bug")
            return 1
        }
        print("")
        for line in HeuristicCaseText.detail(heuristicCase, queue: queue) { print("   " + line) }
        print("")
        let auditLock = try directory.lock()
        let audit = try InvariantAudit.run(directory: directory, configuration: configuration, logger: logger)
        auditLock.release()
        for note in audit.notes { print("   " + note) }
        print("   invariants: " + (audit.passed ? "hold, with the case in the reconciliation queue ✓" : audit.violations.joined(separator: "; ")))
        print("")
        print("Settle it (each action is recorded with who, when and why):")
        print("   sandhi reconcile show \(tx) --data \(directory.path)")
        let action = heuristicCase.decision == .commit ? "retry-commit" : "compensate"
        print("   sandhi reconcile resolve \(tx) --action \(action) --note \"...\" --data \(directory.path)")
        return audit.passed ? 0 : 1
    }
}
