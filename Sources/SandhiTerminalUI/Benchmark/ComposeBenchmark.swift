/// How long composing one console frame takes: a 160x48 transactions screen over 10,000
/// in-flight transfers (`composeTransactionsScreen`: header, tab bar, a table whose visible
/// rows are formatted from the model each frame, a detail panel, the waits line and the key
/// bar), then the diff against the previous frame, with the selection moving one row each
/// frame so the table scrolls and the diff has work.
/// `sandhi bench --console` prints it; the budget is 5 ms a frame.
public struct ComposeBenchmark: Sendable, CustomStringConvertible {
    public var frames: Int
    public var rows: Int
    public var size: Size
    public var meanMicroseconds: Double
    public var p50Microseconds: Double
    public var p99Microseconds: Double
    public var maxMicroseconds: Double
    /// Cells the diff sent to the backend, on average per frame.
    public var changedCellsPerFrame: Double

    public var description: String {
        func f(_ v: Double) -> String { String(Int(v.rounded())) }
        return "compose \(size) frame, \(rows) rows, \(frames) frames: mean \(f(meanMicroseconds)) µs, "
            + "p50 \(f(p50Microseconds)) µs, p99 \(f(p99Microseconds)) µs, max \(f(maxMicroseconds)) µs, "
            + "\(f(changedCellsPerFrame)) changed cells/frame"
    }
}

/// Runs the benchmark (release builds only give meaningful figures).
public func benchmarkCompose(rows: Int = 10_000, size: Size = Size(width: 160, height: 48), frames: Int = 500,
                             theme: Theme = .builtIn, glyphs: GlyphSet = .unicode) -> ComposeBenchmark {
    let sample = SampleTransactions(count: rows)
    var previous = Grid(size: size)
    var grid = Grid(size: size)
    var state = TableState(selected: 0)
    var samples: [Double] = []
    samples.reserveCapacity(frames)
    var changed = 0
    let clock = ContinuousClock()
    for _ in 0..<frames {
        let started = clock.now
        grid.clear()
        composeTransactionsScreen(into: &grid, sample: sample, state: &state, theme: theme, glyphs: glyphs)
        let changes = grid.changes(since: previous)
        let elapsed = clock.now - started
        changed += changes.cellCount
        swap(&grid, &previous)
        state.move(by: 1, count: rows)
        let (seconds, attoseconds) = elapsed.components
        samples.append(Double(seconds) * 1e6 + Double(attoseconds) / 1e12)
    }
    samples.sort()
    func percentile(_ p: Double) -> Double { samples[min(samples.count - 1, Int(Double(samples.count) * p))] }
    return ComposeBenchmark(frames: frames, rows: rows, size: size,
                            meanMicroseconds: samples.reduce(0, +) / Double(max(1, samples.count)),
                            p50Microseconds: percentile(0.5), p99Microseconds: percentile(0.99),
                            maxMicroseconds: samples.last ?? 0,
                            changedCellsPerFrame: Double(changed) / Double(max(1, frames)))
}
