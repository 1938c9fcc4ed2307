/// The one-line key-hint bar at the bottom (`? help  / filter  q quit`), with an optional note
/// at the right (PAUSED, read-only). Hints that do not fit are dropped from the end, whole:
/// list the most useful first.
public struct StatusBar: Widget {
    public struct Hint: Hashable, Sendable {
        public var key: String
        public var label: String
        public init(_ key: String, _ label: String) {
            self.key = key
            self.label = label
        }
    }

    public var hints: [Hint]
    public var note: Span?
    public var style: Style
    public var keyStyle: Style

    public init(_ hints: [Hint], note: Span? = nil, style: Style = .plain, keyStyle: Style = Style(.bold)) {
        self.hints = hints
        self.note = note
        self.style = style
        self.keyStyle = keyStyle
    }

    public func render(into grid: inout Grid, area: Rect) {
        guard !area.isEmpty else { return }
        let rect = area.row(0)
        grid.fill(rect, style: style)
        var right = rect.right
        if let note, note.width + 1 <= rect.width {
            right -= note.width
            grid.write(note.text, x: right, y: rect.y, style: note.style, clip: rect)
            right -= 1
        }
        var x = rect.x + 1
        for hint in hints {
            let keyWidth = DisplayWidth.of(hint.key), labelWidth = DisplayWidth.of(hint.label)
            guard x + keyWidth + 1 + labelWidth <= right else { break }
            x = grid.write(hint.key, x: x, y: rect.y, style: keyStyle, clip: rect) + 1
            x = grid.write(hint.label, x: x, y: rect.y, style: style, clip: rect) + 2
        }
    }
}
