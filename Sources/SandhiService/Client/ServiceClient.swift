import Foundation
import Glibc

/// A client of `sandhi serve` for the command line: one HTTP/1.1 request per connection, over
/// the data directory's unix socket (or a loopback TCP port with a bearer token), blocking,
/// with a deadline. What `sandhi transfer`, `check` and `reconcile resolve` use when a service
/// holds the directory, instead of failing on its lock.
public struct ServiceClient: Sendable {
    public enum Endpoint: Sendable, Equatable {
        case unix(path: String)
        case tcp(port: Int, token: String)
    }

    public struct Reply: Sendable {
        public var status: Int
        /// Lower-cased names.
        public var headers: [String: String]
        public var body: [UInt8]

        public var text: String { String(decoding: body, as: UTF8.self) }

        /// The body as `T`, or the refusal the service sent, as an error.
        public func decode<T: Decodable>(_ type: T.Type) throws -> T {
            guard (200..<300).contains(status) else {
                let refusal = try? JSONDecoder().decode(TransferAPI.Refusal.self, from: Data(body))
                throw ServiceClientError.refused(status: status, field: refusal?.field ?? "", message: refusal?.error ?? text)
            }
            do {
                return try JSONDecoder().decode(type, from: Data(body))
            } catch {
                throw ServiceClientError.protocolError("the service's answer is not what was expected: \(error)")
            }
        }
    }

    public let endpoint: Endpoint

    public init(_ endpoint: Endpoint) { self.endpoint = endpoint }

    /// The service holding `directory`, if one answers on its socket.
    public static func serving(_ directory: String) -> ServiceClient? {
        let client = ServiceClient(.unix(path: directory + "/sandhi.sock"))
        guard FileManager.default.fileExists(atPath: directory + "/sandhi.sock"),
              (try? client.request("GET", "/v1/health", timeoutMs: 5_000)) != nil else { return nil }
        return client
    }

    public var description: String {
        switch endpoint {
        case .unix(let path): return path
        case .tcp(let port, _): return "127.0.0.1:\(port)"
        }
    }

    public func request(_ method: String, _ path: String, json body: some Encodable, timeoutMs: Int = 330_000) throws -> Reply {
        try request(method, path, body: Array(try JSONEncoder().encode(body)), timeoutMs: timeoutMs)
    }

    public func request(_ method: String, _ path: String, body: [UInt8]? = nil, timeoutMs: Int = 330_000) throws -> Reply {
        let fd = try connect()
        defer { Glibc.close(fd) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: sandhi\r\nConnection: close\r\nUser-Agent: sandhi-cli\r\n"
        if case .tcp(_, let token) = endpoint { head += "Authorization: Bearer \(token)\r\n" }
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
        try send(fd, Array((head + "\r\n").utf8) + (body ?? []))
        let received = try receive(fd, timeoutMs: timeoutMs)
        return try Self.parse(received)
    }

    private func connect() throws -> Int32 {
        switch endpoint {
        case .unix(let path):
            return try Self.connectUnix(path)
        case .tcp(let port, _):
            return try Self.connectLoopback(port)
        }
    }

    static func connectUnix(_ path: String) throws -> Int32 {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ServiceClientError.unreachable("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8CString)
        guard bytes.count <= MemoryLayout.size(ofValue: address.sun_path) else {
            Glibc.close(fd)
            throw ServiceClientError.unreachable("\(path): the socket's path is too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in bytes.withUnsafeBytes { raw.copyMemory(from: $0) } }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let why = String(cString: strerror(errno))
            Glibc.close(fd)
            throw ServiceClientError.unreachable("\(path): \(why)")
        }
        return fd
    }

    static func connectLoopback(_ port: Int) throws -> Int32 {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ServiceClientError.unreachable("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let why = String(cString: strerror(errno))
            Glibc.close(fd)
            throw ServiceClientError.unreachable("127.0.0.1:\(port): \(why)")
        }
        return fd
    }

    private func send(_ fd: Int32, _ bytes: [UInt8]) throws {
        var written = 0
        while written < bytes.count {
            let result = bytes[written...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else { throw ServiceClientError.unreachable("sending: \(String(cString: strerror(errno)))") }
            written += result
        }
    }

    private func receive(_ fd: Int32, timeoutMs: Int) throws -> [UInt8] {
        let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1_000)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let leftMs = Int32(clamping: Int(deadline.timeIntervalSinceNow * 1_000))
            guard leftMs > 0 else { throw ServiceClientError.unreachable("no answer within \(timeoutMs / 1_000) s") }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, leftMs)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { continue }
            let count = Glibc.read(fd, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw ServiceClientError.unreachable("reading: \(String(cString: strerror(errno)))") }
            if count == 0 { return received }
            received += buffer[0..<count]
        }
    }

    static func parse(_ bytes: [UInt8]) throws -> Reply {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let split = bytes.indices.first(where: { bytes[$0...].starts(with: separator) }) else {
            throw ServiceClientError.protocolError("the connection closed before a whole answer")
        }
        let head = String(decoding: bytes[..<split], as: UTF8.self).components(separatedBy: "\r\n")
        guard let statusLine = head.first, statusLine.hasPrefix("HTTP/1.1 "), let status = Int(statusLine.dropFirst(9).prefix(3)) else {
            throw ServiceClientError.protocolError("not an HTTP answer")
        }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(bytes[(split + 4)...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { body = try dechunk(body) }
        return Reply(status: status, headers: headers, body: body)
    }

    static func dechunk(_ bytes: [UInt8]) throws -> [UInt8] {
        var body: [UInt8] = []
        var index = 0
        while index < bytes.count {
            guard let lineEnd = bytes[index...].firstIndex(of: 13), lineEnd + 1 < bytes.count,
                  let size = Int(String(decoding: bytes[index..<lineEnd], as: UTF8.self).split(separator: ";").first ?? "", radix: 16) else {
                throw ServiceClientError.protocolError("a chunked answer that does not parse")
            }
            if size == 0 { return body }
            let start = lineEnd + 2
            guard start + size <= bytes.count else { throw ServiceClientError.protocolError("a chunk cut short") }
            body += bytes[start..<(start + size)]
            index = start + size + 2
        }
        return body
    }
}

public enum ServiceClientError: Error, CustomStringConvertible, Equatable {
    case unreachable(String)
    case protocolError(String)
    /// The service answered with a refusal: its status, the field it names, and why.
    case refused(status: Int, field: String, message: String)

    public var description: String {
        switch self {
        case .unreachable(let why): return "the service cannot be reached: \(why)"
        case .protocolError(let why): return why
        case .refused(_, let field, let message): return field.isEmpty ? message : "\(field): \(message)"
        }
    }
}
