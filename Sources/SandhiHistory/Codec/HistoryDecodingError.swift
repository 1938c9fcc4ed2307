/// Why a history file cannot be read, and where: tools print it after the file's name.
public struct HistoryDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// 1-based, counting every line of the file (blank ones too), as an editor does.
    public var line: Int
    public var problem: String

    public init(line: Int, problem: String) {
        self.line = line
        self.problem = problem
    }

    public var description: String { "line \(line): \(problem)" }
}
