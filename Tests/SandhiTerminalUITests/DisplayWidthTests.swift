import Glibc
import SandhiTerminalUI
import Testing

/// The width table against cases whose widths are known (and against the C library that
/// ncurses measures with): a wrong width garbles every row it appears in.
@Suite struct DisplayWidthTests {
    @Test(arguments: [
        ("A", 1), ("~", 1), ("₹", 1), ("é", 1), ("e\u{301}", 1),        // ASCII, rupee, precomposed and combining acute
        ("क", 1), ("ि", 1), ("ी", 1), ("ा", 1),                         // consonant; spacing vowel signs (Mc) are 1, as wcwidth has them
        ("ु", 0), ("ू", 0), ("े", 0), ("ै", 0), ("्", 0), ("ं", 0),       // non-spacing vowel signs, virama, anusvara
        ("कि", 2), ("के", 1), ("क्ष", 2), ("हिंदी", 4), ("भारत", 4),      // words: marks take no column of their own
        ("中", 2), ("文字", 4), ("한", 2), ("Ａ", 2), ("ｱ", 1),             // CJK, Hangul, fullwidth A; halfwidth katakana
        ("😀", 2), ("⏳", 2), ("✓", 1), ("✗", 1), ("…", 1), ("·", 1),      // emoji presentation; text symbols
        ("❤", 1), ("❤\u{FE0F}", 1), ("\u{200D}", 0), ("\u{FE0F}", 0),    // VS16 and ZWJ add nothing (as wcwidth)
        ("🇮🇳", 2), ("─", 1), ("┼", 1), ("→", 1),                         // a flag: two regional indicators of 1
    ] as [(String, Int)])
    func width(of text: String, expected: Int) {
        let scalars = text.unicodeScalars
        if scalars.count == 1 {
            #expect(DisplayWidth.of(scalars.first!) == expected, "\(text) U+\(String(scalars.first!.value, radix: 16))")
        } else {
            #expect(DisplayWidth.of(text) == expected, "\(text)")
        }
    }

    @Test func controlsAreNotPrintable() {
        for scalar: Unicode.Scalar in ["\u{0}", "\u{7}", "\n", "\t", "\u{1B}", "\u{7F}", "\u{85}", "\u{9F}", "\u{2028}"] {
            #expect(DisplayWidth.of(scalar) == -1, "U+\(String(scalar.value, radix: 16))")
        }
    }

    @Test func stringsOfAsciiMeasureByBytes() {
        #expect(DisplayWidth.of("T-4711  preparing") == 17)
        #expect(DisplayWidth.of("") == 0)
        // A mark with nothing before it rides on a space: one column, as the grid draws it.
        #expect(DisplayWidth.of("\u{94D}") == 1)
    }

    @Test func truncationEndsInAnEllipsisAndNeverHalvesAWideCharacter() {
        #expect(DisplayWidth.truncate("preparing", to: 9) == "preparing")
        #expect(DisplayWidth.truncate("preparing", to: 6) == "prepa…")
        #expect(DisplayWidth.truncate("中文字符", to: 6) == "中文…")      // 2+2+1: the third would need 2
        #expect(DisplayWidth.truncate("中文字符", to: 5) == "中文…")
        #expect(DisplayWidth.truncate("中文字符", to: 4) == "中…")
        #expect(DisplayWidth.truncate("abc", to: 2, ellipsis: "~") == "a~")
        #expect(DisplayWidth.truncate("abc", to: 0) == "")
    }

    /// The table was generated from glibc's wcwidth(); this checks it still agrees with the C
    /// library on this machine, which is what ncurses will measure with. (Per-thread locale:
    /// other tests in the process are not disturbed.)
    @Test func agreesWithTheCLibrary() throws {
        guard let utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", nil) else {
            Issue.record("no C.UTF-8 locale here")
            return
        }
        let previous = uselocale(utf8)
        defer {
            uselocale(previous)
            freelocale(utf8)
        }
        // wcwidth is not in Swift's Glibc module; the C library has it.
        typealias WidthFunction = @convention(c) (Int32) -> Int32
        let symbol = try #require(dlsym(dlopen(nil, RTLD_NOW), "wcwidth"))
        let wcwidth = unsafeBitCast(symbol, to: WidthFunction.self)
        var disagreements: [String] = []
        for value in UInt32(0x20)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let c = Int(wcwidth(Int32(bitPattern: value)))
            let ours = DisplayWidth.of(scalar)
            if c != ours, c >= 0 || ours != -1 {
                if disagreements.count < 10 { disagreements.append("U+\(String(value, radix: 16)): wcwidth \(c), ours \(ours)") }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements)")
    }
}
