import Foundation
import Glibc
import SandhiTestSupport
import Testing

/// `sandhi serve`'s event stream as a real process streams it: resumed after the last id a
/// reader saw, and a reader that stops reading told how many events it missed while the
/// transfers go on.
@Suite(.serialized) struct ServeEventStreamTests {
    typealias S = ServeCommandTests

    /// The ids of the `engine` events in a stream's text, in order.
    static func ids(_ text: String) -> [Int] {
        lines(text).compactMap { $0.hasPrefix("id: ") ? Int($0.dropFirst(4)) : nil }
    }

    /// Lines by scalars: the chunked encoding's "\r\n" is one Character to Swift, so splitting
    /// a String on "\n" would glue a chunk's size to the line after it.
    static func lines(_ text: String) -> [String] {
        text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map {
            String(String.UnicodeScalarView($0)).trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
        }
    }

    @Test func aStreamResumesAfterTheLastEventItsReaderSaw() async throws { try await onOwnThread { try Self.resumes() } }

    static func resumes() throws {
        let temporary = TemporaryDirectory(); defer { temporary.remove() }
        let (data, _) = try S.makeData(temporary)
        let socket = data + "/sandhi.sock"
        let server = try S.serve(data)
        defer { server.signal(SIGTERM); _ = server.wait() }

        let first = try RawHTTP.Stream("/v1/events?after=0", socket: socket)
        for n in 1...2 {
            let reply = try RawHTTP.request("POST", "/v1/transfers", body: S.move(100 * n, from: "acct-000001", to: "acct-000002"), socket: socket)
            #expect(reply.status == 200, "\(reply)")
        }
        #expect(first.read { $0.contains("T-1.2 committed after") }, "the stream shows both transfers: \(first.text.suffix(500))")
        first.close()
        let seen = try #require(Self.ids(first.text).last)
        #expect(Self.ids(first.text) == Array(1...seen), "numbered from 1, none skipped")
        #expect(first.text.contains(#""kind":{"began":{"_0":"T-1.1""#), "each event carries the engine's own form")

        // Missed while away: the third transfer. The reader comes back with the last id it saw.
        #expect(try RawHTTP.request("POST", "/v1/transfers", body: S.move(300, from: "acct-000001", to: "acct-000002"), socket: socket).status == 200)
        let resumed = try RawHTTP.Stream("/v1/events", headers: ["Last-Event-ID": "\(seen)"], socket: socket)
        defer { resumed.close() }
        #expect(resumed.read { $0.contains("T-1.3 committed after") }, "\(resumed.text.suffix(500))")
        #expect(Self.ids(resumed.text).first == seen + 1, "resumed at the next event: \(Self.ids(resumed.text).prefix(3))")
        #expect(!resumed.text.contains("event: missed"))
        let bad = try RawHTTP.request("GET", "/v1/events", headers: ["Last-Event-ID": "yesterday"], socket: socket)
        #expect(bad.status == 400 && bad.body.contains("\"field\":\"Last-Event-ID\""), "\(bad)")
    }

    @Test func aReaderThatStopsReadingMissesEventsAndHoldsNothingUp() async throws { try await onOwnThread { try Self.slowReader() } }

    static func slowReader() throws {
        let temporary = TemporaryDirectory(); defer { temporary.remove() }
        let (data, _) = try S.makeData(temporary)
        let socket = data + "/sandhi.sock"
        let server = try S.serve(data, ["--event-buffer", "64"])
        defer { server.signal(SIGTERM); _ = server.wait() }

        let stalled = try RawHTTP.Stream("/v1/events", socket: socket)
        defer { stalled.close() }
        #expect(stalled.read { $0.contains("retry: 1000") }, "the stream began")
        // Far more than the socket's buffers and the ring hold, while the reader reads nothing.
        let transfers = 400
        for n in 0..<transfers {
            let account = String(format: "acct-%06d", n % 10 + 1)
            let reply = try RawHTTP.request("POST", "/v1/transfers", body: S.move(1, from: account, to: account), socket: socket)
            guard reply.status == 200 && reply.body.contains("committed") else {
                Issue.record("transfer \(n) behind a stalled reader: \(reply)")
                return
            }
        }
        #expect(stalled.read { $0.contains("event: missed") && $0.contains("T-1.\(transfers) committed after") },
                "told what it missed, then up to date: \(stalled.text.suffix(800))")
        let missed = Self.lines(stalled.text).first { $0.hasPrefix("data: {\"missed\":") } ?? ""
        #expect(missed.contains("\"resumeAt\":"), "\(missed)")
    }
}
