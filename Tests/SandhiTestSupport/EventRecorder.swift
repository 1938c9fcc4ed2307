import SandhiEngine
import Synchronization

/// Collects the engine's event stream for assertions.
public final class EventRecorder: Sendable {
    private let events = Mutex<[EngineEvent]>([])

    public init() {}

    public func record(_ event: EngineEvent) { events.withLock { $0.append(event) } }

    public var all: [EngineEvent] { events.withLock { $0 } }

    public func of(_ transaction: TransactionID) -> [EngineEvent.Kind] {
        all.filter { $0.transaction == transaction }.map(\.kind)
    }
}
