import Foundation
import Glibc

/// One HTTP/1.1 request over a unix socket or to a loopback TCP port, read to the end
/// (`Connection: close`): what a test needs to talk to `sandhi serve` without a client library.
public enum RawHTTP {
    public struct Reply: Sendable, CustomStringConvertible {
        public var status: Int
        /// Lower-cased names.
        public var headers: [String: String]
        public var body: String

        public var description: String { "\(status) \(body)" }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    public static func request(_ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:],
                               socket socketPath: String) throws -> Reply {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8CString)
        guard pathBytes.count <= MemoryLayout.size(ofValue: address.sun_path) else { throw Failure(description: "socket path too long") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            pathBytes.withUnsafeBytes { raw.copyMemory(from: $0) }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { throw Failure(description: "connect \(socketPath): \(String(cString: strerror(errno)))") }
        return try exchange(fd, method, path, body: body, headers: headers)
    }

    public static func request(_ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:],
                               port: Int) throws -> Reply {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(description: "connect 127.0.0.1:\(port): \(String(cString: strerror(errno)))") }
        return try exchange(fd, method, path, body: body, headers: headers)
    }

    private static func exchange(_ fd: Int32, _ method: String, _ path: String, body: String?, headers: [String: String]) throws -> Reply {
        let payload = Array((body ?? "").utf8)
        var head = "\(method) \(path) HTTP/1.1\r\nHost: sandhi\r\nConnection: close\r\n"
        if body != nil { head += "Content-Type: application/json\r\nContent-Length: \(payload.count)\r\n" }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        let bytes = Array((head + "\r\n").utf8) + payload
        var written = 0
        while written < bytes.count {
            let result = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard result > 0 else { throw Failure(description: "write: \(String(cString: strerror(errno)))") }
            written += result
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while true {
            let count = Glibc.read(fd, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw Failure(description: "read: \(String(cString: strerror(errno)))") }
            if count == 0 { break }
            received += buffer[0..<count]
        }
        let text = String(decoding: received, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw Failure(description: "not an HTTP reply: \(text.prefix(80))") }
        let lines = text[..<split.lowerBound].split(separator: "\r\n")
        guard let statusLine = lines.first, statusLine.hasPrefix("HTTP/1.1 "), let status = Int(statusLine.dropFirst(9).prefix(3)) else {
            throw Failure(description: "not an HTTP reply: \(text.prefix(80))")
        }
        var replyHeaders: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            replyHeaders[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Reply(status: status, headers: replyHeaders, body: String(text[split.upperBound...]))
    }

    /// A response read as it arrives (a server-sent event stream): the request is sent at
    /// once, and `read(until:)` takes what has come so far.
    public final class Stream: @unchecked Sendable {
        private let fd: Int32
        private var bytes: [UInt8] = []
        /// Everything received so far (decoded whole: a read may end inside a character).
        public private(set) var text = ""

        public init(_ path: String, headers: [String: String] = [:], socket socketPath: String) throws {
            fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let pathBytes = Array(socketPath.utf8CString)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in pathBytes.withUnsafeBytes { raw.copyMemory(from: $0) } }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard connected == 0 else {
                Glibc.close(fd)
                throw Failure(description: "connect \(socketPath): \(String(cString: strerror(errno)))")
            }
            var head = "GET \(path) HTTP/1.1\r\nHost: sandhi\r\nAccept: text/event-stream\r\n"
            for (name, value) in headers { head += "\(name): \(value)\r\n" }
            let bytes = Array((head + "\r\n").utf8)
            guard bytes.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
                Glibc.close(fd)
                throw Failure(description: "write: \(String(cString: strerror(errno)))")
            }
        }

        /// Reads until `done(text so far)` holds, the server closes, or `timeoutMs` passes;
        /// returns whether `done` held.
        @discardableResult
        public func read(timeoutMs: Int = 30_000, until done: (String) -> Bool) -> Bool {
            let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1_000)
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while !done(text) {
                let left = Int32(max(0, deadline.timeIntervalSinceNow * 1_000))
                guard left > 0 else { return false }
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, left) > 0 else { continue }
                let count = Glibc.read(fd, &buffer, buffer.count)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { return done(text) }
                bytes += buffer[0..<count]
                text = String(decoding: bytes, as: UTF8.self)
            }
            return true
        }

        public func close() { Glibc.close(fd) }
    }
}
