/// A theme: a style for every role, for terminals with 256 colours or more, and a second
/// style per role in the 16 ANSI colours for terminals with fewer (whose palette the user
/// set, so a theme cannot assume #rrggbb there). `adapted(to:)` picks and downgrades for the
/// terminal's depth; `monochrome` keeps only attributes (bold, reverse...).
public struct Theme: Hashable, Sendable {
    public var name: String
    public var styles: [ThemeRole: Style]
    /// Roles' styles in the 16 ANSI colours; a role left out here is downgraded from `styles`
    /// to the nearest ANSI colours.
    public var fallback16: [ThemeRole: Style]

    public init(name: String, styles: [ThemeRole: Style], fallback16: [ThemeRole: Style] = [:]) {
        self.name = name
        self.styles = styles
        self.fallback16 = fallback16
    }

    /// A role's style; a role the theme left out is plain (the terminal's own colours, which
    /// are readable on any background).
    public subscript(role: ThemeRole) -> Style { styles[role] ?? .plain }

    /// This theme as a terminal of `depth` can show it: true colour as is; 256 colours with
    /// #rrggbb brought to the palette; 16 or 8 colours from the fallback; none, attributes only
    /// (and reverse video where there was a background colour).
    public func adapted(to depth: ColorDepth) -> Theme {
        var adapted = self
        switch depth {
        case .trueColor:
            return self
        case .indexed256:
            adapted.styles = styles.mapValues { $0.downgraded(to: .indexed256) }
        case .ansi16, .ansi8:
            var chosen: [ThemeRole: Style] = [:]
            for (role, style) in styles { chosen[role] = (fallback16[role] ?? style).downgraded(to: depth) }
            adapted.styles = chosen
        case .monochrome:
            // A coloured background marked something out (the header, the selection, a fault):
            // reverse video keeps it marked.
            adapted.styles = styles.mapValues { style in
                let plain = style.downgraded(to: .monochrome)
                return style.background == .default ? plain : plain.adding(.reverse)
            }
        }
        adapted.fallback16 = adapted.styles.mapValues { $0.downgraded(to: .ansi16) }
        return adapted
    }

    /// NO_COLOR set to anything but the empty string (no-color.org).
    public static func noColorRequested(environment: [String: String]) -> Bool {
        guard let value = environment["NO_COLOR"] else { return false }
        return !value.isEmpty
    }

    /// The built-in theme, for when no theme file can be read: the same as themes/default.toml
    /// (a test keeps them equal), so a console started anywhere looks the same.
    public static let builtIn: Theme = {
        func s(_ fg: Color, _ bg: Color = .default, _ attributes: Style.Attributes = []) -> Style { Style(fg: fg, bg: bg, attributes) }
        let bright = { (i: UInt8) in Color.ansi(8 + i) }
        let styles: [ThemeRole: Style] = [
            .text: s(.default), .dim: s(.indexed(245)), .title: s(.indexed(117), .default, .bold), .border: s(.indexed(240)),
            .header: s(.indexed(231), .indexed(24), .bold), .headerAlert: s(.indexed(231), .indexed(124), .bold),
            .tab: s(.indexed(250), .indexed(236)), .tabActive: s(.indexed(16), .indexed(117), .bold),
            .tableHeader: s(.indexed(117), .default, .bold), .selection: s(.indexed(231), .indexed(25), .bold),
            .statusBar: s(.indexed(250), .indexed(236)), .key: s(.indexed(222), .indexed(236), .bold),
            .input: s(.indexed(231), .indexed(236)), .cursor: s(.indexed(16), .indexed(231)),
            .overlay: s(.indexed(252), .indexed(235)), .overlayBorder: s(.indexed(117), .indexed(235)),
            .active: s(.indexed(117)), .prepared: s(.indexed(75)), .committed: s(.indexed(114)),
            .aborted: s(.indexed(203)), .inDoubt: s(.indexed(221), .default, .bold), .heuristic: s(.indexed(213), .default, .bold),
            .voteYes: s(.indexed(114)), .voteNo: s(.indexed(203), .default, .bold), .votePending: s(.indexed(245)),
            .warning: s(.indexed(221)), .fault: s(.indexed(231), .indexed(124), .bold), .error: s(.indexed(203), .default, .bold),
            .ok: s(.indexed(114)), .waiting: s(.indexed(221)), .cycle: s(.indexed(203), .default, .bold),
            .victim: s(.indexed(231), .indexed(124), .bold),
        ]
        let fallback: [ThemeRole: Style] = [
            .text: s(.default), .dim: s(bright(0)), .title: s(.cyan, .default, .bold), .border: s(bright(0)),
            .header: s(.black, .cyan, .bold), .headerAlert: s(bright(7), .red, .bold),
            .tab: s(.default), .tabActive: s(.black, .cyan, .bold),
            .tableHeader: s(.cyan, .default, .bold), .selection: s(.black, .white, .bold),
            .statusBar: s(.default), .key: s(.yellow, .default, .bold),
            .input: s(.default), .cursor: s(.black, .white),
            .overlay: s(.default), .overlayBorder: s(.cyan),
            .active: s(.cyan), .prepared: s(.blue), .committed: s(.green),
            .aborted: s(.red), .inDoubt: s(.yellow, .default, .bold), .heuristic: s(.magenta, .default, .bold),
            .voteYes: s(.green), .voteNo: s(.red, .default, .bold), .votePending: s(bright(0)),
            .warning: s(.yellow), .fault: s(bright(7), .red, .bold), .error: s(.red, .default, .bold),
            .ok: s(.green), .waiting: s(.yellow), .cycle: s(.red, .default, .bold),
            .victim: s(bright(7), .red, .bold),
        ]
        return Theme(name: "default", styles: styles, fallback16: fallback)
    }()
}
