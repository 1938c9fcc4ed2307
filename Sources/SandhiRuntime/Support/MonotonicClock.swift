import Glibc

/// Microseconds on the monotonic clock: the engine's notion of "now" in the real-time driver.
/// Never goes backwards, unaffected by wall-clock changes.
public enum MonotonicClock {
    public static func nowUs() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000 + UInt64(spec.tv_nsec) / 1_000
    }
}

extension MonotonicClock {
    /// Nanoseconds, for timing operations shorter than a microsecond.
    public static func nowNs() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }
}
