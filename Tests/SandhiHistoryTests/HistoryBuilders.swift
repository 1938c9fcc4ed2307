import SandhiHistory

/// Terse constructors for hand-written histories: `T.committed("T1", r("x", 0), w("x", 1))`.
typealias Op = HistoryTransaction.Op

/// A read of `key` at `version`, written by `writer` (nil: the initial state).
func r(_ key: String, _ version: Int64, from writer: String? = nil, value: Int64 = 100) -> Op {
    .read(key: key, value: value, version: version, writer: writer)
}

func w(_ key: String, _ version: Int64, value: Int64 = 100) -> Op {
    .write(key: key, value: value, version: version)
}

enum T {
    static func committed(_ id: String, _ ops: Op...) -> HistoryTransaction { HistoryTransaction(id: id, outcome: .committed, ops: ops) }
    static func aborted(_ id: String, _ ops: Op...) -> HistoryTransaction { HistoryTransaction(id: id, outcome: .aborted, ops: ops) }
    static func unknown(_ id: String, _ ops: Op...) -> HistoryTransaction { HistoryTransaction(id: id, outcome: .unknown, ops: ops) }
    static func audit(_ id: String, outcome: HistoryTransaction.Outcome = .committed, _ ops: Op...) -> HistoryTransaction {
        HistoryTransaction(id: id, outcome: outcome, audit: true, ops: ops)
    }
}

/// Checks transactions under a header whose total no audit here contradicts unless it means to.
func check(_ transactions: HistoryTransaction..., totalPaise: Int64 = 200) -> HistoryReport {
    HistoryChecker().check(header: HistoryHeader(totalPaise: totalPaise), transactions: transactions)
}

/// A bank run executed one transaction at a time, so it is serializable by construction: every
/// read sees the latest committed version. Mixes in what a real run has: two-leg transactions
/// (the same account written twice), aborted transactions (their writes carry the version they
/// would have installed), unknown outcomes that did and did not commit, and audits.
enum SerialBankHistory {
    static let openingPaise: Int64 = 100_000

    static func make(transactions count: Int, accounts: Int = 64, auditEvery: Int = 97, seed: UInt64 = 1) -> History {
        struct Account { var key: String; var value: Int64; var version: Int64 = 0; var writer: String? }
        var random = Random(seed: seed)
        var books = (1...accounts).map { Account(key: "bank\($0 % 4)/acct-\(String(1_000_000 + $0).dropFirst())", value: openingPaise) }
        var transactions: [HistoryTransaction] = []
        transactions.reserveCapacity(count)
        var clockUs: UInt64 = 0
        for number in 1...count {
            let id = "T-1.\(number)"
            clockUs += 10
            if number % auditEvery == 0 {
                let reads = books.map { Op.read(key: $0.key, value: $0.value, version: $0.version, writer: $0.writer) }
                transactions.append(HistoryTransaction(id: id, outcome: .committed, audit: true, startUs: clockUs, endUs: clockUs + 5, ops: reads))
                continue
            }
            let from = Int(random.next() % UInt64(accounts))
            var to = Int(random.next() % UInt64(accounts))
            if to == from { to = (to + 1) % accounts }
            let amount = Int64(random.next() % 500)
            let roll = random.next() % 100
            let outcome: HistoryTransaction.Outcome = roll < 5 ? .aborted : roll < 8 ? .unknown : .committed
            // An unknown outcome commits half the time: the checker may not assume either.
            let applies = outcome == .committed || (outcome == .unknown && random.next() % 2 == 0)
            var scratch = books
            var ops: [Op] = []
            func debit(_ index: Int, _ paise: Int64) {
                ops.append(.write(key: scratch[index].key, value: scratch[index].value - paise, version: scratch[index].version + 1))
                scratch[index].value -= paise
                scratch[index].version += 1
                scratch[index].writer = id
            }
            ops.append(.read(key: books[from].key, value: books[from].value, version: books[from].version, writer: books[from].writer))
            if number % 5 == 0 {
                // Two legs on one account: versions k+1 then k+2, only k+2 installed for others.
                debit(from, amount / 2)
                debit(from, amount - amount / 2)
            } else {
                debit(from, amount)
            }
            ops.append(.read(key: books[to].key, value: books[to].value, version: books[to].version, writer: books[to].writer))
            debit(to, -amount)
            if applies { books = scratch }
            transactions.append(HistoryTransaction(id: id, outcome: outcome, startUs: clockUs, endUs: clockUs + 7, ops: ops))
        }
        return History(header: HistoryHeader(totalPaise: openingPaise * Int64(accounts)), transactions: transactions)
    }

    /// SplitMix64, so the generated history is the same on every run.
    struct Random {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
