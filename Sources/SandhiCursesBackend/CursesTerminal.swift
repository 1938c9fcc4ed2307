import CNcursesw
import SandhiTerminalUI

#if canImport(Glibc)
import Glibc
#endif

/// The terminal, through ncursesw: the only code in Sandhi that touches it. It shows frames
/// composed by the pure terminal layer (drawing only what changed since the last frame),
/// reads keys with a timeout, reports resizes, and gives the terminal back as it found it:
/// on `restore()`, when it is released, and on every signal that ends the process (see
/// `TerminalSignals`), so a crash never leaves an operator's SSH session raw and blank.
///
/// Threading: curses is one global state with no locks. Every call (init, `draw`, `nextKey`,
/// `restore`) must happen on the thread that made the terminal; this class is not Sendable,
/// so the compiler keeps it in one isolation domain, and each call checks the thread as well.
/// The console composes frames wherever it likes (a `Grid` is a Sendable value) and hands them
/// to that thread.
///
/// The terminal runs raw: Ctrl-C arrives as the key `.control("c")`, for the console to quit
/// cleanly; SIGINT from elsewhere still restores and ends the process.
public final class CursesTerminal {
    public struct Error: Swift.Error, CustomStringConvertible {
        public var description: String
    }

    public private(set) var size: Size
    /// Symbols for this locale: Unicode when its codeset is UTF-8, ASCII otherwise.
    public let glyphs: GlyphSet
    public let isUTF8: Bool
    /// What the terminal can show (curses' COLORS; monochrome without colour support).
    public let colorDepth: ColorDepth
    /// Colour pairs asked for after the terminal's limit was reached, drawn in the default
    /// colours instead; for the console's log.
    public private(set) var pairsRefused = 0

    private let screen: OpaquePointer
    private let window: UnsafeMutablePointer<WINDOW>
    private let owner: pthread_t
    private var previous: Grid?
    private var pairs: [PairKey: Int32] = [:]
    private var nextPair: Int32 = 1
    private let pairLimit: Int32
    private let defaultColors: Bool
    private var restored = false
    /// The streams of a pseudo-terminal's screen; nil on the process's own terminal.
    private var files: (output: UnsafeMutablePointer<FILE>, input: UnsafeMutablePointer<FILE>)?

    /// Takes over the terminal on standard input and output. Fails, changing nothing, when
    /// they are not a terminal or the terminal type is unknown.
    public convenience init(escapeDelayMs: Int32 = 25) throws(Error) {
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else {
            throw Error(description: "the console needs a terminal on standard input and output")
        }
        try self.init(escapeDelayMs: escapeDelayMs, pseudoTerminal: nil)
    }

    /// Draws on `pseudoTerminal` instead, as a terminal of type `type`: the process's own
    /// terminal, its modes and its signals are left alone. For measuring the console's whole
    /// cost, curses included, with a program of one's own on the other side.
    public convenience init(pseudoTerminal: PseudoTerminal, type: String = "xterm-256color", escapeDelayMs: Int32 = 25) throws(Error) {
        guard let output = sandhi_fdopen(dup(pseudoTerminal.terminalFD), "w"),
              let input = sandhi_fdopen(dup(pseudoTerminal.terminalFD), "r") else {
            throw Error(description: "cannot open the pseudo-terminal: \(String(cString: strerror(errno)))")
        }
        do {
            try self.init(escapeDelayMs: escapeDelayMs, pseudoTerminal: (type, output, input))
        } catch {
            fclose(output)
            fclose(input)
            throw error
        }
    }

    private init(escapeDelayMs: Int32, pseudoTerminal: (type: String, output: UnsafeMutablePointer<FILE>, input: UnsafeMutablePointer<FILE>)?) throws(Error) {
        // The locale decides how ncurses encodes characters: without this, every non-ASCII
        // character would be drawn as escapes.
        setlocale(LC_ALL, "")
        let codeset = String(cString: sandhi_codeset())
        glyphs = GlyphSet.forCodeset(codeset)
        isUTF8 = glyphs.isUnicode
        let screen: OpaquePointer?
        if let pseudoTerminal {
            screen = sandhi_newterm_on(pseudoTerminal.type, pseudoTerminal.output, pseudoTerminal.input)
            files = (pseudoTerminal.output, pseudoTerminal.input)
        } else {
            TerminalSignals.saveTerminalModes()
            screen = sandhi_newterm()
        }
        guard let screen, let window = sandhi_stdscr() else {
            let type = pseudoTerminal?.type ?? getenv("TERM").map { String(cString: $0) } ?? "(unset)"
            throw Error(description: "cannot start curses for TERM=\(type)")
        }
        self.screen = screen
        self.window = window
        owner = pthread_self()
        raw()
        noecho()
        nonl()
        keypad(window, true)
        // ESC alone is the Esc key after this long without a following byte (the default is
        // a second, which makes Esc feel broken).
        set_escdelay(escapeDelayMs)
        CursesTerminal.defineKeyVariants()
        curs_set(0)
        leaveok(window, true)
        var depth = ColorDepth.monochrome
        var usesDefaults = false
        if has_colors() {
            start_color()
            usesDefaults = use_default_colors() == OK
            depth = ColorDepth(colorCount: Int(sandhi_colors()))
        }
        colorDepth = depth
        defaultColors = usesDefaults
        pairLimit = sandhi_color_pairs()
        size = Size(width: Int(sandhi_cols()), height: Int(sandhi_lines()))
        if pseudoTerminal == nil { TerminalSignals.install() }
    }

