/// The persisted form of a branch's write-set (a participant stores it with its PREPARE record,
/// so that a prepared transaction survives a crash of the process).
public enum OperationCodec {
    private enum Tag: UInt8 {
        case debit = 1, credit = 2, read = 3, fileReport = 4
    }

    public static let maxOperations = 1024

    public static func encode(_ operations: [Operation]) -> [UInt8] {
        var writer = BinaryWriter(capacity: 16 + operations.count * 24)
        writer.write(UInt32(operations.count))
        for operation in operations {
            switch operation {
            case .debit(let account, let amount):
                writer.write(Tag.debit.rawValue); writer.write(account.name); writer.write(amount.value)
            case .credit(let account, let amount):
                writer.write(Tag.credit.rawValue); writer.write(account.name); writer.write(amount.value)
            case .read(let account):
                writer.write(Tag.read.rawValue); writer.write(account.name)
            case .fileReport(let report):
                writer.write(Tag.fileReport.rawValue); writer.write(report.kind)
                writer.write(report.amount.value); writer.write(report.reference)
            }
        }
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> [Operation] {
        var reader = BinaryReader(bytes)
        let count = Int(try reader.readUInt32())
        guard count <= maxOperations else { throw BinaryReader.Error.invalid("\(count) operations exceed \(maxOperations)") }
        var operations: [Operation] = []
        operations.reserveCapacity(count)
        for _ in 0..<count {
            guard let tag = Tag(rawValue: try reader.readUInt8()) else { throw BinaryReader.Error.invalid("operation tag") }
            switch tag {
            case .debit, .credit, .read:
                let name = try reader.readString(maxBytes: AccountID.maxLengthBytes)
                guard let account = AccountID(name) else { throw BinaryReader.Error.invalid("account \(name)") }
                if tag == .read {
                    operations.append(.read(account: account))
                } else {
                    let amount = Paise(try reader.readInt64())
                    operations.append(tag == .debit ? .debit(account: account, amount: amount) : .credit(account: account, amount: amount))
                }
            case .fileReport:
                let kind = try reader.readString(maxBytes: Report.maxTextBytes)
                let amount = Paise(try reader.readInt64())
                let reference = try reader.readString(maxBytes: Report.maxTextBytes)
                operations.append(.fileReport(Report(kind: kind, amount: amount, reference: reference)))
            }
        }
        guard reader.isAtEnd else { throw BinaryReader.Error.invalid("trailing bytes after operations") }
        return operations
    }
}
