/// How many terminal columns text covers, by the same rules as the C library's wcwidth() that
/// ncurses and xterm-like terminals use (see scripts/generate-width-table.py for why those
/// and not the Unicode files alone):
///
/// - East-Asian wide and fullwidth (CJK, Hangul, fullwidth forms) and emoji presentation: 2.
/// - Combining marks (Mn, Me), ZWJ, variation selectors, Hangul medial vowels: 0.
/// - Devanagari: consonants 1, ₹ 1; the non-spacing vowel signs (ु ू े ै), anusvara and virama 0;
///   the spacing vowel signs (ा ि ी ो ौ, category Mc) 1, as every wcwidth() and terminal has it.
///   A conjunct like क्षि is three columns on the terminal, so it is three here.
/// - Controls and unassigned scalars: -1 (the grid draws them as U+FFFD, a tab as a space).
/// - Regional indicators: 1 each (a flag is 2), as glibc has them.
public enum DisplayWidth {
    /// The width of one scalar: 0, 1, 2, or -1 for controls and unprintable scalars.
    @inlinable public static func of(_ scalar: Unicode.Scalar) -> Int {
        let value = scalar.value
        if value < 0x7F { return value >= 0x20 ? 1 : -1 }
        if value < 0xA0 { return -1 }
        if value < 0x300 { return 1 }
        return lookUp(value)
    }

    @usableFromInline static func lookUp(_ value: UInt32) -> Int {
        // Binary search of the generated ranges: three numbers each (first, last, kind).
        let table = DisplayWidth.table
        var lower = 0, upper = table.count / 3
        while lower < upper {
            let middle = (lower + upper) / 2
            if value < table[3 * middle] {
                upper = middle
            } else if value > table[3 * middle + 1] {
                lower = middle + 1
            } else {
                let kind = table[3 * middle + 2]
                return kind == 3 ? -1 : Int(kind)
            }
        }
        return 1
    }

    /// Columns the text covers when written into a grid: every control as one column, as the
    /// grid draws it.
    public static func of(_ text: some StringProtocol) -> Int {
        let utf8 = text.utf8
        if utf8.allSatisfy({ $0 < 0x80 }) { return utf8.count }
        var columns = 0
        var sawBase = false
        for scalar in text.unicodeScalars {
            let w = of(scalar)
            if w == 0 {
                if !sawBase { columns += 1; sawBase = true }  // a leading mark rides on a space
            } else {
                columns += max(w, 1)
                sawBase = true
            }
        }
        return columns
    }

    /// The text cut to at most `maxColumns`, ending in `ellipsis` when anything was cut. A wide
    /// character that does not fit is left out whole.
    public static func truncate(_ text: String, to maxColumns: Int, ellipsis: String = "…") -> String {
        guard maxColumns > 0 else { return "" }
        let total = of(text)
        if total <= maxColumns { return text }
        let ellipsisWidth = of(ellipsis)
        guard ellipsisWidth <= maxColumns else { return String(repeating: ".", count: maxColumns) }
        let budget = maxColumns - ellipsisWidth
        var result = String.UnicodeScalarView()
        var used = 0
        var sawBase = false
        for scalar in text.unicodeScalars {
            var w = of(scalar)
            if w == 0 && !sawBase { w = 1 }
            if w < 0 { w = 1 }
            if used + w > budget { break }
            used += w
            if w > 0 { sawBase = true }
            result.append(scalar)
        }
        // Zero-width scalars after the cut belong to the last kept character only if no
        // spacing scalar was dropped before them; keeping none is the simple, safe choice.
        return String(result) + ellipsis
    }
}