    deinit { restore() }

    /// Gives the terminal back: normal screen, cursor, echo, line mode. Safe to call again.
    public func restore() {
        guard !restored else { return }
        checkThread()
        restored = true
        endwin()
        delscreen(screen)
        if let files {
            fclose(files.output)
            fclose(files.input)
        } else {
            TerminalSignals.uninstall()
        }
    }

    // MARK: - Drawing

    /// Shows a frame, sending only the cells that differ from the last frame shown. A frame of
    /// another size than the terminal is clipped to it (the next one will fit after the resize).
    public func draw(_ grid: Grid) {
        checkThread()
        guard !restored else { return }
        let changes: GridChanges
        if let previous, previous.size == grid.size {
            changes = grid.changes(since: previous)
        } else {
            changes = grid.fullRedraw()
            werase(window)
            clearok(window, true)
        }
        let rows = Int(sandhi_lines()), columns = Int(sandhi_cols())
        var cell = cchar_t()
        for run in changes.runs where run.row < rows {
            var x = run.column
            for item in run.cells {
                defer { x += 1 }
                guard x < columns else { break }
                if item.glyph.isContinuation { continue }
                put(item, at: x, run.row, into: &cell, columns: columns)
            }
        }
        wnoutrefresh(window)
        doupdate()
        previous = grid
    }

    private func put(_ item: Cell, at x: Int, _ y: Int, into cell: inout cchar_t, columns: Int) {
        let (attributes, pair) = look(item.style)
        var characters: [wchar_t] = []
        if item.glyph.isWide && x + 1 >= columns {
            characters = [wchar_t(0x20)]  // half a wide character does not fit: a space
        } else if isUTF8 {
            characters = item.glyph.scalars.map { wchar_t(bitPattern: $0.value) }
        } else {
            // Not a UTF-8 locale: the console uses the ASCII glyph set, but text from the
            // model (a name in Devanagari) can still hold other characters.
            characters = [wchar_t(item.glyph.ascii.map { Int32($0) } ?? 0x3F)]
            if item.glyph.isWide {
                var space = cchar_t()
                var blank: [wchar_t] = [0x20, 0]
                sandhi_set_cell(&space, &blank, attributes, pair)
                mvwadd_wch(window, Int32(y), Int32(x + 1), &space)
            }
        }
        characters.append(0)
        sandhi_set_cell(&cell, characters, attributes, pair)
        mvwadd_wch(window, Int32(y), Int32(x), &cell)
    }

    // MARK: - Colours

    private struct PairKey: Hashable {
        var foreground: Int32
        var background: Int32
    }

    private func look(_ style: Style) -> (attr_t, Int32) {
        var attributes = sandhi_a_normal()
        if style.attributes.contains(.bold) { attributes |= sandhi_a_bold() }
        if style.attributes.contains(.dim) { attributes |= sandhi_a_dim() }
        if style.attributes.contains(.italic) { attributes |= sandhi_a_italic() }
        if style.attributes.contains(.underline) { attributes |= sandhi_a_underline() }
        if style.attributes.contains(.reverse) { attributes |= sandhi_a_reverse() }
        guard colorDepth > .monochrome else { return (attributes, 0) }
        let key = PairKey(foreground: number(style.foreground, isForeground: true),
                          background: number(style.background, isForeground: false))
        return (attributes, pair(key))
    }

    /// The curses colour number: -1 for the terminal's default (when it has them), else the
    /// palette index after bringing the colour down to what the terminal shows.
    private func number(_ color: Color, isForeground: Bool) -> Int32 {
        let fallback: Int32 = defaultColors ? -1 : (isForeground ? 7 : 0)
        if colorDepth == .trueColor {
            // A direct-colour terminal (TERM=xterm-direct): colour numbers are 0xRRGGBB, except
            // that 0-7 stay the user's ANSI palette.
            if case .ansi(let i) = color, i < 8 { return Int32(i) }
            guard let (r, g, b) = color.rgbComponents else { return fallback }
            return Int32(r) << 16 | Int32(g) << 8 | Int32(b)
        }
        switch color.downgraded(to: colorDepth) {
        case .default, .rgb: return fallback  // rgb only survives at true colour, handled above
        case .ansi(let i), .indexed(let i): return Int32(i)
        }
    }

