/// What one operation of a prepared branch saw of its account: the balance, the version (the
/// count of committed writes to the account) and the transaction that wrote that version. A
/// debit or credit reports what it saw before its own change; a later operation of the same
/// branch on the same account sees the branch's earlier changes, with the versions they will
/// install.
///
/// This is how reads return values, and how a recorded history knows which write every read
/// observed (Adya's version order), so a checker can look for dependency cycles.
public struct Observation: Hashable, Sendable {
    public var account: AccountID
    public var balance: Paise
    public var version: UInt64
    /// nil: the opening balance, written by no transaction.
    public var writer: TransactionID?

    public init(account: AccountID, balance: Paise, version: UInt64, writer: TransactionID?) {
        self.account = account
        self.balance = balance
        self.version = version
        self.writer = writer
    }
}
