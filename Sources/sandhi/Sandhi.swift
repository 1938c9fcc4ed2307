import ArgumentParser
import Foundation

@main
struct Sandhi: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandhi",
        abstract: "An embedded distributed-transaction coordinator: one transfer across many databases, all or nothing.",
        subcommands: [
            OperatorConsoleCommand.self, InitCommand.self, TransferCommand.self, CheckCommand.self, CheckHistoryCommand.self, SimulateCommand.self, RecoverCommand.self,
            ReconcileCommand.self, LogCommand.self, BenchCommand.self, DemoCommand.self, ServeCommand.self, TokenCommand.self,
        ]
    )

    /// Like ArgumentParser's own entry point, except that a usage error is ONE line on stderr
    /// (the operator's terminal and scripts both get the problem, not a page of usage).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error)) // --help, --version
                Foundation.exit(0)
            }
            let message = message(for: error)
            if !message.isEmpty {
                let first = message.split(separator: "\n").first.map(String.init) ?? message
                printError(first.hasPrefix("sandhi:") ? first : "sandhi: \(first) (see --help)")
            }
            Foundation.exit(code.rawValue)
        }
    }
}
