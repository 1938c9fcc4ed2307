import Crypto
import Foundation
import SandhiEngine
import SandhiIO
import SandhiParticipants
@testable import SandhiRuntime
import SandhiTestSupport
import Testing

/// The signed audit trail: every kind of tampering caught and its line named; every record
/// that was acknowledged survives a power cut; a command whose intent cannot be recorded is
/// not carried out.
@Suite struct AuditTrailTests {
    static let key = try! MLDSA65.PrivateKey()

    static func record(_ n: Int) -> AuditRecord {
        AuditRecord(kind: n % 2 == 1 ? .intent : .outcome, actor: "alice", via: "unix", command: "abort T-1.\(n)",
                    reason: "reason \(n)", state: "T-1.\(n) preparing", result: n % 2 == 1 ? nil : "aborted", ok: n % 2 == 1 ? nil : true)
    }

    /// A trail of `count` records, as bytes.
    static func trail(_ count: Int) throws -> [UInt8] {
        let disk = SimulatedDisk(seed: 1)
        disk.installDirectory("/d")
        let (trail, _) = try AuditTrail.open(path: "/d/audit.log", key: key, fileSystem: disk, logger: ThreeBanks.logger)
        for n in 1...count { try trail.append(record(n), atWallMs: Int64(n)) }
        trail.close()
        return try disk.readAll("/d/audit.log")
    }

    static func lines(_ bytes: [UInt8]) -> [[UInt8]] {
        bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast().map(Array.init)
    }

    static func joined(_ lines: [[UInt8]]) -> [UInt8] { lines.flatMap { $0 + [UInt8(ascii: "\n")] } }

    @Test func anIntactTrailVerifiesAndEveryTamperingIsCaughtAtItsLine() throws {
        let bytes = try Self.trail(5)
        let good = AuditTrail.verify(bytes, publicKey: Self.key.publicKey)
        #expect(good.problem == nil && good.records == 5 && good.lastHash.count == 64)
        var lines = Self.lines(bytes)

        // A byte of a record flipped: "alice" becomes "alicf".
        var flipped = lines
        let at = try #require(flipped[2].firstIndex(of: UInt8(ascii: "e")))
        flipped[2][at] ^= 0x03
        #expect(AuditTrail.verify(Self.joined(flipped), publicKey: Self.key.publicKey).problem?.line == 3)
        // A byte of a signature flipped.
        var signature = lines
        signature[1][signature[1].count - 5] = signature[1][signature[1].count - 5] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        let badSignature = AuditTrail.verify(Self.joined(signature), publicKey: Self.key.publicKey)
        #expect(badSignature.problem?.line == 2 && badSignature.records == 1, "\(String(describing: badSignature.problem))")
        // A record removed.
        var removed = lines
        removed.remove(at: 2)
        let gap = AuditTrail.verify(Self.joined(removed), publicKey: Self.key.publicKey)
        #expect(gap.problem?.line == 3 && gap.problem?.why.contains("record 4 where record 3 belongs") == true, "\(String(describing: gap.problem))")
        // Two records swapped.
        lines.swapAt(1, 2)
        let swapped = AuditTrail.verify(Self.joined(lines), publicKey: Self.key.publicKey)
        #expect(swapped.problem?.line == 2 && swapped.records == 1, "\(String(describing: swapped.problem))")
        lines.swapAt(1, 2)
        // A record re-signed by another key (its content untouched, or changed and re-signed).
        let other = try MLDSA65.PrivateKey()
        var forged = lines
        let tab = try #require(forged[3].lastIndex(of: UInt8(ascii: "\t")))
        let json = Array(forged[3][..<tab])
        forged[3] = json + [UInt8(ascii: "\t")] + Array(try other.signature(for: json).base64EncodedString().utf8)
        let foreign = AuditTrail.verify(Self.joined(forged), publicKey: Self.key.publicKey)
        #expect(foreign.problem?.line == 4 && foreign.problem?.why.contains("another key") == true, "\(String(describing: foreign.problem))")
        // The whole trail under another key's public half.
        #expect(AuditTrail.verify(bytes, publicKey: other.publicKey).problem?.line == 1)
        // A torn last line: named after the whole lines are checked.
        let torn = AuditTrail.verify(Array(bytes.dropLast(40)), publicKey: Self.key.publicKey)
        #expect(torn.problem?.line == 5 && torn.records == 4, "\(String(describing: torn.problem))")
    }

