/// A one-line text field: the `/` filter and the written reason a reconcile action needs.
/// `TextInputState` holds the text and cursor (by character, so a Devanagari conjunct or an
/// emoji is deleted whole) and edits itself from keys; `TextInput` draws it with a prompt,
/// scrolled sideways to keep the cursor in view, the cursor as a reverse-video cell (the
/// terminal's own cursor stays hidden).
public struct TextInputState: Hashable, Sendable {
    public private(set) var characters: [Character]
    /// 0...characters.count: the cursor stands before this character.
    public private(set) var cursor: Int
    /// A bound on the text, in characters: a reason is a sentence, not a file.
    public let maxCharacters: Int

    public init(_ text: String = "", maxCharacters: Int = 256) {
        self.maxCharacters = max(1, maxCharacters)
        characters = Array(text.prefix(self.maxCharacters))
        cursor = characters.count
    }

    public var text: String { String(characters) }

    public enum Outcome: Hashable, Sendable {
        case edited, moved, submitted, cancelled, ignored
    }

    /// Applies one key: characters insert at the cursor, Backspace/Delete/Ctrl-W/Ctrl-U delete,
    /// arrows/Home/End/Ctrl-A/Ctrl-E move, Enter submits, Esc cancels.
    @discardableResult
    public mutating func handle(_ key: Key) -> Outcome {
        switch key {
        case .character(let c):
            guard characters.count < maxCharacters else { return .ignored }
            characters.insert(c, at: cursor)
            cursor += 1
            return .edited
        case .backspace:
            guard cursor > 0 else { return .ignored }
            characters.remove(at: cursor - 1)
            cursor -= 1
            return .edited
        case .delete:
            guard cursor < characters.count else { return .ignored }
            characters.remove(at: cursor)
            return .edited
        case .control("w"):
            // The word before the cursor and the spaces after it.
            var start = cursor
            while start > 0, characters[start - 1] == " " { start -= 1 }
            while start > 0, characters[start - 1] != " " { start -= 1 }
            guard start < cursor else { return .ignored }
            characters.removeSubrange(start..<cursor)
            cursor = start
            return .edited
        case .control("u"):
            guard cursor > 0 else { return .ignored }
            characters.removeSubrange(0..<cursor)
            cursor = 0
            return .edited
        case .left: return move(to: cursor - 1)
        case .right: return move(to: cursor + 1)
        case .home, .control("a"): return move(to: 0)
        case .end, .control("e"): return move(to: characters.count)
        case .enter: return .submitted
        case .escape: return .cancelled
        default: return .ignored
        }
    }

    private mutating func move(to position: Int) -> Outcome {
        let target = min(max(0, position), characters.count)
        guard target != cursor else { return .ignored }
        cursor = target
        return .moved
    }
}

public struct TextInput: Widget {
    public var prompt: Span
    public var state: TextInputState
    public var style: Style
    public var cursorStyle: Style

    public init(prompt: Span, state: TextInputState, style: Style = .plain, cursorStyle: Style = Style(.reverse)) {
        self.prompt = prompt
        self.state = state
        self.style = style
        self.cursorStyle = cursorStyle
    }

    public func render(into grid: inout Grid, area: Rect) {
        guard !area.isEmpty else { return }
        let rect = area.row(0)
        grid.fill(rect, style: style)
        let fieldX = grid.write(prompt.text, x: rect.x, y: rect.y, style: prompt.style, clip: rect)
        let field = Rect(x: fieldX, y: rect.y, width: rect.right - fieldX, height: 1)
        guard field.width > 0 else { return }
        // Scroll so the cursor (one column, after the text at the end) fits: columns before the
        // cursor, minus the room, is how far the text is pushed left.
        let widths = state.characters.map { DisplayWidth.of(String($0)) }
        let beforeCursor = widths[..<state.cursor].reduce(0, +)
        let cursorWidth = state.cursor < widths.count ? max(1, widths[state.cursor]) : 1
        let shift = max(0, beforeCursor + cursorWidth - field.width)
        grid.write(state.text, x: field.x - shift, y: field.y, style: style, clip: field)
        let cursorRect = Rect(x: field.x + beforeCursor - shift, y: field.y, width: cursorWidth, height: 1)
        grid.setStyle(cursorRect.intersection(field), cursorStyle)
    }
}
