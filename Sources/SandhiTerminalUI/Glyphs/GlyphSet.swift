/// The symbols the console draws, in two spellings: Unicode for a UTF-8 terminal and plain
/// ASCII for any other (a serial console, `LANG=C` over SSH), where a ✓ or a box corner would
/// come out as mojibake. The backend picks the set from the locale's codeset; widgets take it
/// as a parameter and never spell a symbol themselves.
///
/// In the ASCII set every symbol is one column wide, except `rupee` ("Rs"); in the Unicode set
/// all are, except `voteTimedOut` (⏳, an emoji, two columns): size columns by measuring.
public struct GlyphSet: Hashable, Sendable {
    public var isUnicode: Bool

    // Votes (the transaction table): yes, no, not yet, timed out (also a transaction waiting), read-only.
    public var voteYes: String
    public var voteNo: String
    public var votePending: String
    public var voteTimedOut: String
    public var voteReadOnly: String

    // Text.
    public var ellipsis: String
    public var rupee: String
    public var bullet: String
    public var arrowRight: String
    public var arrowLeft: String
    public var arrowUp: String
    public var arrowDown: String
    public var selectionMarker: String
    public var emDash: String

    // Box drawing: borders of blocks, overlays, separators.
    public var horizontal: String
    public var vertical: String
    public var topLeft: String
    public var topRight: String
    public var bottomLeft: String
    public var bottomRight: String
    public var teeLeft: String   // ├
    public var teeRight: String  // ┤
    public var teeDown: String   // ┬
    public var teeUp: String     // ┴
    public var cross: String

    public static let unicode = GlyphSet(
        isUnicode: true,
        voteYes: "✓", voteNo: "✗", votePending: "…", voteTimedOut: "⏳", voteReadOnly: "·",
        ellipsis: "…", rupee: "₹", bullet: "●", arrowRight: "→", arrowLeft: "←", arrowUp: "▲", arrowDown: "▼",
        selectionMarker: "▶", emDash: "—",
        horizontal: "─", vertical: "│", topLeft: "┌", topRight: "┐", bottomLeft: "└", bottomRight: "┘",
        teeLeft: "├", teeRight: "┤", teeDown: "┬", teeUp: "┴", cross: "┼")

    public static let ascii = GlyphSet(
        isUnicode: false,
        voteYes: "Y", voteNo: "N", votePending: ".", voteTimedOut: "T", voteReadOnly: "-",
        ellipsis: "~", rupee: "Rs", bullet: "*", arrowRight: ">", arrowLeft: "<", arrowUp: "^", arrowDown: "v",
        selectionMarker: ">", emDash: "-",
        horizontal: "-", vertical: "|", topLeft: "+", topRight: "+", bottomLeft: "+", bottomRight: "+",
        teeLeft: "+", teeRight: "+", teeDown: "+", teeUp: "+", cross: "+")

    /// The set for a locale codeset as `nl_langinfo(CODESET)` names it ("UTF-8", "utf8",
    /// "ANSI_X3.4-1968"...).
    public static func forCodeset(_ codeset: String) -> GlyphSet {
        let normal = codeset.lowercased().filter { $0 != "-" && $0 != "_" }
        return normal == "utf8" ? .unicode : .ascii
    }

    /// The set for an environment, by the variables that decide LC_CTYPE (LC_ALL, then
    /// LC_CTYPE, then LANG): for tests and for choosing before curses starts. The backend asks
    /// the C library instead, which also knows the system default.
    public static func forEnvironment(_ environment: [String: String]) -> GlyphSet {
        for name in ["LC_ALL", "LC_CTYPE", "LANG"] {
            guard let value = environment[name], !value.isEmpty else { continue }
            let codeset = value.split(separator: ".").dropFirst().first.map { $0.split(separator: "@").first ?? $0 } ?? ""
            return forCodeset(String(codeset))
        }
        return .ascii
    }
}
