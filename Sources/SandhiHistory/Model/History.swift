/// A whole history file: the header and every transaction, in file order.
public struct History: Hashable, Sendable {
    public var header: HistoryHeader
    public var transactions: [HistoryTransaction]

    public init(header: HistoryHeader, transactions: [HistoryTransaction]) {
        self.header = header
        self.transactions = transactions
    }
}
