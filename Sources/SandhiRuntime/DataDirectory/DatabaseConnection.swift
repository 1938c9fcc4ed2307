import Foundation

/// Where a participant's PostgreSQL database lives, as `sandhi.toml` says it: a connection URL
/// (`postgres://user[:password]@host[:port]/database`), or the parts one by one (`host` or
/// `socket`, `port`, `user`, `database`, and `password_file`, so that no password need sit in
/// the configuration). The runtime only carries it; the executable opens the database.
public struct DatabaseConnection: Sendable, Equatable {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        /// The folder holding the server's socket (`unix_socket_directories`).
        case unixSocket(folder: String, port: Int)
    }

    public var endpoint: Endpoint
    public var user: String
    public var database: String
    /// A file whose first line is the password; read when the database is opened.
    public var passwordFile: String?
    /// A password given in the URL (a password file is the better home for one).
    public var password: String?

    public init(endpoint: Endpoint, user: String, database: String, passwordFile: String? = nil, password: String? = nil) {
        self.endpoint = endpoint
        self.user = user
        self.database = database
        self.passwordFile = passwordFile
        self.password = password
    }

    public static let defaultPort = 5432

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// Parses `postgres://user[:password]@host[:port]/database` (also `postgresql://`). A host
    /// that starts with `/` (written `%2F...`) is a socket folder.
    public init(url text: String) throws {
        guard let components = URLComponents(string: text), let scheme = components.scheme,
              scheme == "postgres" || scheme == "postgresql" else {
            throw ParseError(description: "\"\(Self.redacted(text))\" is not a postgres:// URL")
        }
        guard let user = components.user, !user.isEmpty else {
            throw ParseError(description: "\(Self.redacted(text)): the URL names no user")
        }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else {
            throw ParseError(description: "\(Self.redacted(text)): the URL names no database (postgres://user@host/DATABASE)")
        }
        guard let host = components.host, !host.isEmpty else {
            throw ParseError(description: "\(Self.redacted(text)): the URL names no host")
        }
        let port = components.port ?? Self.defaultPort
        guard (1...65_535).contains(port) else { throw ParseError(description: "\(Self.redacted(text)): port \(port) is out of range") }
        let decodedHost = host.removingPercentEncoding ?? host
        self.init(endpoint: decodedHost.hasPrefix("/") ? .unixSocket(folder: decodedHost, port: port) : .tcp(host: decodedHost, port: port),
                  user: user.removingPercentEncoding ?? user, database: database,
                  password: components.password.map { $0.removingPercentEncoding ?? $0 })
    }

    /// The URL without its password, for messages and logs.
    public var description: String {
        switch endpoint {
        case .tcp(let host, let port): return "postgres://\(user)@\(host):\(port)/\(database)"
        case .unixSocket(let folder, let port):
            return "postgres://\(user)@\(folder.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? folder):\(port)/\(database)"
        }
    }

    /// The password: from the password file if there is one, else the URL's.
    public func resolvedPassword() throws -> String? {
        guard let passwordFile else { return password }
        guard let data = FileManager.default.contents(atPath: passwordFile), let text = String(data: data, encoding: .utf8) else {
            throw ParseError(description: "cannot read the password file \(passwordFile)")
        }
        return text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
    }

    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "****"
        return components.string ?? url
    }
}
