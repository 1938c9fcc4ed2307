import SandhiEngine
import SandhiRuntime

/// The engine's events, numbered from 1, in a ring of the last `capacity` that any number of
/// readers follow at their own pace (the service's event stream, an attached console).
///
/// The engine never waits for a reader: `append` is O(1) plus one non-blocking wake-up per
/// reader, under a short lock. A reader that falls more than `capacity` events behind is not
/// held up for: its next read says how many it missed and resumes at the oldest event kept.
public final class EventHub: Sendable {
    public struct Numbered: Sendable {
        public var id: UInt64
        public var event: EngineEvent
    }

    public struct Read: Sendable {
        public var events: [Numbered]
        /// Events after the reader's cursor that the ring no longer holds.
        public var missed: UInt64
    }

    private struct State {
        var ring: [Numbered?]
        /// The id the next event gets.
        var nextID: UInt64 = 1
        var readers: [UInt64: AsyncStream<Void>.Continuation] = [:]
        var nextReader: UInt64 = 0
        var closed = false
        /// Events readers were told they missed, in all (a metric).
        var missedTotal: UInt64 = 0
    }

    public let capacity: Int
    private let state: Lock<State>

    public init(capacity: Int = 65_536) {
        precondition(capacity > 0, "a hub keeps at least one event")
        self.capacity = capacity
        state = Lock(State(ring: Array(repeating: nil, count: capacity)))
    }

    /// Called from the engine's threads, in the order the engine emits.
    public func append(_ event: EngineEvent) {
        state.withLock { state in
            guard !state.closed else { return }
            let id = state.nextID
            state.ring[Int(id % UInt64(capacity))] = Numbered(id: id, event: event)
            state.nextID += 1
            for reader in state.readers.values { reader.yield() }
        }
    }

    /// The id of the newest event (0 before the first).
    public var lastID: UInt64 { state.withLock { $0.nextID - 1 } }

    public var missedTotal: UInt64 { state.withLock { $0.missedTotal } }

    /// Up to `limit` events after `cursor`, oldest first.
    public func read(after cursor: UInt64, limit: Int) -> Read {
        state.withLock { state in
            let oldest = state.nextID > UInt64(capacity) ? state.nextID - UInt64(capacity) : 1
            var from = cursor + 1
            var missed: UInt64 = 0
            if from < oldest {
                missed = oldest - from
                state.missedTotal += missed
                from = oldest
            }
            var events: [Numbered] = []
            var id = from
            while id < state.nextID && events.count < limit {
                if let numbered = state.ring[Int(id % UInt64(capacity))] { events.append(numbered) }
                id += 1
            }
            return Read(events: events, missed: missed)
        }
    }

    /// Wake-ups for one reader: an element whenever events were appended since it last looked
    /// (coalesced: a reader that is busy gets one, not one per event), finished at `close`.
    public func subscribe() -> (AsyncStream<Void>, token: UInt64) {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let token = state.withLock { state -> UInt64 in
            state.nextReader += 1
            if state.closed { continuation.finish() } else { state.readers[state.nextReader] = continuation }
            return state.nextReader
        }
        return (stream, token)
    }

    /// Wakes one reader without an event (its keep-alive timer).
    public func poke(_ token: UInt64) {
        state.withLock { $0.readers[token]?.yield() }
    }

    public func unsubscribe(_ token: UInt64) {
        let continuation = state.withLock { $0.readers.removeValue(forKey: token) }
        continuation?.finish()
    }

    /// No more events: every reader's wake-ups finish, so streams end (a service stopping).
    public func close() {
        let readers = state.withLock { state -> [AsyncStream<Void>.Continuation] in
            state.closed = true
            defer { state.readers = [:] }
            return Array(state.readers.values)
        }
        for reader in readers { reader.finish() }
    }

    public var isClosed: Bool { state.withLock { $0.closed } }
}
