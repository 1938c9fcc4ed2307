import Glibc
import SandhiIO

/// Microseconds on the monotonic clock: the engine's notion of "now" in the real-time driver.
/// Never goes backwards, unaffected by wall-clock changes. (`Clocks.system` reads the same
/// clock; components the simulator also runs take a `Clocks` instead.)
public enum MonotonicClock {
    public static func nowUs() -> UInt64 { Clocks.systemMonotonicUs() }
}

extension MonotonicClock {
    /// Nanoseconds, for timing operations shorter than a microsecond.
    public static func nowNs() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }
}

extension MonotonicClock {
    /// Sets up `condition` so that timed waits on it count on this clock, unaffected by
    /// wall-clock jumps (pthread's default is the wall clock).
    static func initializeCondition(_ condition: inout pthread_cond_t) {
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(&condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    /// `atUs` on this clock, as a timed wait's deadline.
    static func deadline(atUs: UInt64) -> timespec {
        timespec(tv_sec: Int(atUs / 1_000_000), tv_nsec: Int(atUs % 1_000_000) * 1_000)
    }
}
