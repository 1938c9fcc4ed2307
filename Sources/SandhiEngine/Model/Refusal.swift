/// Why a participant votes NO: typed, so that programs decide by the case (is it worth running
/// again? is it the workload's own insufficient funds?) and people read `description`. Made by
/// the engine's staging rule and participant protocol, and by the PostgreSQL bank for what the
/// database itself refuses (only that bank makes the cases about "the database", and their text
/// names PostgreSQL).
///
/// Boxed (`indirect`): one pointer wherever it travels inline (votes, replies, staging inputs,
/// outcomes), paid for by one allocation per NO, as the text it replaces was.
public indirect enum Refusal: Hashable, Sendable, Codable, CustomStringConvertible {
    // MARK: The data says no: running the same transfer again gets the same answer.

    /// A debit larger than the account's balance.
    case insufficientFunds(ResourceID, balance: Paise, debit: Paise)
    /// The database's own CHECK refused a negative balance (the engine's rule, over what the
    /// database read, had not): insufficient funds too, only without the figures.
    case negativeBalance(ParticipantID, TransactionID)
    /// No such account at the participant (a debit, a credit or a read of it).
    case unknownAccount(ResourceID)
    /// A debit or credit of zero or less.
    case notPositiveAmount(ResourceID, Paise)
    /// A credit that would take the balance beyond 64 bits.
    case creditOverflow(ResourceID)
    /// The branch's amounts summed per account (or in all) go beyond 64 bits.
    case amountsOverflow(TransactionID)
    /// The database refused a balance beyond 64 bits.
    case balanceOutOfRange(ParticipantID, TransactionID)
    /// A regulatory report's amount is zero or less.
    case reportAmountNotPositive(Paise)
    /// A regulatory report's kind is empty, or its kind or reference is too long.
    case reportTextInvalid
    /// The database did not write a branch the engine's rule accepts (an account missing or a
    /// balance below zero by its own reckoning).
    case notWrittenByDatabase(ParticipantID, TransactionID)
    /// The branch's gid is already prepared on the database server, and not by this bank: another
    /// coordinator deployment uses the same instance name.
    case gidInUse(ParticipantID, TransactionID, instance: String)

    // MARK: The branch is over here: this transaction cannot prepare any more.

    /// The participant rolled the branch back on its own (a heuristic decision).
    case rolledBackAlone(ParticipantID, TransactionID)
    /// The participant rolled the branch back already (its ROLLBACK overtook this PREPARE).
    case alreadyRolledBack(ParticipantID, TransactionID)

    // MARK: Busy: the same transfer can go through once others finish.

    /// Another prepared branch holds the account here: its outcome has not landed yet.
    case lockedBy(ResourceID, holder: TransactionID)
    /// The participant already holds as many branches as it may.
    case branchesFull(ParticipantID, limit: Int)
    /// A row the branch writes stayed locked past the database's `lock_timeout`, by a
    /// transaction outside this coordinator.
    case lockedInDatabase(ParticipantID, TransactionID)
    /// The database chose the branch as the victim of a deadlock with a transaction outside
    /// this coordinator.
    case deadlockInDatabase(ParticipantID, TransactionID)
    /// The database cannot prepare another transaction now (every prepared-transaction slot is
    /// in use, or it is out of memory); `detail` is the server's message.
    case databaseFull(ParticipantID, detail: String)

    /// Worth running again as it is: the refusal is about what else is in flight (a lock, a
    /// full table of branches), not about the transfer or the data. The coordinator's abort
    /// cause is `participantBusy` for these and `participantRefused` for the rest.
    public var isTransient: Bool {
        switch self {
        case .lockedBy, .branchesFull, .lockedInDatabase, .deadlockInDatabase, .databaseFull:
            return true
        case .insufficientFunds, .negativeBalance, .unknownAccount, .notPositiveAmount, .creditOverflow, .amountsOverflow,
             .balanceOutOfRange, .reportAmountNotPositive, .reportTextInvalid, .notWrittenByDatabase, .gidInUse,
             .rolledBackAlone, .alreadyRolledBack:
            return false
        }
    }

    /// The coordinator's abort cause for a transaction this refusal aborts.
    public var abortCause: AbortCause { isTransient ? .participantBusy : .participantRefused }

    /// The account's balance cannot pay the debit: the workload's own doing in a bench that
    /// draws amounts at random, counted apart from other refusals.
    public var isInsufficientFunds: Bool {
        switch self {
        case .insufficientFunds, .negativeBalance: return true
        default: return false
        }
    }

    /// A stable name for the kind of refusal, for machines reading a JSON answer
    /// (`insufficient-funds`, `locked`...): what `AbortCause`'s raw value is for abort causes.
    public var code: String {
        switch self {
        case .insufficientFunds: return "insufficient-funds"
        case .negativeBalance: return "negative-balance"
        case .unknownAccount: return "unknown-account"
        case .notPositiveAmount: return "amount-not-positive"
        case .creditOverflow: return "credit-overflow"
        case .amountsOverflow: return "amounts-overflow"
        case .balanceOutOfRange: return "balance-out-of-range"
        case .reportAmountNotPositive: return "report-amount-not-positive"
        case .reportTextInvalid: return "report-text-invalid"
        case .notWrittenByDatabase: return "not-written-by-database"
        case .gidInUse: return "gid-in-use"
        case .rolledBackAlone: return "rolled-back-alone"
        case .alreadyRolledBack: return "already-rolled-back"
        case .lockedBy: return "locked"
        case .branchesFull: return "branches-full"
        case .lockedInDatabase: return "locked-in-database"
        case .deadlockInDatabase: return "deadlock-in-database"
        case .databaseFull: return "database-full"
        }
    }

    /// For people: what the NO vote means, naming the participant and account where it can.
    public var description: String {
        switch self {
        case .insufficientFunds(let resource, let balance, let debit):
            return "insufficient funds in \(resource): balance \(balance), debit \(debit)"
        case .negativeBalance(let participant, let tx):
            return "insufficient funds in \(participant): PostgreSQL refused a negative balance for \(tx)"
        case .unknownAccount(let resource):
            return "unknown account \(resource)"
        case .notPositiveAmount(let resource, let amount):
            return "amount for \(resource) must be positive, got \(amount.value) paise"
        case .creditOverflow(let resource):
            return "credit to \(resource) would overflow"
        case .amountsOverflow(let tx):
            return "the amounts of \(tx) add up beyond \(Paise(Int64.max))"
        case .balanceOutOfRange(let participant, let tx):
            return "\(participant): PostgreSQL refused a balance beyond 64 bits for \(tx)"
        case .reportAmountNotPositive:
            return "report amount must be positive"
        case .reportTextInvalid:
            return "report text too long or empty"
        case .notWrittenByDatabase(let participant, let tx):
            return "\(participant): PostgreSQL did not write \(tx) (an account missing or a balance below zero)"
        case .gidInUse(let participant, let tx, let instance):
            return "\(participant): a gid of \(tx) is already prepared on this PostgreSQL server; is another coordinator named \(instance)?"
        case .rolledBackAlone(let participant, let tx):
            return "\(participant) rolled back \(tx) on its own"
        case .alreadyRolledBack(let participant, let tx):
            return "\(participant) already rolled back \(tx)"
        case .lockedBy(let resource, let holder):
            return "\(resource) is locked by \(holder)"
        case .branchesFull(let participant, let limit):
            return "\(participant) has \(limit) branches in flight"
        case .lockedInDatabase(let participant, let tx):
            return "\(participant): an account of \(tx) is locked in PostgreSQL by a transaction outside this coordinator"
        case .deadlockInDatabase(let participant, let tx):
            return "\(participant): PostgreSQL chose \(tx) as the victim of a deadlock with a transaction outside this coordinator"
        case .databaseFull(let participant, let detail):
            return "\(participant): PostgreSQL cannot prepare another transaction (\(detail))"
        }
    }
}
