/// The screen bar: `[1 Tx] [2 Locks] [3 Waits] ...`, the current screen highlighted. When the
/// full titles do not fit, the other screens shrink to their key (`[1] [2 Locks] [3] ...`),
/// and tabs that still do not fit are left off whole, never cut mid-bracket.
public struct Tabs: Widget {
    public struct Tab: Hashable, Sendable {
        public var key: String
        public var title: String
        public init(key: String, title: String) {
            self.key = key
            self.title = title
        }
    }

    public var tabs: [Tab]
    public var selected: Int
    public var style: Style
    public var activeStyle: Style

    public init(_ tabs: [Tab], selected: Int, style: Style = .plain, activeStyle: Style = Style(.reverse)) {
        self.tabs = tabs
        self.selected = selected
        self.style = style
        self.activeStyle = activeStyle
    }

    func labels(short: Bool) -> [String] {
        tabs.enumerated().map { i, tab in
            short && i != selected ? "[\(tab.key)]" : "[\(tab.key) \(tab.title)]"
        }
    }

    public func render(into grid: inout Grid, area: Rect) {
        guard !area.isEmpty else { return }
        let rect = area.row(0)
        grid.fill(rect, style: style)
        var labels = labels(short: false)
        let total = labels.reduce(0) { $0 + DisplayWidth.of($1) } + max(0, labels.count - 1)
        if total > rect.width { labels = self.labels(short: true) }
        var x = rect.x
        for (i, label) in labels.enumerated() {
            let w = DisplayWidth.of(label)
            guard x + w <= rect.right else { break }
            x = grid.write(label, x: x, y: rect.y, style: i == selected ? activeStyle : style, clip: rect) + 1
        }
    }
}
