/// What a piece of the screen means, which a theme maps to a style. Widgets and the console
/// ask for roles, never colours, so a theme file can restyle everything and `NO_COLOR` can take
/// every colour away without touching a screen.
public enum ThemeRole: String, CaseIterable, Hashable, Sendable {
    // Chrome.
    case text, dim, title, border
    case header, headerAlert = "header_alert"
    case tab, tabActive = "tab_active"
    case tableHeader = "table_header"
    case selection
    case statusBar = "status_bar", key
    case input, cursor
    case overlay, overlayBorder = "overlay_border"
    // Transaction states and outcomes.
    case active, prepared, committed, aborted, inDoubt = "in_doubt", heuristic
    // Votes.
    case voteYes = "vote_yes", voteNo = "vote_no", votePending = "vote_pending"
    // Attention.
    case warning, fault, error, ok
    // The wait-for graph.
    case waiting, cycle, victim
}
