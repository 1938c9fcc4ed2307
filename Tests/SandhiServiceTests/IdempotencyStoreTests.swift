import SandhiEngine
import SandhiIO
import SandhiParticipants
@testable import SandhiService
import Testing

/// The idempotency store's one durability point: a claim (key, request, transaction id) is on
/// disk before the claim returns, because the service begins the transaction right after it.
/// With `synchronous=NORMAL` planted instead of FULL, the WAL is not fsynced at commit and the
/// cuts below lose claims that returned.
@Suite struct IdempotencyStoreTests {
    static let path = "/data/coordinator/idempotency.sqlite"

    /// Opens a store and claims keys one by one until the power goes; returns how many claims
    /// returned (-1: the store did not open).
    static func run(_ io: FileIO, keys: Int) -> Int {
        guard let store = try? IdempotencyStore(path: path, io: io, now: { 1_000_000 }) else { return -1 }
        defer { store.close() }
        for index in 0..<keys {
            let tx = TransactionID(epoch: 1, sequence: UInt64(index + 1))
            guard (try? store.claim(key: "key-\(index)", request: "{\"n\":\(index)}", transaction: tx)) != nil else { return index }
        }
        return keys
    }

    @Test func everyClaimThatReturnedSurvivesAPowerLossAfterAnyDiskCall() throws {
        let keys = 4
        let dry = SimulatedDisk(seed: 1)
        dry.installDirectory("/data")
        dry.installDirectory("/data/coordinator")
        #expect(Self.run(.through(dry), keys: keys) == keys)
        let calls = dry.calls.count
        for cut in 0...calls {
            for seed in 0..<3 as Range<UInt64> {
                let disk = SimulatedDisk(seed: seed &* 7_919 &+ UInt64(cut))
                disk.installDirectory("/data")
                disk.installDirectory("/data/coordinator")
                let io = FileIO.through(disk)
                disk.cutPower(afterCalls: cut)
                let claimed = Self.run(io, keys: keys)
                disk.powerLoss()
                guard claimed > 0 else { continue }
                do {
                    let store = try IdempotencyStore(path: Self.path, io: io, now: { 1_000_000 })
                    defer { store.close() }
                    for index in 0..<claimed {
                        let entry = try store.entry("key-\(index)")
                        #expect(entry?.transaction == TransactionID(epoch: 1, sequence: UInt64(index + 1)),
                                "cut \(cut), seed \(seed): claim \(index) returned and is gone after the power loss")
                    }
                } catch {
                    Issue.record("cut \(cut), seed \(seed): \(claimed) claims returned, and the store does not open: \(error)")
                }
            }
        }
    }

    @Test func aKeyIsBoundOnceAndForgottenAfterItsRetention() throws {
        let disk = SimulatedDisk(seed: 3)
        disk.installDirectory("/data")
        disk.installDirectory("/data/coordinator")
        let io = FileIO.through(disk)
        let first = TransactionID(epoch: 1, sequence: 1), second = TransactionID(epoch: 1, sequence: 2)
        do {
            let store = try IdempotencyStore(path: Self.path, io: io, now: { 1_000 })
            defer { store.close() }
            #expect(try store.claim(key: "k", request: "a", transaction: first) == .claimed)
            guard case .existing(let entry) = try store.claim(key: "k", request: "b", transaction: second) else {
                Issue.record("a second claim of the same key took it")
                return
            }
            #expect(entry.transaction == first && entry.request == "a" && entry.outcome == nil)
            try store.record(key: "k", outcome: .committed, latencyUs: 7)
            #expect(try store.entry("k")?.outcome == .committed)
        }
        do {
            let store = try IdempotencyStore(path: Self.path, io: io, now: { 1_000 + IdempotencyStore.retentionSeconds - 1 })
            defer { store.close() }
            #expect(try store.entry("k")?.latencyUs == 7, "kept within its retention")
        }
        let store = try IdempotencyStore(path: Self.path, io: io, now: { 1_000 + IdempotencyStore.retentionSeconds + 1 })
        defer { store.close() }
        #expect(try store.entry("k") == nil, "forgotten after its retention")
    }
}
