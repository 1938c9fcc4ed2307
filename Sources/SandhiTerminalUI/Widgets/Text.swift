/// Styled text: a `Span` is a run of text in one style, a `Line` a row of spans. Widgets that
/// show text take lines; when a line is wider than its room it is cut and ends in the glyph
/// set's ellipsis, so a reader always sees that something was left out.
public struct Span: Hashable, Sendable, ExpressibleByStringLiteral {
    public var text: String
    public var style: Style

    public init(_ text: String, _ style: Style = .plain) {
        self.text = text
        self.style = style
    }

    public init(stringLiteral text: String) { self.init(text) }

    public var width: Int { DisplayWidth.of(text) }
}

public struct Line: Hashable, Sendable, ExpressibleByStringLiteral {
    public enum Alignment: Hashable, Sendable { case left, center, right }

    public var spans: [Span]
    public var alignment: Alignment

    public init(_ spans: [Span], alignment: Alignment = .left) {
        self.spans = spans
        self.alignment = alignment
    }

    public init(_ text: String, _ style: Style = .plain, alignment: Alignment = .left) {
        self.init([Span(text, style)], alignment: alignment)
    }

    public init(stringLiteral text: String) { self.init(text) }

    public var width: Int { spans.reduce(0) { $0 + $1.width } }
    public var plainText: String { spans.map(\.text).joined() }
}

extension Grid {
    /// Draws a line in `rect`'s first row: aligned, cut with `ellipsis` when too wide, each
    /// span's style patched over `base` (see `Style.patched`), the rest of the row left as it
    /// was (callers fill the background first). Returns the column after the text.
    @discardableResult
    public mutating func write(_ line: Line, in rect: Rect, base: Style = .plain,
                               ellipsis: String = GlyphSet.unicode.ellipsis) -> Int {
        guard !rect.isEmpty else { return rect.x }
        let room = rect.width
        let width = line.width
        var x = rect.x
        if width < room {
            switch line.alignment {
            case .left: break
            case .center: x += (room - width) / 2
            case .right: x += room - width
            }
        }
        let fits = width <= room
        let ellipsisWidth = DisplayWidth.of(ellipsis)
        let budgetEnd = fits ? rect.right : rect.right - ellipsisWidth
        var lastStyle = (line.spans.first?.style ?? .plain).patched(over: base)
        for span in line.spans {
            guard x < budgetEnd else { break }
            lastStyle = span.style.patched(over: base)
            x = write(span.text, x: x, y: rect.y, style: lastStyle, clip: rect, maxColumns: budgetEnd - x)
        }
        if !fits, ellipsisWidth <= room {
            x = write(ellipsis, x: x, y: rect.y, style: lastStyle, clip: rect)
        }
        return x
    }
}
