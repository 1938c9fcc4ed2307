import PostgresNIO

/// What can go wrong with a PostgreSQL bank, each a one-line description naming the database.
public enum PostgresBankError: Error, CustomStringConvertible, Equatable {
    case unreachable(database: String, detail: String)
    case statement(database: String, what: String, detail: String)
    case notSandhi(database: String, detail: String)
    case wrongParticipant(database: String, found: String, expected: String)
    case alreadyABank(database: String)
    /// A failed batch could not be followed by a clean reload: the bank must not be used again.
    case unusable(database: String, detail: String)

    public var description: String {
        switch self {
        case .unreachable(let database, let detail): return "cannot connect to PostgreSQL database \(database): \(detail)"
        case .statement(let database, let what, let detail): return "PostgreSQL database \(database) failed \(what): \(detail)"
        case .notSandhi(let database, let detail): return "PostgreSQL database \(database) is not a Sandhi bank (\(detail))"
        case .wrongParticipant(let database, let found, let expected): return "PostgreSQL database \(database) belongs to participant \(found), not \(expected)"
        case .alreadyABank(let database): return "PostgreSQL database \(database) already holds a bank (or an accounts table); refusing to overwrite it"
        case .unusable(let database, let detail): return "PostgreSQL bank \(database) stopped after a failed batch: \(detail)"
        }
    }
}

/// SQLSTATEs the bank answers in its own way.
package enum SQLState {
    /// `undefined_object`: COMMIT/ROLLBACK PREPARED of a gid that is not prepared (any more).
    package static let undefinedObject = "42704"
    /// `check_violation`: the balance would go below zero.
    package static let checkViolation = "23514"
    /// `numeric_value_out_of_range`: a balance beyond 64 bits.
    package static let numericValueOutOfRange = "22003"
    /// `lock_not_available`: `lock_timeout` ran out waiting for a row.
    package static let lockNotAvailable = "55P03"
    /// `deadlock_detected`: waiting on a writer outside Sandhi that waits on us.
    package static let deadlockDetected = "40P01"
    /// `duplicate_object`: PREPARE TRANSACTION of a gid already prepared (gids are server-wide).
    package static let duplicateObject = "42710"
    /// `out_of_memory`: among others, every `max_prepared_transactions` slot is in use.
    package static let outOfMemory = "53200"
    /// `undefined_table`: a database without the bank's tables.
    package static let undefinedTable = "42P01"
}
