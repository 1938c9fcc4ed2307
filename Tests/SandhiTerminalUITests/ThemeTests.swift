import Foundation
import SandhiTerminalUI
import Testing

/// The shipped themes, the built-in one, bad theme files (each error names file, line, key),
/// colour-depth fallbacks and NO_COLOR.
@Suite struct ThemeTests {
    static let themesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("themes").path
    static let shipped = ["default", "light", "high-contrast", "mono"]

    @Test(arguments: shipped)
    func everyShippedThemeParsesAndDefinesEveryRole(_ name: String) throws {
        let theme = try ThemeLoader.load(path: "\(Self.themesDirectory)/\(name).toml")
        #expect(theme.name == name)
        let missing = ThemeRole.allCases.filter { theme.styles[$0] == nil }
        #expect(missing.isEmpty, "\(name) lacks \(missing)")
        // A theme with colours beyond the 16 gives its own 16-colour fallback for every role.
        let usesMoreThan16 = theme.styles.values.contains { $0 != $0.downgraded(to: .ansi16) }
        if usesMoreThan16 {
            let noFallback = ThemeRole.allCases.filter { theme.fallback16[$0] == nil }
            #expect(noFallback.isEmpty, "\(name) has no 16-colour fallback for \(noFallback)")
        }
    }

    @Test func theBuiltInThemeIsDefaultToml() throws {
        let file = try ThemeLoader.load(path: "\(Self.themesDirectory)/default.toml")
        #expect(file == Theme.builtIn)
    }

    @Test func availableThemesAreListed() {
        #expect(ThemeLoader.available(in: [Self.themesDirectory]) == Self.shipped.sorted())
    }