    /// The pair for (fg, bg), made on first use. Pairs are never redefined (that would
    /// recolour cells already on screen); when the terminal's pairs run out, pair 0.
    private func pair(_ key: PairKey) -> Int32 {
        if key.foreground == -1 && key.background == -1 { return 0 }
        if let pair = pairs[key] { return pair }
        guard nextPair < pairLimit, sandhi_init_pair(nextPair, key.foreground, key.background) == OK else {
            pairsRefused += 1
            return 0
        }
        pairs[key] = nextPair
        nextPair += 1
        return nextPair - 1
    }

    // MARK: - Input

    /// Sequences that terminals send for these keys but the terminfo entry in use may not list
    /// (a TERM that does not quite match the terminal is common over SSH and inside tmux):
    /// taught to ncurses only where the entry leaves them undefined.
    private static func defineKeyVariants() {
        let escape = "\u{1B}"
        let variants: [(String, Int32)] = [
            ("[A", KEY_UP), ("[B", KEY_DOWN), ("[C", KEY_RIGHT), ("[D", KEY_LEFT),
            ("OA", KEY_UP), ("OB", KEY_DOWN), ("OC", KEY_RIGHT), ("OD", KEY_LEFT),
            ("[H", KEY_HOME), ("[F", KEY_END), ("OH", KEY_HOME), ("OF", KEY_END),
            ("[1~", KEY_HOME), ("[4~", KEY_END), ("[7~", KEY_HOME), ("[8~", KEY_END),
            ("[5~", KEY_PPAGE), ("[6~", KEY_NPAGE), ("[3~", KEY_DC), ("[2~", KEY_IC), ("[Z", KEY_BTAB),
            ("OP", sandhi_key_f(1)), ("OQ", sandhi_key_f(2)), ("OR", sandhi_key_f(3)), ("OS", sandhi_key_f(4)),
            ("[11~", sandhi_key_f(1)), ("[12~", sandhi_key_f(2)), ("[13~", sandhi_key_f(3)), ("[14~", sandhi_key_f(4)),
        ]
        for (tail, code) in variants where key_defined(escape + tail) == 0 {
            define_key(escape + tail, code)
        }
    }

    /// The next key, waiting at most `timeoutMs` (0: only what is already there). Nil when
    /// none came in time, or the input meant nothing (an unknown key code). A resize comes as
    /// `.resize` with the new size, and makes the next `draw` repaint everything.
    public func nextKey(timeoutMs: Int32) -> Key? {
        checkThread()
        guard !restored else { return nil }
        wtimeout(window, max(0, timeoutMs))
        var code: wint_t = 0
        let result = wget_wch(window, &code)
        if result == ERR { return nil }
        if result == sandhi_key_code_yes() { return functionKey(Int32(code)) }
        return character(UInt32(code))
    }

    private func character(_ code: UInt32) -> Key? {
        switch code {
        case 0x0D, 0x0A: return .enter
        case 0x09: return .tab
        case 0x7F, 0x08: return .backspace
        case 0x1B: return .escape
        case 0x01...0x1A: return .control(Character(Unicode.Scalar(code + 0x60)!))
        case 0x00..<0x20, 0x80..<0xA0: return nil
        default: return Unicode.Scalar(code).map { .character(Character($0)) }
        }
    }

    private func functionKey(_ code: Int32) -> Key? {
        switch code {
        case KEY_UP: return .up
        case KEY_DOWN: return .down
        case KEY_LEFT: return .left
        case KEY_RIGHT: return .right
        case KEY_HOME: return .home
        case KEY_END: return .end
        case KEY_PPAGE: return .pageUp
        case KEY_NPAGE: return .pageDown
        case KEY_DC: return .delete
        case KEY_IC: return .insert
        case KEY_BACKSPACE: return .backspace
        case KEY_ENTER: return .enter
        case KEY_BTAB: return .backTab
        case KEY_RESIZE:
            size = Size(width: Int(sandhi_cols()), height: Int(sandhi_lines()))
            previous = nil
            return .resize(size)
        default:
            for n in 1...12 where code == sandhi_key_f(Int32(n)) { return .function(n) }
            return nil
        }
    }

    private func checkThread() {
        precondition(pthread_equal(pthread_self(), owner) != 0, "curses calls must all happen on the thread that made the CursesTerminal")
    }
}
