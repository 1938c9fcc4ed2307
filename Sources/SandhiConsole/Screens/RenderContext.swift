import Foundation
import SandhiEngine
import SandhiTerminalUI

/// What every screen draws with: the theme's roles and the glyphs the terminal can show.
public struct RenderContext: Sendable {
    public var theme: Theme
    public var glyphs: GlyphSet

    public init(theme: Theme, glyphs: GlyphSet) {
        self.theme = theme
        self.glyphs = glyphs
    }

    public subscript(role: ThemeRole) -> Style { theme[role] }

    func mark(_ mark: TransactionHistory.Mark) -> Span {
        switch mark {
        case .notAsked: Span(" ", theme[.dim])
        case .pending: Span(glyphs.votePending, theme[.votePending])
        case .yes, .acknowledged: Span(glyphs.voteYes, theme[.voteYes])
        case .no: Span(glyphs.voteNo, theme[.voteNo])
        case .readOnly: Span(glyphs.voteReadOnly, theme[.dim])
        case .timedOut: Span(glyphs.voteTimedOut, theme[.warning])
        case .heuristic: Span("!", theme[.heuristic])
        }
    }

    func stateRole(_ state: TransactionState) -> ThemeRole {
        switch state {
        case .active, .preparing: .active
        case .prepared, .committing: .prepared
        case .committed: .committed
        case .aborting, .aborted: .aborted
        case .heuristic: .heuristic
        }
    }

    /// Money for people, in the terminal's glyphs (`Rs` where ₹ cannot be shown).
    func money(_ amount: Paise) -> String {
        let text = amount.formatted(symbol: true, showPaise: amount.value % 100 != 0)
        return glyphs.isUnicode ? text : text.replacingFirst("₹", with: glyphs.rupee)
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}

/// `12ms`, `3.4s`, `2m05s`: ages for people.
func age(_ micros: UInt64) -> String {
    // No µ: it is not ASCII, and a terminal without UTF-8 must read every figure.
    if micros < 1_000 { return "0.\(micros / 100)ms" }
    if micros < 60_000_000 { return formatMicros(micros) }
    let seconds = micros / 1_000_000
    return "\(seconds / 60)m\(seconds % 60 < 10 ? "0" : "")\(seconds % 60)s"
}
