import Glibc

/// The two clocks a bank reads, behind one seam so that tests (and the simulator) can set
/// them: wall-clock milliseconds for what people read back (when a branch was prepared or
/// decided alone), and monotonic milliseconds for how long something has waited. A policy
/// that acts on waiting reads the monotonic one only: a wall clock stepped by NTP, or
/// counted in whole seconds, would make branches look older than they are.
public struct BankClock: Sendable {
    public var wallMs: @Sendable () -> Int64
    public var monotonicMs: @Sendable () -> UInt64

    public init(wallMs: @escaping @Sendable () -> Int64, monotonicMs: @escaping @Sendable () -> UInt64) {
        self.wallMs = wallMs
        self.monotonicMs = monotonicMs
    }

    /// CLOCK_REALTIME and CLOCK_MONOTONIC, in milliseconds.
    public static let system = BankClock(
        wallMs: {
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            return Int64(now.tv_sec) * 1_000 + Int64(now.tv_nsec) / 1_000_000
        },
        monotonicMs: {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            return UInt64(now.tv_sec) * 1_000 + UInt64(now.tv_nsec) / 1_000_000
        })
}
