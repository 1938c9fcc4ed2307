/// The persisted form of a `ReconciliationRecord` (the payload of one framed record in the
/// runtime's reconciliation journal).
public enum ReconciliationCodec {
    private enum Tag: UInt8 {
        case opened = 1, outcomeLearned = 2, entry = 3
    }

    /// Operator-written text is bounded like every other field.
    public static let maxNoteBytes = 1024
    public static let maxOperatorBytes = 64

    public static func encode(_ record: ReconciliationRecord) -> [UInt8] {
        var writer = BinaryWriter(capacity: 128)
        switch record {
        case .opened(let heuristicCase):
            precondition(heuristicCase.status == .open && heuristicCase.actions.isEmpty, "a case is recorded when it opens")
            writer.write(Tag.opened.rawValue)
            writer.write(heuristicCase.transaction.rawValue)
            writer.write(heuristicCase.decision.rawValue)
            writer.write(heuristicCase.detectedAtWallMs)
            writer.write(UInt32(heuristicCase.participants.count))
            for participant in heuristicCase.participants { write(participant, into: &writer) }
        case .outcomeLearned(let tx, let participant):
            writer.write(Tag.outcomeLearned.rawValue)
            writer.write(tx.rawValue)
            write(participant, into: &writer)
        case .entry(let tx, let entry):
            writer.write(Tag.entry.rawValue)
            writer.write(tx.rawValue)
            writer.write(entry.action.rawValue)
            writer.write(entry.operatorName)
            writer.write(entry.note)
            writer.write(entry.atWallMs)
            writer.write(entry.linked?.rawValue ?? 0)
            writer.write(UInt32(entry.plan.count))
            for branch in entry.plan {
                writer.write(branch.participant.name)
                writer.write(bytes: OperationCodec.encode(branch.operations))
            }
            write(entry.before, into: &writer)
            write(entry.after, into: &writer)
            switch entry.result {
            case .started: writer.write(UInt8(1))
            case .succeeded: writer.write(UInt8(2))
            case .failed(let reason): writer.write(UInt8(3)); writer.write(reason)
            }
        }
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> ReconciliationRecord {
        var reader = BinaryReader(bytes)
        guard let tag = Tag(rawValue: try reader.readUInt8()) else { throw BinaryReader.Error.invalid("reconciliation record tag") }
        let record: ReconciliationRecord
        switch tag {
        case .opened:
            let tx = TransactionID(rawValue: try reader.readUInt64())
            guard let decision = LoggedDecision(rawValue: try reader.readUInt8()) else { throw BinaryReader.Error.invalid("decision") }
            let detectedAtWallMs = try reader.readInt64()
            let count = Int(try reader.readUInt32())
            guard count <= DecisionRecord.maxParticipants else { throw BinaryReader.Error.invalid("\(count) participants") }
            var participants: [HeuristicCase.Participant] = []
            for _ in 0..<count { participants.append(try readParticipant(&reader)) }
            record = .opened(HeuristicCase(transaction: tx, decision: decision, detectedAtWallMs: detectedAtWallMs, participants: participants))
        case .outcomeLearned:
            let tx = TransactionID(rawValue: try reader.readUInt64())
            record = .outcomeLearned(tx, try readParticipant(&reader))
        case .entry:
            let tx = TransactionID(rawValue: try reader.readUInt64())
            let actionName = try reader.readString(maxBytes: 32)
            guard let action = ReconcileAction(rawValue: actionName) else { throw BinaryReader.Error.invalid("action \(actionName)") }
            let operatorName = try reader.readString(maxBytes: maxOperatorBytes)
            let note = try reader.readString(maxBytes: maxNoteBytes)
            let atWallMs = try reader.readInt64()
            let linkedRaw = try reader.readUInt64()
            let planCount = Int(try reader.readUInt32())
            guard planCount <= DecisionRecord.maxParticipants else { throw BinaryReader.Error.invalid("\(planCount) branches") }
            var plan: [Branch] = []
            for _ in 0..<planCount {
                let participant = try readParticipantID(&reader)
                plan.append(Branch(participant: participant, operations: try OperationCodec.decode(try reader.readBytes())))
            }
            let before = try readStatus(&reader)
            let after = try readStatus(&reader)
            let result: ReconcileEntry.Result
            switch try reader.readUInt8() {
            case 1: result = .started
            case 2: result = .succeeded
            case 3: result = .failed(reason: try reader.readString(maxBytes: maxNoteBytes))
            default: throw BinaryReader.Error.invalid("action result")
            }
            record = .entry(tx, ReconcileEntry(action: action, operatorName: operatorName, note: note, atWallMs: atWallMs,
                                               linked: linkedRaw == 0 ? nil : TransactionID(rawValue: linkedRaw), plan: plan,
                                               before: before, after: after, result: result))
        }
        guard reader.isAtEnd else { throw BinaryReader.Error.invalid("trailing bytes in reconciliation record") }
        return record
    }

    private static func write(_ participant: HeuristicCase.Participant, into writer: inout BinaryWriter) {
        writer.write(participant.participant.name)
        writer.write(participant.outcome.rawValue)
        if let operations = participant.operations {
            writer.write(UInt8(1)); writer.write(bytes: OperationCodec.encode(operations))
        } else {
            writer.write(UInt8(0))
        }
    }

    private static func readParticipant(_ reader: inout BinaryReader) throws -> HeuristicCase.Participant {
        let participant = try readParticipantID(&reader)
        guard let outcome = BranchOutcome(rawValue: try reader.readUInt8()) else { throw BinaryReader.Error.invalid("branch outcome") }
        let operations: [Operation]? = try reader.readUInt8() == 1 ? try OperationCodec.decode(try reader.readBytes()) : nil
        return HeuristicCase.Participant(participant: participant, outcome: outcome, operations: operations)
    }

    private static func readParticipantID(_ reader: inout BinaryReader) throws -> ParticipantID {
        let name = try reader.readString(maxBytes: ParticipantID.maxLengthBytes)
        guard let participant = ParticipantID(name) else { throw BinaryReader.Error.invalid("participant \(name)") }
        return participant
    }

    private static func write(_ status: HeuristicCase.Status, into writer: inout BinaryWriter) {
        switch status {
        case .open:
            writer.write(UInt8(1))
        case .acting(let action, let linked):
            writer.write(UInt8(2)); writer.write(action.rawValue); writer.write(linked.rawValue)
        case .settled(let action, let linked):
            writer.write(UInt8(3)); writer.write(action.rawValue); writer.write(linked?.rawValue ?? 0)
        }
    }

    private static func readStatus(_ reader: inout BinaryReader) throws -> HeuristicCase.Status {
        switch try reader.readUInt8() {
        case 1:
            return .open
        case let kind where kind == 2 || kind == 3:
            let name = try reader.readString(maxBytes: 32)
            guard let action = ReconcileAction(rawValue: name) else { throw BinaryReader.Error.invalid("action \(name)") }
            let raw = try reader.readUInt64()
            if kind == 2 { return .acting(action, linked: TransactionID(rawValue: raw)) }
            return .settled(action, linked: raw == 0 ? nil : TransactionID(rawValue: raw))
        default:
            throw BinaryReader.Error.invalid("case status")
        }
    }
}
