import TOMLKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads theme files: TOML with a style per role, in a `[roles]` table and (optionally) a
/// `[fallback16]` table for terminals with 16 colours or fewer:
///
///     name = "default"
///     [roles]
///     header = { fg = "#ffffff", bg = 24, bold = true }
///     committed = { fg = "bright_green" }
///     [fallback16]
///     header = { fg = "black", bg = "cyan", bold = true }
///
/// A colour is a palette name (`red`, `bright_blue`...), `#rrggbb`, 0–255, or `default`; the
/// attributes are `bold`, `dim`, `italic`, `underline`, `reverse` (true/false). Anything else
/// is an error that names the file, the line and the key, e.g.
/// `themes/x.toml:7: key 'committed': unknown colour 'grean'`: a typo in a theme should be
/// found at once, not show up as a dull screen. The console then starts with the built-in
/// theme and shows the error.
public enum ThemeLoader {
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public var file: String
        public var line: Int?
        public var key: String?
        public var message: String

        public var description: String {
            var text = file
            if let line { text += ":\(line)" }
            text += ":"
            if let key { text += " key '\(key)':" }
            return text + " " + message
        }
    }

    /// A bound on a theme file: a theme is a page of text, and reading is all at once.
    public static let maxFileBytes = 64 * 1024
    static let tables = ["roles", "fallback16"]
    static let styleFields = ["fg", "bg"] + Style.Attributes.named.map(\.0)

    /// Reads the theme in `path`.
    public static func load(path: String) throws(Error) -> Theme {
        let text = try readFile(path)
        return try parse(text, file: path)
    }

    /// Parses theme text; `file` names it in errors. The theme's name is its `name` key or
    /// else the file's base name.
    public static func parse(_ text: String, file: String) throws(Error) -> Theme {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw Error(file: file, line: error.source.begin.line, key: nil, message: error.description)
        } catch {
            throw Error(file: file, line: nil, key: nil, message: "\(error)")
        }
        let lines = KeyLines(text)
        func fail(_ section: String?, _ key: String, _ message: String) -> Error {
            let dotted = section.map { "\($0).\(key)" } ?? key
            return Error(file: file, line: lines.line(of: key, in: section), key: dotted, message: message)
        }
        for key in table.keys where key != "name" && !tables.contains(key) {
            throw fail(nil, key, "unknown key (a theme has name, [roles] and [fallback16])")
        }
        var name = baseName(file)
        if let value = table["name"] {
            guard let text = value.string else { throw fail(nil, "name", "must be a string") }
            name = text
        }
        guard let roles = table["roles"]?.table else {
            throw Error(file: file, line: nil, key: "roles", message: "missing [roles] table")
        }
        let styles = try parseStyles(roles, section: "roles", fail: fail)
        var fallback: [ThemeRole: Style] = [:]
        if let value = table["fallback16"] {
            guard let section = value.table else { throw fail(nil, "fallback16", "must be a table") }
            fallback = try parseStyles(section, section: "fallback16", fail: fail)
            for (role, style) in fallback {
                for color in [style.foreground, style.background] where color.downgraded(to: .ansi16) != color {
                    throw fail("fallback16", role.rawValue, "colour '\(color)' is not one of the 16 ANSI colours (black..bright_white, 0-15, default)")
                }
            }
        }
        return Theme(name: name, styles: styles, fallback16: fallback)
    }

    private static func parseStyles(_ table: TOMLTable, section: String,
                                    fail: (String?, String, String) -> Error) throws(Error) -> [ThemeRole: Style] {
        var styles: [ThemeRole: Style] = [:]
        for key in table.keys {
            guard let role = ThemeRole(rawValue: key) else {
                throw fail(section, key, "unknown role (roles: \(ThemeRole.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard let fields = table[key]?.table else {
                throw fail(section, key, "must be a table such as { fg = \"red\", bold = true }")
            }
            var style = Style()
            for field in fields.keys {
                let value = fields[field]!
                switch field {
                case "fg", "bg":
                    let color: Color?
                    if let number = value.int {
                        guard (0...255).contains(number) else { throw fail(section, key, "colour \(number) is not 0-255") }
                        color = number < 16 ? .ansi(UInt8(number)) : .indexed(UInt8(number))
                    } else if let text = value.string {
                        if text.hasPrefix("#"), Color(name: text) == nil {
                            throw fail(section, key, "bad hex colour '\(text)' (expected #rrggbb)")
                        }
                        guard let parsed = Color(name: text) else {
                            throw fail(section, key, "unknown colour '\(text)' (a palette name such as red or bright_blue, #rrggbb, 0-255 or default)")
                        }
                        color = parsed.normalized
                    } else {
                        throw fail(section, key, "\(field) must be a colour name, #rrggbb or 0-255")
                    }
                    if field == "fg" { style.foreground = color! } else { style.background = color! }
                default:
                    guard let attribute = Style.Attributes.named.first(where: { $0.0 == field })?.1 else {
                        throw fail(section, key, "unknown field '\(field)' (fields: \(styleFields.joined(separator: ", ")))")
                    }
                    guard let on = value.bool else { throw fail(section, key, "\(field) must be true or false") }
                    if on { style.attributes.insert(attribute) }
                }
            }
            styles[role] = style
        }
        return styles
    }

    private static func baseName(_ path: String) -> String {
        let file = path.split(separator: "/").last.map(String.init) ?? path
        return file.hasSuffix(".toml") ? String(file.dropLast(5)) : file
    }

    static func readFile(_ path: String) throws(Error) -> String {
        guard let handle = fopen(path, "rb") else {
            throw Error(file: path, line: nil, key: nil, message: "cannot read: \(String(cString: strerror(errno)))")
        }
        defer { fclose(handle) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, handle)
            if count == 0 { break }
            bytes += chunk[0..<count]
            if bytes.count > maxFileBytes {
                throw Error(file: path, line: nil, key: nil, message: "larger than \(maxFileBytes / 1024) KiB; not a theme")
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: - Choosing a theme

    /// The theme the console starts with. `requested` is a name (looked for as NAME.toml in
    /// each directory, in order) or a path (it contains a "/" or ends in .toml); nil means
    /// "default". NO_COLOR in the environment wins over everything (no colour, whatever the
    /// theme). A theme that cannot be loaded gives the built-in theme and the error, for the
    /// console to show.
    public static func choose(_ requested: String?, directories: [String],
                              environment: [String: String]) -> (theme: Theme, error: Error?) {
        var theme = Theme.builtIn
        var failure: Error?
        do {
            theme = try find(requested ?? "default", directories: directories)
        } catch {
            failure = error
        }
        if Theme.noColorRequested(environment: environment) {
            let mono = (try? find("mono", directories: directories)) ?? theme
            theme = mono.adapted(to: .monochrome)
        }
        return (theme, failure)
    }

    /// A theme by name or path.
    public static func find(_ nameOrPath: String, directories: [String]) throws(Error) -> Theme {
        if nameOrPath.contains("/") || nameOrPath.hasSuffix(".toml") { return try load(path: nameOrPath) }
        for directory in directories {
            let path = directory + "/" + nameOrPath + ".toml"
            if access(path, R_OK) == 0 { return try load(path: path) }
        }
        if nameOrPath == "default" { return Theme.builtIn }
        throw Error(file: nameOrPath + ".toml", line: nil, key: nil,
                    message: "no such theme in \(directories.isEmpty ? "(no theme directories)" : directories.joined(separator: ", "))")
    }

    /// The theme names in `directories` (files NAME.toml), sorted, without repeats: what `t`
    /// cycles through.
    public static func available(in directories: [String]) -> [String] {
        var names: Set<String> = []
        for directory in directories {
            guard let dir = opendir(directory) else { continue }
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name.hasSuffix(".toml"), !name.hasPrefix(".") { names.insert(String(name.dropLast(5))) }
            }
        }
        return names.sorted()
    }
}

extension Color {
    /// Palette numbers 0–15 written as numbers are the ANSI colours, so `8` and
    /// `"bright_black"` are the same colour.
    var normalized: Color {
        if case .indexed(let i) = self, i < 16 { return .ansi(i) }
        return self
    }
}

/// Finds the line of a key in a theme's text, for error messages (TOMLKit gives positions for
/// syntax errors only). Tracks `[section]` headers and looks for `key =` (bare or quoted).
struct KeyLines {
    private var entries: [(section: String?, key: String, line: Int)] = []

    init(_ text: String) {
        var section: String?
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.drop { $0 == " " || $0 == "\t" }
            if line.hasPrefix("[") {
                section = String(line.dropFirst().prefix { $0 != "]" }).trimmingSpaces
                continue
            }
            guard let equals = line.firstIndex(of: "=") else { continue }
            var key = String(line[..<equals]).trimmingSpaces
            if key.count >= 2, key.first == "\"", key.last == "\"" { key = String(key.dropFirst().dropLast()) }
            entries.append((section, key, index + 1))
        }
    }

    func line(of key: String, in section: String?) -> Int? {
        entries.first { $0.section == section && $0.key == key }?.line
    }
}

extension String {
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
