import ArgumentParser
import Foundation
import SandhiService

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Bearer tokens for `sandhi serve --listen`: DIR/tokens, mode 0600.",
        subcommands: [Add.self, List.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a token for NAME with a role, and print it (the only time it is shown).")

        @OptionGroup var common: CommonOptions
        @Argument(help: "Who holds the token: a name for the audit trail (letters, digits, - _ .).")
        var name: String
        @Option(name: .long, help: "viewer, client, operator or chaos.")
        var role: String

        func run() async throws {
            try await reportingErrors {
                guard let role = Role(rawValue: role) else {
                    throw ValidationError("--role: '\(role)' is not viewer, client, operator or chaos")
                }
                guard !name.isEmpty, name.count <= 64,
                      name.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0) }) else {
                    throw ValidationError("NAME: '\(name)' must be 1 to 64 letters, digits, '-', '_' or '.'")
                }
                guard FileManager.default.fileExists(atPath: common.data + "/sandhi.toml") else {
                    throw ValidationError("\(common.data) is not a Sandhi data directory (run `sandhi init` first)")
                }
                let token = TokenFile.newToken()
                try TokenFile.add(.init(role: role, name: name, token: token), to: common.data + "/tokens")
                print(token)
                return 0
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The tokens' names and roles (never the tokens).")

        @OptionGroup var common: CommonOptions

        func run() async throws {
            try await reportingErrors {
                let file = try TokenFile.load(common.data + "/tokens")
                for entry in file.entries { print("\(entry.role.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(entry.name)") }
                return 0
            }
        }
    }
}
