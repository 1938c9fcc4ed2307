/// The first line of a history file: what every audit must see.
public struct HistoryHeader: Hashable, Sendable {
    /// The format this code reads and writes; a file of another version is refused, not guessed at.
    public static let formatVersion = 1

    /// The constant sum of every balance (integer paise). Transfers move money and never create or
    /// destroy it, so every committed audit's reads must add up to exactly this.
    public var totalPaise: Int64

    public init(totalPaise: Int64) {
        self.totalPaise = totalPaise
    }
}
