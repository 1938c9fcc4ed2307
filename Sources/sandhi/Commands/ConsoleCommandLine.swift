import ArgumentParser
import Foundation
import Logging
import SandhiConsole
import SandhiCursesBackend
import SandhiEngine
import SandhiRuntime
import SandhiTerminalUI

/// `sandhi console`: the operator console over the embedded engine, with a live workload.
struct OperatorConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "The operator console: transactions, votes, locks, waits, participants and reconciliation, live (the main job).")

    @OptionGroup var common: CommonOptions

    @Flag(help: "Start with every mutating key disabled (faults, aborts, reconciliation, workload changes).")
    var readOnly = false

    @Option(help: "A theme name from themes/ (default, light, high-contrast, mono) or a path to a .toml file.")
    var theme: String?

    @Option(help: "The workload: mumbai, random or contention.")
    var workload: String = "mumbai"

    @Option(help: "Transfers per second to start with (0: paused).")
    var rate: Int = 20

    @Option(name: .customLong("operator"), help: "Who the audit record names for reconciliation actions (default: $USER).")
    var operatorName: String?

    func run() async throws {
        try await reportingErrors {
            guard let kind = LiveWorkload.Kind(rawValue: workload) else {
                throw UsageFailure("--workload must be one of " + LiveWorkload.Kind.allCases.map(\.rawValue).joined(separator: ", "))
            }
            guard rate >= 0 else { throw UsageFailure("--rate must be 0 or more") }
            // Before anything starts: without a terminal this fails here, with one line, having
            // changed nothing.
            guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else {
                throw UsageFailure("the console needs a terminal on standard input and output (try `sandhi demo run mumbai --headless`)")
            }
            let directory = common.directory
            // The embedded default: the Mumbai demo's six participants, created on first use.
            _ = try MumbaiDemo.prepareDirectory(directory, logger: Logger(label: "sandhi") { _ in SwiftLogNoOpLogHandler() })
            // The log goes to a file: the screen is the console's.
            let sink = FileLogHandler.Sink(path: directory.path + "/console.log")
            var logger = Logger(label: "sandhi") { label in FileLogHandler(label: label, sink: sink) }
            logger.logLevel = common.verbose ? .info : .notice
            let environment = ProcessInfo.processInfo.environment
            let themeDirectories = Self.themeDirectories(environment: environment)
            let (chosenTheme, themeError) = ThemeLoader.choose(theme, directories: themeDirectories, environment: environment)
            let inbox = EventInbox()
            let node: SandhiNode
            let live: LiveWorkload
            do {
                // The workload's accounts are read before the node opens the banks for itself.
                let lock = try directory.lock()
                let accounts = try LiveWorkload.readAccounts(directory: directory, configuration: directory.loadConfiguration(), logger: logger)
                node = try await SandhiNode.start(directory: directory, lock: lock, logger: logger) { event in inbox.push(event) }
                var options = LiveWorkload.Options()
                options.kind = kind
                options.ratePerSecond = rate
                do {
                    live = try LiveWorkload.start(node: node, accounts: accounts, options: options)
                } catch {
                    node.stop()
                    throw error
                }
            }
            var model = ConsoleModel(readOnly: readOnly)
            if let themeError { _ = model.update(.commandFinished("theme: \(themeError); using the default", ok: false)) }
            for item in node.recovery.resolved {
                _ = model.update(.commandFinished("recovered \(item.transaction): \(item.outcome.label)", ok: true))
            }
            let themeName = theme ?? "default", who = operatorName ?? environment["USER"] ?? "operator"
            let startModel = model, sessionLogger = logger
            // Every curses call happens on this one thread, which owns the terminal from
            // taking it over to giving it back.
            let failure: String? = await withCheckedContinuation { (done: CheckedContinuation<String?, Never>) in
                startThread(name: "sandhi-console") {
                    let terminal: CursesTerminal
                    do {
                        terminal = try CursesTerminal()
                    } catch {
                        done.resume(returning: "\(error)")
                        return
                    }
                    let session = ConsoleSession(
                        node: node, workload: live, inbox: inbox, model: startModel,
                        context: RenderContext(theme: chosenTheme.adapted(to: terminal.colorDepth), glyphs: terminal.glyphs),
                        themeDirectories: themeDirectories, themeName: themeName, operatorName: who, logger: sessionLogger)
                    session.run(terminal: terminal)
                    terminal.restore()
                    done.resume(returning: nil)
                }
            }
            await live.stop()
            node.stop()
            if let failure { throw UsageFailure(failure) }
            return 0
        }
    }

    /// Where themes are looked for: $SANDHI_THEMES, ./themes, and the package's themes/ beside
    /// the built executable (`swift run` from anywhere in the checkout).
    static func themeDirectories(environment: [String: String]) -> [String] {
        var directories: [String] = []
        if let custom = environment["SANDHI_THEMES"] { directories.append(custom) }
        directories.append(FileManager.default.currentDirectoryPath + "/themes")
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        // .build/<triple>/<configuration>/sandhi -> the package root.
        let root = executable.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        directories.append(root.appendingPathComponent("themes").path)
        return directories
    }
}
