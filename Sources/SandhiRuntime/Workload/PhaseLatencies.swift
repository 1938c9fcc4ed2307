import Histogram
import SandhiEngine
import Synchronization

/// Where a transfer's time goes, read off the engine's event stream: how long participants take
/// to vote (phase one), how long the COMMIT record takes to become durable, and how long
/// participants take to acknowledge (phase two).
public final class PhaseLatencies: Sendable {
    public struct Summary: Sendable, Codable {
        public var voteP50Us: UInt64, voteP99Us: UInt64
        public var decisionP50Us: UInt64, decisionP99Us: UInt64
        public var acknowledgeP50Us: UInt64, acknowledgeP99Us: UInt64
    }

    private struct Histograms {
        var vote = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .two)
        var decision = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .two)
        var acknowledge = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .two)
    }

    private let histograms = Mutex(Histograms())

    public init() {}

    /// An event subscriber; cheap enough to run under the driver's lock.
    public func observe(_ event: EngineEvent) {
        switch event.kind {
        case .voteReceived(_, _, _, let latencyUs): histograms.withLock { _ = $0.vote.record(latencyUs) }
        case .decisionDurable(_, _, let latencyUs): histograms.withLock { _ = $0.decision.record(latencyUs) }
        case .acknowledged(_, _, let latencyUs): histograms.withLock { _ = $0.acknowledge.record(latencyUs) }
        default: break
        }
    }

    public var summary: Summary {
        histograms.withLock { h in
            Summary(voteP50Us: h.vote.valueAtPercentile(50), voteP99Us: h.vote.valueAtPercentile(99),
                    decisionP50Us: h.decision.valueAtPercentile(50), decisionP99Us: h.decision.valueAtPercentile(99),
                    acknowledgeP50Us: h.acknowledge.valueAtPercentile(50), acknowledgeP99Us: h.acknowledge.valueAtPercentile(99))
        }
    }
}
