/// Anything that draws itself into a grid area. Widgets are values built afresh each frame from
/// the console's model (cheap: only what is visible is formatted); state that outlives a frame
/// (a selection, a scroll offset, an input line) lives in the caller and is passed in.
public protocol Widget {
    func render(into grid: inout Grid, area: Rect)
}

extension Grid {
    public mutating func render(_ widget: some Widget, area: Rect) {
        widget.render(into: &self, area: area)
    }
}

/// A widget with a selection and a scroll offset that outlive the frame (a table, a list).
/// Drawing it may move the offset to keep the selection in view, so the stateful `render`
/// hands the state back for the caller to keep; the plain one draws from `state` and drops it.
public protocol StatefulWidget: Widget {
    var state: TableState { get }
    func render(into grid: inout Grid, area: Rect, state: inout TableState)
}

extension StatefulWidget {
    public func render(into grid: inout Grid, area: Rect) {
        var state = self.state
        render(into: &grid, area: area, state: &state)
    }
}

/// Blanks an area (under a popup, before a screen is redrawn).
public struct Clear: Widget {
    public var style: Style
    public init(_ style: Style = .plain) { self.style = style }
    public func render(into grid: inout Grid, area: Rect) { grid.fill(area, style: style) }
}

/// Where a scrolled view starts so that its selection is visible: the offset moves only when
/// the selection would leave the view (so the list does not jump on every key), and never
/// leaves blank rows below the last item when it could show more.
public enum Scrolling {
    public static func offset(current: Int, selected: Int?, count: Int, viewport: Int) -> Int {
        guard viewport > 0, count > 0 else { return 0 }
        var offset = min(max(0, current), max(0, count - viewport))
        if let selected {
            let s = min(max(0, selected), count - 1)
            if s < offset { offset = s }
            if s >= offset + viewport { offset = s - viewport + 1 }
        }
        return offset
    }
}
