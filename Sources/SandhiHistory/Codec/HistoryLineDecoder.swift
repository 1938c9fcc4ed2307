/// One line of a history file, read straight into the model.
enum HistoryLine {
    case header(HistoryHeader)
    case transaction(HistoryTransaction)
}

/// Field-by-field decoding of the two line types. Fields may come in any order; fields this
/// version does not know are skipped so that a newer writer's extras do not break an older
/// checker, but a known field of the wrong type is an error naming it.
enum HistoryLineDecoder {
    static func decode(_ scanner: inout JSONScanner) throws(JSONProblem) -> HistoryLine {
        var type: String?, id: String?, outcome: String?, audit: Bool?
        var formatVersion: Int64?, totalPaise: Int64?, startUs: Int64?, endUs: Int64?
        var ops: [HistoryTransaction.Op]?

        try scanner.beginObject("the line")
        var first = true
        while let field = try scanner.nextField(first: &first) {
            switch field {
            case "type": type = try scanner.readString("\"type\"")
            case "version": formatVersion = try scanner.readInteger("\"version\"")
            case "total_paise": totalPaise = try scanner.readInteger("\"total_paise\"")
            case "id": id = try scanner.readString("\"id\"")
            case "outcome": outcome = try scanner.readString("\"outcome\"")
            case "audit": audit = try scanner.readBool("\"audit\"")
            case "start_us": startUs = try scanner.readNull() ? nil : scanner.readInteger("\"start_us\"")
            case "end_us": endUs = try scanner.readNull() ? nil : scanner.readInteger("\"end_us\"")
            case "ops": ops = try decodeOps(&scanner)
            default: try scanner.skipValue()
            }
        }
        try scanner.finish()

        switch type {
        case "history":
            guard let formatVersion else { throw missing("version") }
            guard formatVersion == Int64(HistoryHeader.formatVersion) else {
                throw JSONProblem(message: "unsupported history version \(formatVersion) (this reader knows version \(HistoryHeader.formatVersion))")
            }
            guard let totalPaise else { throw missing("total_paise") }
            return .header(HistoryHeader(totalPaise: totalPaise))
        case "txn":
            guard let id else { throw missing("id") }
            guard !id.isEmpty else { throw JSONProblem(message: "\"id\" is empty") }
            guard let outcome else { throw missing("outcome") }
            guard let parsedOutcome = HistoryTransaction.Outcome(rawValue: outcome) else {
                throw JSONProblem(message: "unknown outcome \"\(outcome)\" (expected committed, aborted or unknown)")
            }
            guard let ops else { throw missing("ops") }
            return .transaction(HistoryTransaction(
                id: id, outcome: parsedOutcome, audit: audit ?? false,
                startUs: try microseconds(startUs, "start_us"), endUs: try microseconds(endUs, "end_us"), ops: ops))
        case nil:
            throw missing("type")
        case let other?:
            throw JSONProblem(message: "unknown line type \"\(other)\" (expected history or txn)")
        }
    }

    private static func decodeOps(_ scanner: inout JSONScanner) throws(JSONProblem) -> [HistoryTransaction.Op] {
        var ops: [HistoryTransaction.Op] = []
        try scanner.beginArray("\"ops\"")
        var first = true
        while try scanner.nextElement(first: &first) {
            ops.append(try decodeOp(&scanner, number: ops.count + 1))
        }
        return ops
    }

    /// `number` is 1-based, as messages show it.
    private static func decodeOp(_ scanner: inout JSONScanner, number: Int) throws(JSONProblem) -> HistoryTransaction.Op {
        var function: String?, key: String?, value: Int64?, version: Int64?
        var writer: String?, writerPresent = false

        try scanner.beginObject("op \(number)")
        var first = true
        while let field = try scanner.nextField(first: &first) {
            switch field {
            case "f": function = try scanner.readString("op \(number): \"f\"")
            case "key": key = try scanner.readString("op \(number): \"key\"")
            case "value": value = try scanner.readInteger("op \(number): \"value\"")
            case "version": version = try scanner.readInteger("op \(number): \"version\"")
            case "writer":
                writerPresent = true
                writer = try scanner.readNull() ? nil : scanner.readString("op \(number): \"writer\"")
            default: try scanner.skipValue()
            }
        }

        guard let function else { throw missing("f", op: number) }
        guard function == "read" || function == "write" else {
            throw JSONProblem(message: "op \(number): unknown op \"\(function)\" (expected read or write)")
        }
        guard let key else { throw missing("key", op: number) }
        guard let value else { throw missing("value", op: number) }
        guard let version else { throw missing("version", op: number) }
        if function == "read" {
            guard version >= 0 else { throw JSONProblem(message: "op \(number): \"version\" must not be negative, found \(version)") }
            // Required even when null: a reader that forgot to record whose value it saw would
            // silently turn every dirty read into an initial-state read.
            guard writerPresent else { throw missing("writer", op: number, note: " (null for the initial state)") }
            return .read(key: key, value: value, version: version, writer: writer)
        }
        // Version 0 is the initial state, which no transaction writes.
        guard version >= 1 else { throw JSONProblem(message: "op \(number): a write installs version 1 or later, found \(version)") }
        return .write(key: key, value: value, version: version)
    }

    private static func microseconds(_ value: Int64?, _ field: String) throws(JSONProblem) -> UInt64? {
        guard let value else { return nil }
        guard value >= 0 else { throw JSONProblem(message: "\"\(field)\" must not be negative, found \(value)") }
        return UInt64(value)
    }

    private static func missing(_ field: String, op: Int? = nil, note: String = "") -> JSONProblem {
        JSONProblem(message: (op.map { "op \($0): " } ?? "") + "missing field \"\(field)\"" + note)
    }
}
