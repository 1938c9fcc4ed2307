import SandhiEngine
import SandhiTerminalUI

#if canImport(Glibc)
import Glibc
#endif

/// How long the console takes to compose whole frames of a busy engine: `transactions` in
/// flight, each holding the locks of its two accounts, every screen drawn and diffed against
/// the frame before (what `sandhi bench --workload console` prints). The bar: under
/// 5 ms a frame with 10,000 in flight and 1,000 locks held.
public struct ConsoleComposeBenchmark: Sendable, CustomStringConvertible {
    public struct ScreenTiming: Sendable {
        public var screen: ConsoleModel.Screen
        public var p50Us: Double
        public var p99Us: Double
        public var maxUs: Double
    }

    public var transactions: Int
    public var locksHeld: Int
    public var size: Size
    public var timings: [ScreenTiming]

    public var description: String {
        var lines = ["console compose: \(transactions) transactions in flight, \(locksHeld) locks held, \(size.width)x\(size.height), every frame diffed"]
        for timing in timings {
            lines.append("  " + "\(timing.screen.rawValue) \(timing.screen.title)".padding(16)
                         + "p50 \(format(timing.p50Us))  p99 \(format(timing.p99Us))  max \(format(timing.maxUs))")
        }
        return lines.joined(separator: "\n")
    }

    private func format(_ us: Double) -> String { us < 1_000 ? "\(Int(us))µs" : "\(Int(us / 100) / 10).\(Int(us / 100) % 10)ms" }

    /// Builds the engine state, then composes `frames` frames of each screen, moving the
    /// selection a row each frame (so every frame differs from the one before).
    public static func run(transactions: Int = 10_000, size: Size = Size(width: 160, height: 48), frames: Int = 50,
                           context: RenderContext) -> ConsoleComposeBenchmark {
        var coordinator = Coordinator()
        let banks = ["hdfc", "icici", "axis", "sbi"].map { ParticipantID(validated: $0) }
        var nowUs: UInt64 = 1_000_000
        var events: [EngineEvent] = []
        for index in 0..<transactions {
            let tx = TransactionID(epoch: 1, sequence: UInt64(index + 1))
            let from = banks[index % 4], to = banks[(index + 1) % 4]
            let branches = [Branch(participant: from, operations: [.debit(account: AccountID(validated: "a\(index)"), amount: Paise(Int64(100 + index)))]),
                            Branch(participant: to, operations: [.credit(account: AccountID(validated: "b\(index)"), amount: Paise(Int64(100 + index)))])]
            nowUs += 10
            for input in [CoordinatorInput.begin(tx, branches: branches), .requestCommit(tx)] {
                for effect in coordinator.handle(input, nowUs: nowUs) { if case .emit(let event) = effect { events.append(event) } }
            }
        }
        var model = ConsoleModel()
        _ = model.update(.events(events))
        let view = EngineView(coordinator: coordinator, participants: banks.map { EngineView.Participant(id: $0, isDown: false) },
                              workload: "benchmark", takenAtUs: nowUs)
        _ = model.update(.snapshot(view))
        _ = model.update(.tick(nowUs: nowUs))
        var timings: [ScreenTiming] = []
        var previous = Grid(size: size)
        for screen in ConsoleModel.Screen.allCases {
            model.screen = screen
            var samples: [Double] = []
            for frame in 0..<frames {
                model.tables[screen] = TableState(selected: frame)
                let start = clockUs()
                let grid = ConsoleView.render(model, size: size, context: context)
                _ = grid.changes(since: previous)
                samples.append(clockUs() - start)
                previous = grid
            }
            samples.sort()
            timings.append(ScreenTiming(screen: screen, p50Us: samples[samples.count / 2],
                                        p99Us: samples[min(samples.count - 1, samples.count * 99 / 100)], maxUs: samples.last ?? 0))
        }
        return ConsoleComposeBenchmark(transactions: transactions, locksHeld: coordinator.locks.table.count, size: size, timings: timings)
    }

    static func clockUs() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) * 1_000_000 + Double(now.tv_nsec) / 1_000
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
