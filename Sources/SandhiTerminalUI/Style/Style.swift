/// How a cell looks: colours and attributes. Small and trivially copyable, since every cell of
/// every frame carries one.
public struct Style: Hashable, Sendable, CustomStringConvertible {
    public var foreground: Color
    public var background: Color
    public var attributes: Attributes

    public init(fg foreground: Color = .default, bg background: Color = .default, _ attributes: Attributes = []) {
        self.foreground = foreground
        self.background = background
        self.attributes = attributes
    }

    public static let plain = Style()

    public struct Attributes: OptionSet, Hashable, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let bold = Attributes(rawValue: 1 << 0)
        public static let dim = Attributes(rawValue: 1 << 1)
        public static let italic = Attributes(rawValue: 1 << 2)
        public static let underline = Attributes(rawValue: 1 << 3)
        public static let reverse = Attributes(rawValue: 1 << 4)

        /// The names a theme file uses, in the order a style is described.
        public static let named: [(String, Attributes)] = [
            ("bold", .bold), ("dim", .dim), ("italic", .italic), ("underline", .underline), ("reverse", .reverse),
        ]
    }

    public func adding(_ more: Attributes) -> Style {
        var copy = self
        copy.attributes.formUnion(more)
        return copy
    }

    /// This style drawn over `base` (a span over its panel's background): a default colour
    /// here takes the base's colour, and the attributes add up. So a plain span inside a
    /// coloured overlay keeps the overlay's background instead of punching a hole in it.
    public func patched(over base: Style) -> Style {
        Style(fg: foreground == .default ? base.foreground : foreground,
              bg: background == .default ? base.background : background,
              attributes.union(base.attributes))
    }

    public func downgraded(to depth: ColorDepth) -> Style {
        Style(fg: foreground.downgraded(to: depth), bg: background.downgraded(to: depth), attributes)
    }

    /// `fg=green bg=default bold`: the form golden tests and error messages use.
    public var description: String {
        var parts = ["fg=\(foreground)", "bg=\(background)"]
        for (name, attribute) in Attributes.named where attributes.contains(attribute) { parts.append(name) }
        return parts.joined(separator: " ")
    }
}
