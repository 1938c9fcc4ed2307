import SandhiEngine
@testable import SandhiService
import Testing

/// The event ring the stream reads: a slow reader is told what it missed and never holds the
/// engine up; a reader resumes after the id it last saw.
@Suite struct EventHubTests {
    static func event(_ n: Int) -> EngineEvent { EngineEvent(atUs: UInt64(n), .faultInjected("event \(n)")) }

    @Test func aReaderThatFellBehindIsToldHowManyItMissedAndResumesAtTheOldest() {
        let hub = EventHub(capacity: 8)
        for n in 1...20 { hub.append(Self.event(n)) } // the engine never waits: no reader read any
        #expect(hub.lastID == 20)
        let late = hub.read(after: 0, limit: 100)
        #expect(late.missed == 12 && late.events.map(\.id) == Array(13...20))
        #expect(hub.missedTotal == 12)
        let resumed = hub.read(after: 15, limit: 2)
        #expect(resumed.missed == 0 && resumed.events.map(\.id) == [16, 17], "after the id it saw, at most `limit`")
        #expect(hub.read(after: 20, limit: 10).events.isEmpty)
    }

    @Test func readersAreWokenByEventsAndFinishedByClose() async {
        let hub = EventHub(capacity: 4)
        let (wakeups, _) = hub.subscribe()
        var iterator = wakeups.makeAsyncIterator()
        hub.append(Self.event(1))
        hub.append(Self.event(2))
        #expect(await iterator.next() != nil, "woken")
        hub.close()
        #expect(await iterator.next() == nil, "finished: a stream ends when the service stops")
        hub.append(Self.event(3))
        #expect(hub.lastID == 2, "nothing is taken after close")
    }
}
