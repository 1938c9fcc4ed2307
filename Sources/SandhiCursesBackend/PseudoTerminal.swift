import CNcursesw

#if canImport(Glibc)
import Glibc
#endif

/// A pseudo-terminal pair this process owns: curses draws on the terminal side, as on any
/// terminal, and the program on the controller side reads what was drawn and types keys.
/// `sandhi bench --console` puts the real console on one to measure what it costs the engine,
/// with nobody's screen involved.
public final class PseudoTerminal: Sendable {
    /// The controlling side: read what the terminal shows, write what is typed.
    public let controllerFD: Int32
    /// The terminal side, which curses opens.
    public let terminalFD: Int32

    public struct Error: Swift.Error, CustomStringConvertible {
        public var description: String
    }

    public init(size: (columns: UInt16, rows: UInt16)) throws(Error) {
        var controller: Int32 = -1, terminal: Int32 = -1
        guard sandhi_openpty(&controller, &terminal, size.rows, size.columns) == 0 else {
            throw Error(description: "cannot open a pseudo-terminal: \(String(cString: strerror(errno)))")
        }
        // Not inherited by child processes.
        _ = fcntl(controller, F_SETFD, FD_CLOEXEC)
        _ = fcntl(terminal, F_SETFD, FD_CLOEXEC)
        controllerFD = controller
        terminalFD = terminal
    }

    /// Reads what the terminal shows, waiting at most `timeoutMs`; the byte count read, 0 when
    /// nothing came, nil once the terminal side is closed.
    public func drain(into buffer: inout [UInt8], timeoutMs: Int32) -> Int? {
        var poll = pollfd(fd: controllerFD, events: Int16(POLLIN), revents: 0)
        let ready = Glibc.poll(&poll, 1, timeoutMs)
        if ready == 0 || (ready < 0 && errno == EINTR) { return 0 }
        guard ready > 0 else { return nil }
        let count = buffer.withUnsafeMutableBytes { read(controllerFD, $0.baseAddress, $0.count) }
        // EIO: the terminal side is closed.
        return count > 0 ? count : (count < 0 && errno == EINTR ? 0 : nil)
    }

    /// Types `text` on the terminal, as a person at a keyboard would.
    public func type(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { write(controllerFD, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            offset += written
        }
    }

    deinit {
        close(controllerFD)
        close(terminalFD)
    }
}
