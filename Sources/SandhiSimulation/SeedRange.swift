import Dispatch
import Synchronization
import SandhiIO

/// Many seeds, run on several threads at once. Each seed's world is its own (its disks, its
/// banks, its clock), so seeds share nothing but the bank image cache and SQLite's VFS list
/// (both locked); a seed replays the same on any thread, and the summary does not depend on
/// which thread ran what: counts are sums, and failing seeds are sorted.
public struct SeedRange: Sendable {
    /// What a range of seeds did, in total.
    public struct Summary: Sendable {
        public var seeds = 0
        public var transfers = 0, committed = 0
        public var heuristicCases = 0, linkedTransactions = 0
        public var writtenOffPaise: Int64 = 0
        public var injected: [String: Int] = [:], cases: [String: Int] = [:]
        /// Every seed that broke an invariant, by seed.
        public var failing: [SimulationReport] = []

        public init() {}

        /// One seed's report.
        init(_ report: SimulationReport) {
            seeds = 1
            transfers = report.transactions
            committed = report.committed
            heuristicCases = report.heuristicCases
            linkedTransactions = report.linkedTransactions
            writtenOffPaise = report.writtenOffPaise
            injected = report.injected
            cases = report.cases
            failing = report.passed ? [] : [report]
        }

        mutating func add(_ other: Summary) {
            seeds += other.seeds
            transfers += other.transfers
            committed += other.committed
            heuristicCases += other.heuristicCases
            linkedTransactions += other.linkedTransactions
            writtenOffPaise += other.writtenOffPaise
            injected.merge(other.injected, uniquingKeysWith: +)
            cases.merge(other.cases, uniquingKeysWith: +)
            failing += other.failing
        }
    }

    public let seeds: ClosedRange<UInt64>
    /// Every seed's options but its seed.
    public let template: SimulationOptions
    /// Threads: at most this many, and no more than there are seeds.
    public let jobs: Int

    public init(seeds: ClosedRange<UInt64>, template: SimulationOptions, jobs: Int) {
        precondition(jobs >= 1, "jobs \(jobs)")
        self.seeds = seeds
        self.template = template
        self.jobs = jobs
    }

    /// Each seed builds a world (simulated disks, SQLite connections) and frees it whole at
    /// its end. glibc hands freed memory at the top of the heap back to the kernel once more
    /// than 128 KiB of it is free, so every seed would fault the same pages in again: about a
    /// seventh of a run. Keep up to this much instead (process-wide: a simulation run is its
    /// process's one job).
    static let keptFreeHeapBytes: Int32 = 256 << 20

    static func keepFreedHeap() { Allocator.keepFreedHeap(upToBytes: keptFreeHeapBytes) }

    /// Seeds a thread takes at a time: few enough that the threads finish together, enough
    /// that they rarely meet at the counter.
    static let seedsPerTake: UInt64 = 8

    public func run() -> Summary {
        Self.keepFreedHeap()
        let next = Atomic<UInt64>(0)
        let total = Mutex(Summary())
        let count = UInt64(seeds.count)
        let threads = Int(min(UInt64(jobs), count))
        let low = seeds.lowerBound, template = template
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            var mine = Summary()
            while true {
                let start = next.add(Self.seedsPerTake, ordering: .relaxed).oldValue
                guard start < count else { break }
                for offset in start..<min(start + Self.seedsPerTake, count) {
                    var options = template
                    options.seed = low + offset
                    var world = SimulatedWorld(options)
                    mine.add(Summary(world.run()))
                }
            }
            total.withLock { $0.add(mine) }
        }
        var summary = total.withLock { $0 }
        summary.failing.sort { $0.seed < $1.seed }
        return summary
    }
}