    @Test(arguments: [
        ("[roles]\ntext = {}\ncommitted = { fg = \"grean\" }\n",
         "themes/x.toml:3: key 'roles.committed': unknown colour 'grean' (a palette name such as red or bright_blue, #rrggbb, 0-255 or default)"),
        ("[roles]\ncomitted = { fg = \"green\" }\n", "themes/x.toml:2: key 'roles.comitted': unknown role"),
        ("[roles]\nheader = { fg = \"#12345g\" }\n", "themes/x.toml:2: key 'roles.header': bad hex colour '#12345g' (expected #rrggbb)"),
        ("[roles]\nheader = { fg = \"#1234\" }\n", "themes/x.toml:2: key 'roles.header': bad hex colour '#1234'"),
        ("[roles]\nheader = { fg = 256 }\n", "themes/x.toml:2: key 'roles.header': colour 256 is not 0-255"),
        ("[roles]\nheader = { blod = true }\n", "themes/x.toml:2: key 'roles.header': unknown field 'blod'"),
        ("[roles]\nheader = { bold = \"yes\" }\n", "themes/x.toml:2: key 'roles.header': bold must be true or false"),
        ("[roles]\nheader = \"red\"\n", "themes/x.toml:2: key 'roles.header': must be a table"),
        ("colour = 1\n[roles]\n", "themes/x.toml:1: key 'colour': unknown key"),
        ("name = \"x\"\n", "themes/x.toml: key 'roles': missing [roles] table"),
        ("[roles]\n[fallback16]\nheader = { fg = 100 }\n", "themes/x.toml:3: key 'fallback16.header': colour '100' is not one of the 16 ANSI colours"),
        ("[roles\nheader = {}\n", "themes/x.toml:1:"),
    ])
    func badThemesNameFileLineAndKey(_ text: String, _ expected: String) {
        do {
            _ = try ThemeLoader.parse(text, file: "themes/x.toml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.description.hasPrefix(expected), "\(error.description)")
        }
    }

    @Test func aMissingFileIsAnErrorAndTheConsoleGetsTheBuiltIn() {
        let (theme, error) = ThemeLoader.choose("nosuch", directories: [Self.themesDirectory], environment: [:])
        #expect(theme == Theme.builtIn)
        #expect(error?.description.hasPrefix("nosuch.toml: no such theme in ") == true)
        let bad = ThemeLoader.choose("/nonexistent/t.toml", directories: [], environment: [:])
        #expect(bad.error?.description.hasPrefix("/nonexistent/t.toml: cannot read") == true)
        #expect(ThemeLoader.choose(nil, directories: [], environment: [:]).theme == Theme.builtIn)
    }

    @Test func noColorForcesMonochrome() {
        #expect(Theme.noColorRequested(environment: ["NO_COLOR": "1"]))
        #expect(!Theme.noColorRequested(environment: ["NO_COLOR": ""]))
        #expect(!Theme.noColorRequested(environment: [:]))
        let (theme, error) = ThemeLoader.choose("light", directories: [Self.themesDirectory], environment: ["NO_COLOR": "1"])
        #expect(error == nil)
        #expect(theme.name == "mono")
        let colours = theme.styles.values.flatMap { [$0.foreground, $0.background] }
        #expect(colours.allSatisfy { $0 == .default })
        #expect(theme[.selection].attributes.contains(.reverse))
        // Without a mono file the requested theme loses its colours, and coloured backgrounds
        // become reverse video so the header and selection still stand out.
        let fallback = ThemeLoader.choose(nil, directories: [], environment: ["NO_COLOR": "yes"]).theme
        #expect(fallback[.header] == Style(.bold).adding(.reverse))
        #expect(fallback[.committed] == Style())
    }

    @Test func fewerColoursUseTheFallbackAndMoreAreBroughtDown() throws {
        let theme = try ThemeLoader.load(path: "\(Self.themesDirectory)/high-contrast.toml")
        #expect(theme[.committed].foreground == .rgb(0, 255, 0))
        #expect(theme.adapted(to: .trueColor)[.committed].foreground == .rgb(0, 255, 0))
        #expect(theme.adapted(to: .indexed256)[.committed].foreground == .indexed(46))
        #expect(theme.adapted(to: .ansi16)[.committed].foreground == .ansi(10))    // bright_green, from [fallback16]
        #expect(theme.adapted(to: .ansi8)[.committed].foreground == .ansi(2))      // green
        #expect(theme.adapted(to: .monochrome)[.committed].foreground == .default)
        #expect(ColorDepth(colorCount: 256) == .indexed256 && ColorDepth(colorCount: 8) == .ansi8 && ColorDepth(colorCount: 0) == .monochrome)
    }

    @Test func colourSpellings() {
        #expect(Color(name: "bright_blue") == .ansi(12))
        #expect(Color(name: "Red") == .ansi(1))
        #expect(Color(name: "#FF8000") == .rgb(255, 128, 0))
        #expect(Color(name: "default") == .default)
        #expect(Color(name: "208") == .indexed(208))
        #expect(Color(name: "grean") == nil && Color(name: "#fff") == nil && Color(name: "300") == nil)
        #expect(Color.rgb(255, 128, 0).downgraded(to: .indexed256) == .indexed(208))
        #expect(Color.indexed(196).downgraded(to: .ansi16) == .ansi(9))
        #expect(Color.rgb(40, 40, 40).downgraded(to: .indexed256) == .indexed(235))   // a grey, not black
        #expect(Color.indexed(117).rgbComponents! == (135, 215, 255) && Color.ansi(9).rgbComponents! == (255, 0, 0))
        #expect(Color.indexed(244).rgbComponents! == (128, 128, 128) && Color.default.rgbComponents == nil)
    }

    @Test func glyphSetFollowsTheLocale() {
        #expect(GlyphSet.forCodeset("UTF-8") == .unicode && GlyphSet.forCodeset("utf8") == .unicode)
        #expect(GlyphSet.forCodeset("ANSI_X3.4-1968") == .ascii)
        #expect(GlyphSet.forEnvironment(["LANG": "en_IN.UTF-8"]) == .unicode)
        #expect(GlyphSet.forEnvironment(["LANG": "en_IN.UTF-8", "LC_ALL": "C"]) == .ascii)
        #expect(GlyphSet.forEnvironment(["LC_CTYPE": "hi_IN.utf8@devanagari"]) == .unicode)
        #expect(GlyphSet.forEnvironment([:]) == .ascii)
        #expect(GlyphSet.ascii.rupee == "Rs")
        // Every ASCII glyph really is ASCII.
        let mirror = Mirror(reflecting: GlyphSet.ascii).children.compactMap { $0.value as? String }
        #expect(mirror.count > 20 && mirror.allSatisfy { $0.utf8.allSatisfy { $0 < 0x80 } })
    }
}
