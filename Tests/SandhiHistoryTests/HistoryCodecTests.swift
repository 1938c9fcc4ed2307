import SandhiHistory
import Testing

/// The file format is a contract other programs write: exact lines out, the same model back in,
/// and every malformed line named by number.
@Suite struct HistoryCodecTests {
    static let header = #"{"type":"history","version":1,"total_paise":123456}"#
    static let example = #"{"type":"txn","id":"T-1.42","outcome":"committed","audit":false,"start_us":100,"end_us":250,"ops":["#
        + #"{"f":"read","key":"hdfc/acct-000001","value":1000,"version":3,"writer":"T-1.40"},"#
        + #"{"f":"write","key":"hdfc/acct-000001","value":900,"version":4},"#
        + #"{"f":"read","key":"sbi/acct-000002","value":0,"version":0,"writer":null}]}"#

    static let exampleTransaction = HistoryTransaction(
        id: "T-1.42", outcome: .committed, audit: false, startUs: 100, endUs: 250, ops: [
            .read(key: "hdfc/acct-000001", value: 1000, version: 3, writer: "T-1.40"),
            .write(key: "hdfc/acct-000001", value: 900, version: 4),
            .read(key: "sbi/acct-000002", value: 0, version: 0, writer: nil),
        ])

    @Test func encodesTheDocumentedLines() {
        #expect(HistoryCodec.encode(header: HistoryHeader(totalPaise: 123456)) == Self.header)
        #expect(HistoryCodec.encode(Self.exampleTransaction) == Self.example)
        let bare = HistoryTransaction(id: "T-2", outcome: .unknown, audit: true, ops: [])
        #expect(HistoryCodec.encode(bare) == #"{"type":"txn","id":"T-2","outcome":"unknown","audit":true,"ops":[]}"#)
    }

    @Test func decodesTheDocumentedLines() throws {
        let history = try HistoryCodec.decode(lines: [Self.header, Self.example])
        #expect(history.header.totalPaise == 123456)
        #expect(history.transactions == [Self.exampleTransaction])
    }

    @Test func roundTrips() throws {
        let odd = HistoryTransaction(
            id: "T-\"quoted\"\\back\u{1}\ttab", outcome: .aborted, audit: false, startUs: 0, endUs: UInt64(Int64.max), ops: [
                .read(key: "बैंक/खाता-१ 🏦", value: Int64.min, version: Int64.max, writer: "T-\n"),
                .write(key: "", value: -5, version: 1),
            ])
        let history = History(header: HistoryHeader(totalPaise: -1), transactions: [
            Self.exampleTransaction, odd,
            HistoryTransaction(id: "A-1", outcome: .committed, audit: true, endUs: 9, ops: [.read(key: "k", value: 1, version: 0, writer: nil)]),
        ])
        let lines = [HistoryCodec.encode(header: history.header)] + history.transactions.map(HistoryCodec.encode)
        #expect(lines.allSatisfy { !$0.contains("\n") })
        #expect(try HistoryCodec.decode(lines: lines) == history)

        let generated = SerialBankHistory.make(transactions: 500)
        let text = ([HistoryCodec.encode(header: generated.header)] + generated.transactions.map(HistoryCodec.encode)).joined(separator: "\n")
        #expect(try HistoryCodec.decode(Array(text.utf8)) == generated)
    }

    @Test func acceptsWhatJSONAllows() throws {
        let spaced = #"  { "ops" : [ { "version" : 1 , "value" : -0 , "key" : "k\u00e9\ud83c\udfe6\/" , "f" : "write" , "extra" : [ {"a" : null} ] } ] ,"#
            + #" "outcome" : "committed" , "type" : "txn", "id" : "T-1" , "future_field" : 1.5e3 , "start_us" : null }  "#
        let history = try HistoryCodec.decode(lines: ["", Self.header + "\r", spaced, "   "])
        #expect(history.transactions == [HistoryTransaction(id: "T-1", outcome: .committed, ops: [.write(key: "ké🏦/", value: 0, version: 1)])])
    }

    static let txn = #"{"type":"txn","id":"T-1","outcome":"committed","audit":false,"ops":[]}"#

