/// Polls `condition` every millisecond until it holds or `timeoutMs` passes, and says whether it
/// held: tests wait for behaviour with a deadline, never for a fixed time.
public func eventually(timeoutMs: UInt64 = 20_000, _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(timeoutMs))
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(1))
    }
    return try condition()
}
