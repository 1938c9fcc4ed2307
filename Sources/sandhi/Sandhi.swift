import ArgumentParser

@main
struct Sandhi: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandhi",
        abstract: "An embedded distributed-transaction coordinator: one transfer across many databases, all or nothing.",
        subcommands: [
            InitCommand.self, TransferCommand.self, CheckCommand.self, RecoverCommand.self,
            LogCommand.self, BenchCommand.self, DemoCommand.self,
        ]
    )
}
