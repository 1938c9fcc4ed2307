/// A cell's foreground or background colour, as precise as the theme gave it. The backend
/// (or `Theme.adapted(to:)` before it) brings it down to what the terminal can show: a
/// true-colour value becomes the nearest of the 256-colour palette, then of the 16, then of 8.
public enum Color: Hashable, Sendable, CustomStringConvertible {
    /// The terminal's own foreground or background (what `use_default_colors` keeps).
    case `default`
    /// One of the 16 ANSI colours, 0–7 normal and 8–15 bright; the values the user's terminal
    /// palette gives, which is why every theme's 16-colour fallback uses only these.
    case ansi(UInt8)
    /// One of the xterm 256-colour palette: 0–15 as `ansi`, 16–231 a 6x6x6 cube, 232–255 greys.
    case indexed(UInt8)
    case rgb(UInt8, UInt8, UInt8)

    /// The palette names a theme file may use, in ANSI order.
    public static let paletteNames = [
        "black", "red", "green", "yellow", "blue", "magenta", "cyan", "white",
        "bright_black", "bright_red", "bright_green", "bright_yellow",
        "bright_blue", "bright_magenta", "bright_cyan", "bright_white",
    ]

    public static let black = Color.ansi(0), red = Color.ansi(1), green = Color.ansi(2)
    public static let yellow = Color.ansi(3), blue = Color.ansi(4), magenta = Color.ansi(5)
    public static let cyan = Color.ansi(6), white = Color.ansi(7)

    /// Reads a theme's spelling: a palette name (`grey`/`gray` = bright_black), `#rrggbb`,
    /// `default`, or a number 0–255 written as text. Nil when it is none of these.
    public init?(name text: String) {
        let lowered = text.lowercased()
        if lowered == "default" { self = .default; return }
        if lowered == "grey" || lowered == "gray" { self = .ansi(8); return }
        if let index = Color.paletteNames.firstIndex(of: lowered) { self = .ansi(UInt8(index)); return }
        if lowered.hasPrefix("#") {
            let hex = lowered.dropFirst()
            guard hex.count == 6, let value = UInt32(hex, radix: 16) else { return nil }
            self = .rgb(UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF))
            return
        }
        if let index = Int(lowered), (0...255).contains(index) { self = .indexed(UInt8(index)); return }
        return nil
    }

    public var description: String {
        switch self {
        case .default: "default"
        case .ansi(let i): i < 16 ? Color.paletteNames[Int(i)] : "ansi\(i)"
        case .indexed(let i): "\(i)"
        case .rgb(let r, let g, let b): "#" + [r, g, b].map { hex2($0) }.joined()
        }
    }

    // MARK: - Downgrading

    /// This colour on a terminal of the given depth.
    public func downgraded(to depth: ColorDepth) -> Color {
        switch depth {
        case .trueColor: return self
        case .indexed256:
            if case .rgb(let r, let g, let b) = self { return .indexed(Color.nearestIndexed(r, g, b)) }
            return self
        case .ansi16: return ansi16
        case .ansi8:
            if case .ansi(let i) = ansi16 { return .ansi(i & 7) }
            return .default
        case .monochrome: return .default
        }
    }

    /// The colour's red, green and blue (the xterm defaults for palette colours); nil for the
    /// terminal's default. For direct-colour terminals, whose colour numbers are RGB values.
    public var rgbComponents: (red: UInt8, green: UInt8, blue: UInt8)? {
        switch self {
        case .default: nil
        case .ansi(let i): Color.ansiRGB[Int(i & 15)]
        case .indexed(let i): Color.rgbOfIndexed(i)
        case .rgb(let r, let g, let b): (r, g, b)
        }
    }

    /// The nearest of the 16 ANSI colours (by the xterm default palette), or `default`.
    var ansi16: Color {
        switch self {
        case .default: return .default
        case .ansi(let i): return .ansi(i & 15)
        case .indexed(let i) where i < 16: return .ansi(i)
        case .indexed(let i):
            let (r, g, b) = Color.rgbOfIndexed(i)
            return .ansi(Color.nearestAnsi(r, g, b))
        case .rgb(let r, let g, let b): return .ansi(Color.nearestAnsi(r, g, b))
        }
    }

    /// xterm's default values for the 16 ANSI colours.
    static let ansiRGB: [(UInt8, UInt8, UInt8)] = [
        (0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205), (229, 229, 229),
        (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255),
    ]

    static let cubeLevels: [Int] = [0, 95, 135, 175, 215, 255]

    static func rgbOfIndexed(_ index: UInt8) -> (UInt8, UInt8, UInt8) {
        let i = Int(index)
        if i < 16 { return ansiRGB[i] }
        if i >= 232 { let v = UInt8(8 + (i - 232) * 10); return (v, v, v) }
        let c = i - 16
        return (UInt8(cubeLevels[c / 36]), UInt8(cubeLevels[c / 6 % 6]), UInt8(cubeLevels[c % 6]))
    }

    static func nearestIndexed(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
        // The nearest cube entry and the nearest grey, whichever is closer: the cube alone
        // turns every dark grey into black.
        func level(_ v: UInt8) -> Int { cubeLevels.indices.min { abs(cubeLevels[$0] - Int(v)) < abs(cubeLevels[$1] - Int(v)) }! }
        let cube = 16 + 36 * level(r) + 6 * level(g) + level(b)
        let average = (Int(r) + Int(g) + Int(b)) / 3
        let grey = 232 + min(23, max(0, (average - 8 + 5) / 10))
        let candidates = [cube, grey]
        return UInt8(candidates.min { distance(rgbOfIndexed(UInt8($0)), (r, g, b)) < distance(rgbOfIndexed(UInt8($1)), (r, g, b)) }!)
    }

    static func nearestAnsi(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
        UInt8(ansiRGB.indices.min { distance(ansiRGB[$0], (r, g, b)) < distance(ansiRGB[$1], (r, g, b)) }!)
    }

    static func distance(_ a: (UInt8, UInt8, UInt8), _ b: (UInt8, UInt8, UInt8)) -> Int {
        let dr = Int(a.0) - Int(b.0), dg = Int(a.1) - Int(b.1), db = Int(a.2) - Int(b.2)
        // Weighted for the eye's sensitivity (green most, blue least), cheap and good enough.
        return 3 * dr * dr + 4 * dg * dg + 2 * db * db
    }
}

private func hex2(_ v: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(v >> 4)], digits[Int(v & 15)]])
}

/// How many colours a terminal can show (from curses' COLORS), from none to 24-bit.
public enum ColorDepth: Int, Comparable, Sendable, CaseIterable {
    case monochrome = 0, ansi8 = 8, ansi16 = 16, indexed256 = 256, trueColor = 16_777_216

    public init(colorCount: Int) {
        switch colorCount {
        case ..<8: self = .monochrome
        case ..<16: self = .ansi8
        case ..<256: self = .ansi16
        case ..<16_777_216: self = .indexed256
        default: self = .trueColor
        }
    }

    public static func < (a: ColorDepth, b: ColorDepth) -> Bool { a.rawValue < b.rawValue }
}