    /// (file lines, the line the error must name, words the problem must contain)
    static let malformed: [([String], Int, String)] = [
        ([], 1, "no history header"),
        (["", "  "], 2, "no history header"),
        ([txn], 1, "expected the history header"),
        ([header, "not json"], 2, "invalid JSON at column 1"),
        ([header, #"{"type":"txn","id":"T-2","outc"#], 2, "invalid JSON"),
        ([header, txn + " x"], 2, "unexpected characters after the object"),
        ([header, txn, txn], 3, #"duplicate transaction id "T-1" (first on line 2)"#),
        ([header, "", txn, header], 4, "a second history header (the first is on line 1)"),
        ([#"{"type":"history","version":2,"total_paise":1}"#], 1, "unsupported history version 2"),
        ([#"{"type":"history","version":1}"#], 1, #"missing field "total_paise""#),
        ([#"{"type":"history","version":1,"total_paise":99999999999999999999}"#], 1, #""total_paise" is out of range"#),
        ([header, #"{"type":"block","id":"T-1"}"#], 2, #"unknown line type "block""#),
        ([header, #"{"id":"T-1"}"#], 2, #"missing field "type""#),
        ([header, #"{"type":"txn","id":"T-1","ops":[]}"#], 2, #"missing field "outcome""#),
        ([header, #"{"type":"txn","id":"T-1","outcome":"maybe","ops":[]}"#], 2, #"unknown outcome "maybe""#),
        ([header, #"{"type":"txn","id":"","outcome":"committed","ops":[]}"#], 2, #""id" is empty"#),
        ([header, #"{"type":"txn","id":7,"outcome":"committed","ops":[]}"#], 2, #""id" must be a string, found a number"#),
        ([header, #"{"type":"txn","id":"T-1","outcome":"committed","audit":"yes","ops":[]}"#], 2, #""audit" must be true or false, found a string"#),
        ([header, #"{"type":"txn","id":"T-1","outcome":"committed","start_us":-4,"ops":[]}"#], 2, #""start_us" must not be negative"#),
        ([header, #"{"type":"txn","id":"T-1","outcome":"committed","ops":{}}"#], 2, #""ops" must be an array, found an object"#),
        ([header, #"{"type":"txn","id":"T-1","outcome":"committed","ops":[7]}"#], 2, "op 1 must be an object, found a number"),
        ([header, #"{"type":"txn","id":"T-1","outcome":"committed","ops":[{"f":"write","key":"k","value":1,"version":1},{"f":"delete","key":"k","value":1,"version":2}]}"#],
         2, #"op 2: unknown op "delete""#),
        ([header, #"{"type":"txn","id":"T-1","outcome":"committed","ops":[{"f":"write","key":"k","value":"100","version":1}]}"#],
         2, #"op 1: "value" must be an integer, found a string"#),
        ([header, #"{"type":"txn","id":"T-1","outcome":"committed","ops":[{"f":"write","key":"k","value":1.5,"version":1}]}"#],
         2, #"op 1: "value" must be an integer, found 1.5"#),
        ([header, #"{"type":"txn","id":"T-1","outcome":"committed","ops":[{"f":"write","key":"k","value":1,"version":0}]}"#],
         2, "op 1: a write installs version 1 or later, found 0"),
        ([header, #"{"type":"txn","id":"T-1","outcome":"committed","ops":[{"f":"read","key":"k","value":1,"version":0}]}"#],
         2, #"op 1: missing field "writer""#),
        ([header, #"{"type":"txn","id":"T-1","outcome":"committed","ops":[{"f":"read","key":"k","value":1,"version":0,"writer":5}]}"#],
         2, #"op 1: "writer" must be a string, found a number"#),
        ([header, #"{"type":"txn","id":"T-1","outcome":"committed","ops":[{"f":"read","value":1,"version":0,"writer":null}]}"#],
         2, #"op 1: missing field "key""#),
        ([header, #"{"type":"txn","id":"T\x","outcome":"committed","ops":[]}"#], 2, "invalid escape"),
        ([header, "{\"type\":\"txn\",\"id\":\"T\u{1}\",\"outcome\":\"committed\",\"ops\":[]}"], 2, "control character"),
        ([header, String(repeating: "[", count: 10_000)], 2, "must be an object, found an array"),
        ([header, #"{"type":"txn","x":"#+String(repeating: "[", count: 10_000)], 2, "nested too deeply"),
    ]

    @Test(arguments: malformed)
    func malformedInputNamesTheLine(lines: [String], line: Int, problem: String) {
        #expect(throws: HistoryDecodingError.self) { try HistoryCodec.decode(lines: lines) }
        do {
            _ = try HistoryCodec.decode(lines: lines)
        } catch {
            #expect(error.line == line, "\(error)")
            #expect(error.problem.contains(problem), "\(error)")
            #expect(error.description.hasPrefix("line \(line): "))
        }
    }
}
