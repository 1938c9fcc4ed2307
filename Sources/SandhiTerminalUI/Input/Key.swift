/// A key press (or a resize), the console's one kind of input. The curses backend makes them
/// from ncurses' key codes; `KeyDecoder` makes them from raw terminal bytes (tests, and any
/// raw-mode path). Both speak this enum, so the console model never knows which one ran.
public enum Key: Hashable, Sendable, CustomStringConvertible {
    /// A printable character (never a control).
    case character(Character)
    case enter, escape, tab, backTab, backspace, delete, insert
    case up, down, left, right, home, end, pageUp, pageDown
    /// F1–F12.
    case function(Int)
    /// Ctrl with a letter, lowercase: `.control("c")` is Ctrl-C (which arrives as a key, since
    /// the backend runs the terminal raw).
    case control(Character)
    /// The terminal now has this size (curses' KEY_RESIZE).
    case resize(Size)

    public var description: String {
        switch self {
        case .character(" "): "Space"
        case .character(let c): String(c)
        case .enter: "Enter"
        case .escape: "Esc"
        case .tab: "Tab"
        case .backTab: "Shift-Tab"
        case .backspace: "Backspace"
        case .delete: "Delete"
        case .insert: "Insert"
        case .up: "Up"
        case .down: "Down"
        case .left: "Left"
        case .right: "Right"
        case .home: "Home"
        case .end: "End"
        case .pageUp: "PgUp"
        case .pageDown: "PgDn"
        case .function(let n): "F\(n)"
        case .control(let c): "Ctrl-\(String(c).uppercased())"
        case .resize(let size): "resize \(size)"
        }
    }
}
