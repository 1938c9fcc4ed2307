/// The records of the coordinator's decision log.
///
/// Presumed abort keeps the log small: only COMMIT decisions are written (and forced to disk
/// before any participant hears them); an abort leaves no record, because "no record" already
/// means abort. END marks that every participant acknowledged a COMMIT, so its segment can be
/// reclaimed; it is never forced, since losing it only means recovery re-sends an idempotent
/// commit.
public enum DecisionRecord: Hashable, Sendable {
    /// First record of every segment: which segment this is and the coordinator epoch in force,
    /// so the newest epoch survives even when older segments are reclaimed.
    case segmentHeader(segment: UInt64, epoch: UInt32)
    /// A coordinator process started with this epoch (transaction ids carry it).
    case epochStarted(epoch: UInt32)
    /// The COMMIT decision for `transaction`, naming the participants that must hear it.
    case commit(transaction: TransactionID, participants: [ParticipantID])
    /// Every participant of `transaction` acknowledged the commit.
    case end(transaction: TransactionID)

    public static let maxParticipants = 256

    private enum Tag: UInt8 {
        case segmentHeader = 1, epochStarted = 2, commit = 3, end = 4
    }

    public var transaction: TransactionID? {
        switch self {
        case .commit(let transaction, _), .end(let transaction): return transaction
        case .segmentHeader, .epochStarted: return nil
        }
    }

    public func encoded() -> [UInt8] {
        var writer = BinaryWriter(capacity: 32)
        encode(into: &writer)
        return writer.bytes
    }

    /// Appends the encoding to `writer` (a writer reused across records saves an allocation each).
    public func encode(into writer: inout BinaryWriter) {
        switch self {
        case .segmentHeader(let segment, let epoch):
            writer.write(Tag.segmentHeader.rawValue); writer.write(segment); writer.write(epoch)
        case .epochStarted(let epoch):
            writer.write(Tag.epochStarted.rawValue); writer.write(epoch)
        case .commit(let transaction, let participants):
            precondition(participants.count <= Self.maxParticipants, "too many participants")
            writer.write(Tag.commit.rawValue); writer.write(transaction.rawValue)
            writer.write(UInt32(participants.count))
            for participant in participants { writer.write(participant.name) }
        case .end(let transaction):
            writer.write(Tag.end.rawValue); writer.write(transaction.rawValue)
        }
    }

    public init(decoding bytes: [UInt8]) throws {
        var reader = BinaryReader(bytes)
        guard let tag = Tag(rawValue: try reader.readUInt8()) else {
            throw BinaryReader.Error.invalid("unknown record type \(bytes.first ?? 0)")
        }
        switch tag {
        case .segmentHeader:
            self = .segmentHeader(segment: try reader.readUInt64(), epoch: try reader.readUInt32())
        case .epochStarted:
            self = .epochStarted(epoch: try reader.readUInt32())
        case .commit:
            let transaction = TransactionID(rawValue: try reader.readUInt64())
            let count = Int(try reader.readUInt32())
            guard count <= Self.maxParticipants else { throw BinaryReader.Error.invalid("\(count) participants") }
            var participants: [ParticipantID] = []
            for _ in 0..<count {
                let name = try reader.readString(maxBytes: ParticipantID.maxLengthBytes)
                guard let participant = ParticipantID(name) else { throw BinaryReader.Error.invalid("participant \(name)") }
                participants.append(participant)
            }
            self = .commit(transaction: transaction, participants: participants)
        case .end:
            self = .end(transaction: TransactionID(rawValue: try reader.readUInt64()))
        }
        guard reader.isAtEnd else { throw BinaryReader.Error.invalid("trailing bytes in record") }
    }
}
