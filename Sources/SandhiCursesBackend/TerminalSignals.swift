import CNcursesw

#if canImport(Glibc)
import Glibc
#endif

/// Gives the terminal back when a signal ends the process: SIGINT, SIGTERM and SIGHUP (an
/// operator's `kill`, a closed SSH session) and the crash signals SIGSEGV, SIGBUS, SIGABRT,
/// SIGFPE, and SIGILL and SIGTRAP (what a Swift runtime trap raises: a failed precondition, a
/// force-unwrapped nil, on x86-64 and arm64).
///
/// The handler does only what is safe in a signal handler: it writes the terminal's own
/// "leave full-screen mode" strings, read from terminfo when curses started (rmcup, cnorm,
/// sgr0, rmkx), and puts back the terminal modes saved before curses changed them
/// (tcsetattr). It does not call endwin(), which takes no such care. Then it raises the signal
/// again: a termination signal with its default action (the process ends with the signal's
/// status, 128+N in a shell; no atexit handlers run, so a log writer should not hold much
/// unflushed), a crash signal with the handler that was there before (Swift's backtracer, or
/// the default core dump), so the process ends the way it would have, on a usable terminal.
enum TerminalSignals {
    static let handled: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGTRAP]

    // Set up before the handlers are installed and only read by them. Fixed-size storage: a
    // handler must not allocate.
    nonisolated(unsafe) private static var savedModes = termios()
    nonisolated(unsafe) private static var hasSavedModes = false
    nonisolated(unsafe) private static var resetBytes = UnsafeMutablePointer<UInt8>.allocate(capacity: resetCapacity)
    nonisolated(unsafe) private static var resetCount = 0
    nonisolated(unsafe) private static var previous = UnsafeMutablePointer<sigaction>.allocate(capacity: 65)
    nonisolated(unsafe) private static var installed = false
    private static let resetCapacity = 256

    /// Records the terminal modes before curses changes them.
    static func saveTerminalModes() {
        hasSavedModes = tcgetattr(STDIN_FILENO, &savedModes) == 0
    }

    /// Installs the handlers (after curses started, so terminfo is loaded).
    static func install() {
        guard !installed else { return }
        resetCount = 0
        for capability in ["rmcup", "cnorm", "sgr0", "rmkx"] {
            guard let value = tigetstr(capability), Int(bitPattern: value) != -1 else { continue }
            let bytes = Array(String(cString: value).utf8)
            guard resetCount + bytes.count <= resetCapacity else { continue }
            for byte in bytes {
                resetBytes[resetCount] = byte
                resetCount += 1
            }
        }
        for signal in handled {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = handler
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(signal, &action, previous + Int(signal))
        }
        installed = true
    }

    /// Puts back the handlers that were there before (after a normal restore).
    static func uninstall() {
        guard installed else { return }
        installed = false
        for signal in handled { sigaction(signal, previous + Int(signal), nil) }
    }

    private static let handler: @convention(c) (Int32) -> Void = { signal in
        if TerminalSignals.resetCount > 0 {
            _ = write(STDOUT_FILENO, TerminalSignals.resetBytes, TerminalSignals.resetCount)
            _ = write(STDOUT_FILENO, "\r\n", 2)
        }
        if TerminalSignals.hasSavedModes { tcsetattr(STDIN_FILENO, TCSANOW, &TerminalSignals.savedModes) }
        if signal == SIGINT || signal == SIGTERM || signal == SIGHUP {
            // Not the handler before ours: that is ncurses' own, which exits with status 1
            // after unsafe cleanup. The default action ends the process with the signal's status.
            Glibc.signal(signal, SIG_DFL)
        } else {
            sigaction(signal, TerminalSignals.previous + Int(signal), nil)
        }
        raise(signal)
    }
}