    /// Each record is synced before `append` returns: cut the power after every disk call of
    /// five appends, and every record whose append returned is there, chained and signed.
    @Test func everyAcknowledgedRecordSurvivesAPowerLossAfterAnyDiskCall() throws {
        let dry = SimulatedDisk(seed: 1)
        dry.installDirectory("/d")
        func run(_ disk: SimulatedDisk) -> Int {
            guard let (trail, _) = try? AuditTrail.open(path: "/d/audit.log", key: Self.key, fileSystem: disk, logger: ThreeBanks.logger) else { return -1 }
            defer { trail.close() }
            for n in 1...5 { guard (try? trail.append(Self.record(n), atWallMs: Int64(n))) != nil else { return n - 1 } }
            return 5
        }
        #expect(run(dry) == 5)
        for cut in 0...dry.calls.count {
            for seed in 0..<3 as Range<UInt64> {
                let disk = SimulatedDisk(seed: seed &* 31 &+ UInt64(cut))
                disk.installDirectory("/d")
                disk.cutPower(afterCalls: cut)
                let acknowledged = run(disk)
                disk.powerLoss()
                guard acknowledged > 0 else { continue }
                let bytes = (try? disk.readAll("/d/audit.log")) ?? []
                let scan = AuditTrail.scan(bytes, publicKey: Self.key.publicKey)
                #expect(scan.damage == nil, "cut \(cut), seed \(seed): \(String(describing: scan.damage))")
                let verification = AuditTrail.verify(Array(bytes[..<scan.validEnd]), publicKey: Self.key.publicKey)
                #expect(verification.problem == nil && verification.records >= acknowledged,
                        "cut \(cut), seed \(seed): \(acknowledged) acknowledged, \(verification.records) found, \(String(describing: verification.problem))")
                // The next start cuts a torn tail and goes on chaining from the last whole line.
                if let (reopened, _) = try? AuditTrail.open(path: "/d/audit.log", key: Self.key, fileSystem: disk, logger: ThreeBanks.logger) {
                    _ = try? reopened.append(Self.record(9), atWallMs: 9)
                    reopened.close()
                    let after = AuditTrail.verify((try? disk.readAll("/d/audit.log")) ?? [], publicKey: Self.key.publicKey)
                    #expect(after.problem == nil && after.records == verification.records + 1, "cut \(cut): \(String(describing: after.problem))")
                }
            }
        }
    }

    @Test func aCommandWhoseIntentCannotBeRecordedIsNotCarriedOut() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let node = try await banks.start()
        defer { node.stop() }
        try await node.inject(.delayMessages(ThreeBanks.sbi, delayMs: LiveFault.maxDelayMs))
        let transfer = Task { try await node.driver.transfer(ThreeBanks.move(.rupees(1), from: (ThreeBanks.hdfc, ThreeBanks.alice), to: (ThreeBanks.sbi, ThreeBanks.carol))) }
        for _ in 0..<6_000 where node.driver.inFlightCount == 0 { try await Task.sleep(nanoseconds: 5_000_000) }
        let tx = try #require(node.driver.snapshot().transactions.keys.first)
        node.auditTrail.close() // every append now fails
        await #expect(throws: OperatorCommandRefusal.self) { try await node.perform(.abort(tx), actor: "alice", via: "unix", reason: "test") }
        #expect(node.driver.snapshot().transactions[tx]?.state == .preparing, "not aborted: its intent was not recorded")
        try await node.inject(.heal(ThreeBanks.sbi))
        #expect(try await transfer.value.outcome.isCommitted)
        let verification = AuditTrail.verify((try? Array(Data(contentsOf: URL(fileURLWithPath: banks.directory.auditTrailPath)))) ?? [],
                                             publicKey: try AuditKey.loadPublic(from: banks.directory.path))
        #expect(verification.records == 0 && verification.problem == nil)
    }

    @Test func aPerformedCommandLeavesItsIntentAndOutcomeWithTheStateBeforeAndAfter() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let node = try await banks.start()
        _ = try await node.perform(.fault(.delayMessages(ThreeBanks.icici, delayMs: 5)), actor: "alice", via: "unix", reason: "drill")
        await #expect(throws: OperatorCommandRefusal.self) {
            try await node.perform(.abort(TransactionID(epoch: 1, sequence: 99)), actor: "bob", via: "tcp", reason: "mistake")
        }
        node.stop()
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: banks.directory.auditTrailPath)))
        let verification = AuditTrail.verify(bytes, publicKey: try AuditKey.loadPublic(from: banks.directory.path))
        #expect(verification.problem == nil && verification.records == 4)
        let records = Self.lines(bytes).compactMap { AuditLine.record($0) }
        #expect(records.map(\.kind) == [.intent, .outcome, .intent, .outcome])
        #expect(records[0].state == "faults: none" && records[1].state == "faults: delay icici 5ms" && records[1].ok == true)
        #expect(records[2].actor == "bob" && records[2].via == "tcp" && records[2].reason == "mistake")
        #expect(records[3].ok == false && records[3].result?.contains("not in flight") == true && records[3].intent == 3)
        var info = stat()
        #expect(stat(AuditKey.privatePath(banks.directory.path), &info) == 0 && info.st_mode & 0o777 == 0o600, "the key is its owner's alone")
    }
}
