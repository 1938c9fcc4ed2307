/// The history file format: JSON lines, a header then one transaction per line.
///
///     {"type":"history","version":1,"total_paise":123456}
///     {"type":"txn","id":"T-1.42","outcome":"committed","audit":false,"start_us":100,"end_us":250,"ops":[
///       {"f":"read","key":"hdfc/acct-000001","value":1000,"version":3,"writer":"T-1.40"},
///       {"f":"write","key":"hdfc/acct-000001","value":900,"version":4}]}
///
/// (one line per transaction in the file). Other programs write this format; the field names
/// and their meaning are a contract.
public enum HistoryCodec {
    /// The header line, without a newline.
    public static func encode(header: HistoryHeader) -> String {
        "{\"type\":\"history\",\"version\":\(HistoryHeader.formatVersion),\"total_paise\":\(header.totalPaise)}"
    }

    /// One transaction line, without a newline. Absent timestamps are left out.
    public static func encode(_ transaction: HistoryTransaction) -> String {
        var line = "{\"type\":\"txn\",\"id\":"
        line.reserveCapacity(64 + 80 * transaction.ops.count)
        appendQuoted(transaction.id, to: &line)
        line += ",\"outcome\":\"\(transaction.outcome.rawValue)\",\"audit\":\(transaction.audit)"
        if let startUs = transaction.startUs { line += ",\"start_us\":\(startUs)" }
        if let endUs = transaction.endUs { line += ",\"end_us\":\(endUs)" }
        line += ",\"ops\":["
        for (index, op) in transaction.ops.enumerated() {
            if index > 0 { line += "," }
            switch op {
            case .read(let key, let value, let version, let writer):
                line += "{\"f\":\"read\",\"key\":"
                appendQuoted(key, to: &line)
                line += ",\"value\":\(value),\"version\":\(version),\"writer\":"
                if let writer { appendQuoted(writer, to: &line) } else { line += "null" }
                line += "}"
            case .write(let key, let value, let version):
                line += "{\"f\":\"write\",\"key\":"
                appendQuoted(key, to: &line)
                line += ",\"value\":\(value),\"version\":\(version)}"
            }
        }
        line += "]}"
        return line
    }

    /// Parses a whole file. Blank lines are skipped; the first other line must be the header.
    /// Throws `HistoryDecodingError` naming the first bad line: bad JSON, a missing header, an
    /// unknown op, a field of the wrong type, a duplicate transaction id.
    /// `bytes` is the whole file: `[UInt8]`, or Foundation's `Data` read from disk (not copied).
    public static func decode(_ bytes: some Collection<UInt8>) throws(HistoryDecodingError) -> History {
        let decoded = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(HistoryDecodingError) in try decode(buffer) }
        }
        if let decoded { return try decoded.get() }
        return try Array(bytes).withUnsafeBufferPointer { buffer throws(HistoryDecodingError) in try decode(buffer) }
    }

    /// The same, from lines without their newlines.
    public static func decode(lines: some Sequence<some StringProtocol>) throws(HistoryDecodingError) -> History {
        var bytes: [UInt8] = []
        for line in lines {
            bytes.append(contentsOf: line.utf8)
            bytes.append(UInt8(ascii: "\n"))
        }
        return try decode(bytes)
    }

    private static func decode(_ bytes: UnsafeBufferPointer<UInt8>) throws(HistoryDecodingError) -> History {
        var header: (HistoryHeader, line: Int)?
        var transactions: [HistoryTransaction] = []
        var lineOfID: [String: Int] = [:]
        let interner = StringInterner()
        var lineNumber = 0
        var lineStart = 0
        // Sized up front: growing a 200,000-entry array and dictionary step by step copies them
        // again and again.
        let lineCount = bytes.count { $0 == UInt8(ascii: "\n") } + 1
        transactions.reserveCapacity(lineCount)
        lineOfID.reserveCapacity(lineCount)
        while lineStart < bytes.count {
            lineNumber += 1
            var lineEnd = lineStart
            while lineEnd < bytes.count, bytes[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
            defer { lineStart = lineEnd + 1 }
            if isBlank(bytes, lineStart..<lineEnd) { continue }

            var scanner = JSONScanner(bytes: bytes, start: lineStart, end: lineEnd, interner: interner)
            let line: HistoryLine
            do {
                line = try HistoryLineDecoder.decode(&scanner)
            } catch {
                throw HistoryDecodingError(line: lineNumber, problem: error.message)
            }
            switch line {
            case .header(let decoded):
                if let header {
                    throw HistoryDecodingError(line: lineNumber, problem: "a second history header (the first is on line \(header.line))")
                }
                header = (decoded, lineNumber)
            case .transaction(let transaction):
                guard header != nil else {
                    throw HistoryDecodingError(line: lineNumber, problem: "expected the history header {\"type\":\"history\",...} before any transaction")
                }
                if let previous = lineOfID.updateValue(lineNumber, forKey: transaction.id) {
                    throw HistoryDecodingError(line: lineNumber, problem: "duplicate transaction id \"\(transaction.id)\" (first on line \(previous))")
                }
                transactions.append(transaction)
            }
        }
        guard let header else {
            throw HistoryDecodingError(line: max(lineNumber, 1), problem: "no history header: the file holds no {\"type\":\"history\",...} line")
        }
        return History(header: header.0, transactions: transactions)
    }

    private static func isBlank(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        range.allSatisfy { bytes[$0] == UInt8(ascii: " ") || bytes[$0] == UInt8(ascii: "\t") || bytes[$0] == UInt8(ascii: "\r") }
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped, the rest as is.
    private static func appendQuoted(_ string: String, to line: inout String) {
        line += "\""
        let needsEscaping = string.utf8.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
        if !needsEscaping {
            line += string
        } else {
            for scalar in string.unicodeScalars {
                switch scalar {
                case "\"": line += "\\\""
                case "\\": line += "\\\\"
                case "\n": line += "\\n"
                case "\r": line += "\\r"
                case "\t": line += "\\t"
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16)
                    line += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: line.unicodeScalars.append(scalar)
                }
            }
        }
        line += "\""
    }
}
