import ArgumentParser
import Foundation
import SandhiRuntime
import SandhiService

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the coordinator as a service: its API on a unix socket in the data directory.",
        discussion: """
            Listens on DIR/sandhi.sock (mode 0600) until SIGTERM or SIGINT, then stops taking
            requests, lets those in flight finish, drains the coordinator and exits.
              curl --unix-socket sandhi-data/sandhi.sock http://sandhi/v1/health
            """)

    @OptionGroup var common: CommonOptions

    func run() async throws {
        try await reportingErrors {
            let directory = common.directory
            let logger = common.makeLogger()
            // Everything this process creates is its user's alone, the socket first: no instant
            // in which another user could connect before the server narrows its mode.
            umask(0o077)
            let node = try await SandhiNode.start(directory: directory, logger: logger)
            defer { node.stop() }
            try await SandhiServer.run(node: node, socketPath: directory.path + "/sandhi.sock", logger: logger)
            return 0
        }
    }
}
