import Glibc

/// The two clocks the runtime reads, behind one seam so that tests and the simulator can set
/// them: monotonic microseconds for how long something has waited (timeouts, lazy syncs,
/// heuristic policies), and wall-clock milliseconds for what people read back (when a branch
/// was prepared or decided alone). Anything that acts on waiting reads the monotonic one
/// only: a wall clock stepped by NTP would make work look older (or younger) than it is.
public struct Clocks: Sendable {
    public var monotonicUs: @Sendable () -> UInt64
    public var wallMs: @Sendable () -> Int64

    public init(monotonicUs: @escaping @Sendable () -> UInt64, wallMs: @escaping @Sendable () -> Int64) {
        self.monotonicUs = monotonicUs
        self.wallMs = wallMs
    }

    public func monotonicMs() -> UInt64 { monotonicUs() / 1_000 }

    /// CLOCK_MONOTONIC and CLOCK_REALTIME.
    public static let system = Clocks(monotonicUs: systemMonotonicUs, wallMs: systemWallMs)

    @Sendable public static func systemMonotonicUs() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }

    @Sendable public static func systemWallMs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000 + Int64(now.tv_nsec) / 1_000_000
    }
}

/// A clock the simulator moves: time passes only when it is told to, so a seed replays.
/// One object shared by every component of a simulated world (they hold its `clocks`).
public final class VirtualClock: @unchecked Sendable {
    /// Only the simulator's single thread reads and moves it.
    public var nowUs: UInt64
    /// The wall clock's reading at virtual time zero.
    public let wallEpochMs: Int64

    public init(nowUs: UInt64 = 0, wallEpochMs: Int64 = 1_700_000_000_000) {
        self.nowUs = nowUs
        self.wallEpochMs = wallEpochMs
    }

    public var clocks: Clocks {
        Clocks(monotonicUs: { [self] in nowUs }, wallMs: { [self] in wallEpochMs + Int64(nowUs / 1_000) })
    }
}
