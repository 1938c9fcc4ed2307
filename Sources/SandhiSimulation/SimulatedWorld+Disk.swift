import SandhiEngine

// A bank's prepare persist: one framed record (length, CRC32C of the payload, CRC32C of the
// header), as the decision log's records are (the SQLite bank's WAL frames carry checksums of
// their own, to the same end). A crash mid-persist lands a prefix of it, or all, or none;
// recovery must drop a torn write-set whole, never restore part of it. (The coordinator's
// decision log is the store that ships, on a simulated disk: SimulatedWorld+DecisionLog.swift.)

extension SimulatedWorld {
    // MARK: - A bank's prepare persist

    /// The persisted form of a prepared write-set, framed as the log's records are.
    static func framedWriteSet(_ tx: TransactionID, _ operations: [Operation], _ writers: [ParticipantID]) -> [UInt8] {
        var writer = BinaryWriter(capacity: 64)
        writer.write(tx.rawValue)
        writer.write(UInt32(writers.count))
        for participant in writers { writer.write(participant.name) }
        writer.write(bytes: OperationCodec.encode(operations))
        return RecordFraming.frame(writer.bytes)
    }

    static func decodeWriteSet(_ payload: [UInt8]) throws -> (TransactionID, [Operation], [ParticipantID]) {
        var reader = BinaryReader(payload)
        let tx = TransactionID(rawValue: try reader.readUInt64())
        var writers: [ParticipantID] = []
        for _ in 0..<(try reader.readUInt32()) {
            let name = try reader.readString(maxBytes: ParticipantID.maxLengthBytes)
            guard let participant = ParticipantID(name) else { throw BinaryReader.Error.invalid("participant \(name)") }
            writers.append(participant)
        }
        let operations = try OperationCodec.decode(try reader.readBytes())
        return (tx, operations, writers)
    }

    /// A bank loses power while persisting a prepared write-set: by the seed's torn-write rate
    /// a prefix of its bytes lands (all of them, sometimes); otherwise none do. Staging
    /// validates before it writes, so a write-set that would be refused is never written.
    mutating func crashPersist(_ index: Int) {
        guard let persisting = banks[index].persisting else { return }
        banks[index].persisting = nil
        guard chance(faults.participantTornWritePerMille), !isCommitted(persisting.tx, at: index) else { return }
        let (failure, observed) = validate(index, persisting.tx, persisting.operations)
        guard failure == nil else { return }
        let bytes = Self.framedWriteSet(persisting.tx, persisting.operations, persisting.writers)
        let landed = random.next() % 4 == 0 ? bytes.count : pick(bytes.count)
        banks[index].torn = (Array(bytes[..<landed]), persisting, observed)
        if landed < bytes.count { injected[.tornParticipantWrite] += 1 }
    }

    /// The bank's recovery reads the tail a crash left: a whole write-set is prepared, anything
    /// less is dropped.
    mutating func recoverPersist(_ index: Int) {
        guard let torn = banks[index].torn else { return }
        banks[index].torn = nil
        let scan = RecordFraming.scan(torn.bytes)
        if case .corrupt(let offset, let reason) = scan.tail {
            violation("torn-write", "\(names[index]) calls a torn write-set corrupt at byte \(offset) (\(reason))")
        }
        guard let frame = scan.records.first else {
            cases[.tornWriteSetDropped] += 1
            return
        }
        let persisted = torn.writeSet
        guard let (tx, operations, writers) = try? Self.decodeWriteSet(frame.payload),
              tx == persisted.tx, operations == persisted.operations, writers == persisted.writers else {
            violation("torn-write", "\(names[index]) recovered a write-set that is not the one it persisted for \(persisted.tx)")
            return
        }
        cases[.writeSetLandedWhole] += 1
        banks[index].prepared[tx] = (operations, writers, nowUs)
        setStaged(tx, index, torn.observed)
    }
}
