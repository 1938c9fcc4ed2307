import Foundation
import SandhiTestSupport
import Testing

/// The real `sandhi console` in a real terminal: tmux at 100x30. It starts on a fresh data
/// directory with the Mumbai workload, switches screens, crashes a participant and restarts it
/// (in-doubt transactions appear, then resolve), survives a resize, and quits with `q`, leaving
/// the terminal in cooked mode.
@Suite(.serialized) struct ConsoleEndToEndTests {
    struct Tmux {
        let session: String

        /// Runs one tmux command. A tmux client returns at once; ten seconds is a hang.
        @discardableResult
        static func run(_ arguments: [String]) throws -> String {
            let result = try ChildProcess.run("tmux", arguments, timeoutSeconds: 10)
            if result.timedOut { throw ChildProcess.SpawnError(description: "tmux \(arguments.first ?? "") hung and was killed") }
            return result.stdout
        }

        func keys(_ keys: String...) throws { try Self.run(["send-keys", "-t", session] + keys) }
        func screen() throws -> String { try Self.run(["capture-pane", "-p", "-t", session]) }

        /// Waits until the screen satisfies `condition`; fails with the last screen.
        /// Polls with an async sleep: a blocked thread of the cooperative pool would stall the
        /// async tests running beside this one. The screen is always looked at once more after
        /// the deadline: a test beside this one may hold every thread of the pool for longer
        /// than the deadline (the simulator's seeds), and this task must not then fail
        /// without having looked at all.
        @discardableResult
        func wait(_ what: String, seconds: Double = 60, _ condition: (String) -> Bool) async throws -> String {
            let deadline = Date().addingTimeInterval(seconds)
            var last = ""
            while true {
                last = (try? screen()) ?? ""
                if condition(last) { return last }
                if Date() >= deadline { break }
                try await Task.sleep(nanoseconds: 100_000_000)
            }
            Issue.record("timed out waiting for \(what); the screen was:\n\(last)")
            throw CancellationError()
        }
    }

    static func header(_ screen: String) -> String { screen.split(separator: "\n").first.map(String.init) ?? "" }

    static func count(_ label: String, in header: String) -> Int? {
        guard let range = header.range(of: label + " ") else { return nil }
        return Int(header[range.upperBound...].prefix { $0.isNumber })
    }

    @Test func theConsoleRunsUnderARealTerminal() async throws {
        let temporary = TemporaryDirectory("sandhi-console"); defer { temporary.remove() }
        let data = temporary.appending("data")
        let tmux = Tmux(session: "sandhi-e2e-\(getpid())")
        let command = "\(SandhiBinary.path) console --data \(data) --rate 40; echo EXITED $?; stty -a | tr ' ' '\\n' | grep -x -- '-\\?icanon'; sleep 60"
        try Tmux.run(["new-session", "-d", "-s", tmux.session, "-x", "100", "-y", "30", "-e", "TERM=xterm-256color", "-e", "LANG=C.UTF-8",
                      "sh", "-c", command])
        defer { _ = try? Tmux.run(["kill-session", "-t", tmux.session]) }

        // The header, then transfers committing.
        try await tmux.wait("the header") { $0.hasPrefix(" Sandhi ") }
        try await tmux.wait("committed transfers") { $0.contains("committed") }
        // Screens.
        try tmux.keys("2")
        try await tmux.wait("the locks screen") { $0.contains("RESOURCE") }
        try tmux.keys("3")
        try await tmux.wait("the waits screen") { $0.contains("wait-for graph") }
        try tmux.keys("5")
        try await tmux.wait("the reconcile screen") { $0.contains("heuristic cases") || $0.contains("DECISION") }
        try tmux.keys("6")
        try await tmux.wait("the log screen") { $0.contains("EVENT") }
        try tmux.keys("?")
        try await tmux.wait("the help") { $0.contains("pause the display") }
        try tmux.keys("Escape")

        // Crash icici (the second participant): its branches are left waiting, in doubt.
        try tmux.keys("4")
        try await tmux.wait("the participants screen") { $0.contains("PARTICIPANT") }
        try tmux.keys("Down", "f")
        try await tmux.wait("the fault menu") { $0.contains("crash icici") }
        try tmux.keys("Enter")
        try await tmux.wait("icici down") { $0.contains("DOWN") && Self.header($0).contains("FAULT") }
        try await tmux.wait("in-doubt transactions") { (Self.count("in-doubt", in: Self.header($0)) ?? 0) > 0 }
        // Restart it: everything in doubt resolves.
        try tmux.keys("f")
        try await tmux.wait("the restart item") { $0.contains("restart icici") }
        try tmux.keys("Enter")
        try await tmux.wait("in-doubt resolved") { screen in
            !screen.contains("DOWN") && Self.count("in-doubt", in: Self.header(screen)) == 0
        }

        // A live resize.
        try Tmux.run(["resize-window", "-t", tmux.session, "-x", "80", "-y", "24"])
        try await tmux.wait("the narrower frame") { screen in
            let lines = screen.split(separator: "\n", omittingEmptySubsequences: false)
            return lines.first?.hasPrefix(" Sandhi ") == true && lines.allSatisfy { $0.count <= 80 }
        }

        // Quit: exit status 0 and the terminal back in canonical (cooked) mode.
        try tmux.keys("q")
        // `stty` prints its line a moment after EXITED: wait for both (either answer).
        let after = try await tmux.wait("the console to exit and stty to answer") { screen in
            screen.contains("EXITED") && screen.split(separator: "\n").contains { $0 == "icanon" || $0 == "-icanon" }
        }
        #expect(after.contains("EXITED 0"), "\(after)")
        #expect(after.split(separator: "\n").contains("icanon"), "the terminal was left raw:\n\(after)")
        // Its log went to a file, not the screen.
        #expect(FileManager.default.fileExists(atPath: data + "/console.log"))
    }

    @Test func withoutATerminalItSaysSoInOneLine() throws {
        let temporary = TemporaryDirectory("sandhi-console"); defer { temporary.remove() }
        let result = try SandhiBinary.run(["console", "--data", temporary.appending("data")])
        #expect(result.status != 0)
        #expect(result.stderr.split(separator: "\n").count == 1 && result.stderr.contains("terminal"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: temporary.appending("data")), "nothing was created")
    }

    @Test func badOptionsAreOneLine() throws {
        let temporary = TemporaryDirectory("sandhi-console"); defer { temporary.remove() }
        for arguments in [["--workload", "lottery"], ["--rate", "-3"]] {
            let result = try SandhiBinary.run(["console", "--data", temporary.appending("data")] + arguments)
            #expect(result.status != 0)
            #expect(result.stderr.split(separator: "\n").count == 1, "\(arguments): \(result.stderr)")
        }
    }
}
