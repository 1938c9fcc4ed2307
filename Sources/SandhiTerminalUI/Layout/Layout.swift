/// Splits a rectangle into rows (vertical) or columns (horizontal) by constraints, as a screen
/// is cut into header, tab bar, body and key bar.
///
/// The rule, chosen to be predictable on a small terminal rather than clever:
/// 1. Each segment asks for its base: `length(n)` n, `percentage(p)` p% of the whole (rounded
///    down), `min(n)` n, `fill` nothing.
/// 2. If the bases do not fit, segments give way from the last one backwards (down to zero),
///    so the ones listed first (the header, the tabs) stay whole the longest.
/// 3. What is left goes to `fill` segments by weight (the remainder to the first ones); with no
///    fill it grows the `min` segments evenly; with neither it is left unused at the end.
/// Spacing between segments is taken first, and shrinks to zero when even that does not fit.
public enum Constraint: Hashable, Sendable {
    case length(Int)
    case percentage(Int)
    case min(Int)
    case fill(Int)

    public static let fill = Constraint.fill(1)
}

public struct Layout: Sendable {
    public enum Direction: Sendable { case vertical, horizontal }

    public var direction: Direction
    public var constraints: [Constraint]
    public var spacing: Int

    public init(_ direction: Direction, _ constraints: [Constraint], spacing: Int = 0) {
        self.direction = direction
        self.constraints = constraints
        self.spacing = max(0, spacing)
    }

    public static func vertical(_ constraints: [Constraint], spacing: Int = 0) -> Layout {
        Layout(.vertical, constraints, spacing: spacing)
    }

    public static func horizontal(_ constraints: [Constraint], spacing: Int = 0) -> Layout {
        Layout(.horizontal, constraints, spacing: spacing)
    }

    public func split(_ rect: Rect) -> [Rect] {
        let total = direction == .vertical ? rect.height : rect.width
        let gaps = max(0, constraints.count - 1)
        let gap = spacing * gaps <= total ? spacing : 0
        let sizes = Layout.sizes(constraints, available: total - gap * gaps)
        var offset = 0
        return sizes.map { size in
            defer { offset += size + gap }
            switch direction {
            case .vertical: return Rect(x: rect.x, y: rect.y + offset, width: rect.width, height: size)
            case .horizontal: return Rect(x: rect.x + offset, y: rect.y, width: size, height: rect.height)
            }
        }
    }

    /// The length of each segment along the split.
    static func sizes(_ constraints: [Constraint], available: Int) -> [Int] {
        guard !constraints.isEmpty else { return [] }
        var sizes = constraints.map { constraint -> Int in
            switch constraint {
            case .length(let n), .min(let n): return max(0, n)
            case .percentage(let p): return max(0, available * min(max(p, 0), 100) / 100)
            case .fill: return 0
            }
        }
        var excess = sizes.reduce(0, +) - available
        var index = sizes.count - 1
        while excess > 0, index >= 0 {
            let cut = Swift.min(excess, sizes[index])
            sizes[index] -= cut
            excess -= cut
            index -= 1
        }
        let spare = available - sizes.reduce(0, +)
        guard spare > 0 else { return sizes }
        let fills = constraints.indices.compactMap { i -> (Int, Int)? in
            if case .fill(let weight) = constraints[i] { return (i, max(weight, 0)) }
            return nil
        }
        let weights = fills.reduce(0) { $0 + $1.1 }
        if weights > 0 {
            var given = 0
            for (i, weight) in fills {
                let share = spare * weight / weights
                sizes[i] += share
                given += share
            }
            var remainder = spare - given
            for (i, weight) in fills where remainder > 0 && weight > 0 {
                sizes[i] += 1
                remainder -= 1
            }
            return sizes
        }
        let mins = constraints.indices.filter { if case .min = constraints[$0] { true } else { false } }
        guard !mins.isEmpty else { return sizes }
        for (k, i) in mins.enumerated() {
            let share = spare / mins.count + (k < spare % mins.count ? 1 : 0)
            sizes[i] += share
        }
        return sizes
    }
}
