import DequeModule
import SandhiEngine

/// The header's figures, from the event stream: transfers per second, commit latency
/// percentiles and the abort rate over a sliding window. Bounded: at most `maxSamples`
/// finishes are kept (a window at 100,000 transfers/s is sampled, not stored whole).
public struct ConsoleMetrics: Sendable {
    public struct Sample: Sendable {
        var atUs: UInt64
        var durationUs: UInt64
        var committed: Bool
    }

    public let windowUs: UInt64
    public let maxSamples: Int
    private var samples = Deque<Sample>()
    /// Finishes counted in the window, whether or not sampled.
    private var counted = Deque<(atUs: UInt64, committed: Bool)>()

    public private(set) var transfersPerSecond = 0.0
    public private(set) var abortRate = 0.0
    public private(set) var p50Us: UInt64 = 0
    public private(set) var p99Us: UInt64 = 0

    public init(windowUs: UInt64 = 5_000_000, maxSamples: Int = 8_192) {
        self.windowUs = windowUs
        self.maxSamples = maxSamples
    }

    public mutating func record(_ event: EngineEvent) {
        guard case .finished(_, let outcome, let durationUs) = event.kind else { return }
        if counted.count >= maxSamples * 16 { counted.removeFirst() }
        counted.append((event.atUs, outcome.isCommitted))
        if outcome.isCommitted {
            if samples.count >= maxSamples { samples.removeFirst() }
            samples.append(Sample(atUs: event.atUs, durationUs: durationUs, committed: true))
        }
    }

    /// Recomputes the figures for the window ending at `nowUs` (a few times a second, not per frame).
    public mutating func refresh(nowUs: UInt64) {
        let start = nowUs > windowUs ? nowUs - windowUs : 0
        while let first = counted.first, first.atUs < start { counted.removeFirst() }
        while let first = samples.first, first.atUs < start { samples.removeFirst() }
        let commits = counted.reduce(0) { $0 + ($1.committed ? 1 : 0) }
        let seconds = Double(min(windowUs, max(nowUs, 1))) / 1_000_000
        transfersPerSecond = Double(commits) / seconds
        abortRate = counted.isEmpty ? 0 : Double(counted.count - commits) / Double(counted.count)
        let sorted = samples.map(\.durationUs).sorted()
        p50Us = sorted.isEmpty ? 0 : sorted[(sorted.count - 1) / 2]
        p99Us = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
    }
}

/// The log screen's lines: every event and every operator action, newest last, bounded.
public struct EventLog: Sendable {
    public struct Line: Sendable {
        public var atUs: UInt64
        public var isOperator: Bool
        /// An engine event is kept as it came and put into words only when a screen shows or
        /// filters it: the engine sends hundreds of thousands a second, the screen shows forty.
        private var event: EngineEvent?
        private var note: String

        public init(atUs: UInt64, text: String, isOperator: Bool) {
            self.atUs = atUs
            self.isOperator = isOperator
            self.note = text
        }

        public init(_ event: EngineEvent) {
            atUs = event.atUs
            isOperator = false
            self.event = event
            note = ""
        }

        public var text: String { event?.description ?? note }
    }

    public let capacity: Int
    public private(set) var lines = Deque<Line>()

    public init(capacity: Int = 4_000) { self.capacity = capacity }

    public mutating func append(_ line: Line) {
        if lines.count >= capacity { lines.removeFirst() }
        lines.append(line)
    }
}
