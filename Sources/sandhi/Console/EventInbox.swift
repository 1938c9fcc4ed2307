import SandhiEngine
import Synchronization

/// Engine events on their way to the console. The engine calls `push` under its own lock, so
/// it must be quick and must never wait for the screen: a bounded buffer, oldest dropped (and
/// counted) when the console falls behind.
final class EventInbox: Sendable {
    private struct State {
        var events: [EngineEvent] = []
        var dropped = 0
    }

    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int = 100_000) { self.capacity = capacity }

    func push(_ event: EngineEvent) {
        state.withLock { state in
            if state.events.count >= capacity {
                state.events.removeFirst(capacity / 4)
                state.dropped += capacity / 4
            }
            state.events.append(event)
        }
    }

    /// Everything queued, and how many were dropped since the last take.
    func take() -> (events: [EngineEvent], dropped: Int) {
        state.withLock { state in
            defer { state.events.removeAll(keepingCapacity: true); state.dropped = 0 }
            return (state.events, state.dropped)
        }
    }
}
