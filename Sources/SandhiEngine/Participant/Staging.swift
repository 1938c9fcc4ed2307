/// How a participant's storage validates a PREPARE's operations and what each operation saw:
/// one rule for every kind of storage (the SQLite bank, the simulator's banks), so they cannot
/// drift apart. Storage supplies only the committed state of an account.
public enum Staging {
    /// Why `operations` cannot commit at `participant` (or nil), and what each operation with an
    /// account saw: the committed state, or the branch's own earlier change to it, with the
    /// version that change will install. `committed` answers nil for an unknown account and is
    /// asked at most once per account.
    public static func validate(_ tx: TransactionID, at participant: ParticipantID, _ operations: [Operation],
                                committed: (AccountID) throws -> Observation?) rethrows -> (failure: Refusal?, observed: [Observation]) {
        // Each touched account's state as this branch sees it, in first-touch order. A branch of
        // one operation (most of them) never looks an account up twice, so it keeps none and
        // allocates only what it returns.
        let remembers = operations.count > 1
        var seen: [Observation] = []
        var observed: [Observation] = []
        observed.reserveCapacity(operations.count)
        func current(_ account: AccountID) throws -> Observation? {
            if let entry = seen.first(where: { $0.account == account }) { return entry }
            guard let state = try committed(account) else { return nil }
            if remembers { seen.append(state) }
            return state
        }
        for operation in operations {
            switch operation {
            case .debit(let account, let amount), .credit(let account, let amount):
                // Built only for a refusal: most operations pass, and a resource hashes its names.
                func resource() -> ResourceID { ResourceID(participant: participant, account: account) }
                guard amount.value > 0 else { return (.notPositiveAmount(resource(), amount), []) }
                guard let before = try current(account) else { return (.unknownAccount(resource()), []) }
                var after = before
                if case .debit = operation {
                    guard before.balance >= amount else {
                        return (.insufficientFunds(resource(), balance: before.balance, debit: amount), [])
                    }
                    after.balance = Paise(before.balance.value - amount.value)
                } else {
                    let (sum, overflow) = before.balance.value.addingReportingOverflow(amount.value)
                    guard !overflow else { return (.creditOverflow(resource()), []) }
                    after.balance = Paise(sum)
                }
                after.version += 1
                after.writer = tx
                if remembers { seen[seen.firstIndex { $0.account == account }!] = after }
                observed.append(before)
            case .read(let account):
                guard let state = try current(account) else { return (.unknownAccount(ResourceID(participant: participant, account: account)), []) }
                observed.append(state)
            case .fileReport(let report):
                guard report.amount.value > 0 else { return (.reportAmountNotPositive(report.amount), []) }
                guard report.kind.utf8.count <= Report.maxTextBytes, report.reference.utf8.count <= Report.maxTextBytes,
                      !report.kind.isEmpty else { return (.reportTextInvalid, []) }
            }
        }
        return (nil, observed)
    }
}
