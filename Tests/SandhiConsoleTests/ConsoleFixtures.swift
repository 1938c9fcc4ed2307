import SandhiConsole
import SandhiEngine
import SandhiTerminalUI

/// A small, fixed engine state for the console's tests: a few transfers in every phase, a
/// deadlock, locks and a heuristic case, all on a virtual clock so frames are reproducible.
struct ConsoleFixture {
    static let hdfc = ParticipantID(validated: "hdfc"), icici = ParticipantID(validated: "icici")
    static let axis = ParticipantID(validated: "axis"), sbi = ParticipantID(validated: "sbi")
    static let participants = [hdfc, icici, axis, sbi]

    var coordinator: Coordinator
    var events: [EngineEvent] = []
    var nowUs: UInt64 = 1_000_000

    init(deadlockGraceMs: UInt64 = 60_000) {
        var configuration = Coordinator.Configuration()
        configuration.deadlockGraceMs = deadlockGraceMs
        configuration.wallClockOffsetMs = 1_800_000_000_000
        coordinator = Coordinator(configuration: configuration)
    }

    static func tx(_ n: UInt64) -> TransactionID { TransactionID(epoch: 1, sequence: n) }
    static func account(_ name: String) -> AccountID { AccountID(validated: name) }

    static func transfer(_ amount: Int64, from: ParticipantID, _ a: String, to: ParticipantID, _ b: String) -> [Branch] {
        [Branch(participant: from, operations: [.debit(account: account(a), amount: Paise(amount))]),
         Branch(participant: to, operations: [.credit(account: account(b), amount: Paise(amount))])]
    }

    mutating func feed(_ input: CoordinatorInput, advanceUs: UInt64 = 1_000) {
        nowUs += advanceUs
        for effect in coordinator.handle(input, nowUs: nowUs) {
            if case .emit(let event) = effect { events.append(event) }
        }
    }

    /// T-1.1 committed and finished, T-1.2 preparing (icici silent), T-1.3 committing (sbi
    /// silent), T-1.4 and T-1.5 deadlocked (grace period: the operator may pick), T-1.6 a
    /// heuristic case (sbi rolled back alone under COMMIT).
    static func busy() -> ConsoleFixture {
        var f = ConsoleFixture()
        f.feed(.begin(tx(1), branches: transfer(150_000, from: hdfc, "a1", to: sbi, "b1")))
        f.feed(.requestCommit(tx(1)))
        f.feed(.voted(tx(1), participant: hdfc, vote: .yes))
        f.feed(.voted(tx(1), participant: sbi, vote: .yes))
        f.feed(.decisionDurable(tx(1), position: LogPosition(segment: 1, offset: 64)))
        f.feed(.acknowledged(tx(1), participant: hdfc))
        f.feed(.acknowledged(tx(1), participant: sbi))

        f.feed(.begin(tx(2), branches: transfer(2_500_00, from: icici, "c1", to: axis, "d1")))
        f.feed(.requestCommit(tx(2)))
        f.feed(.voted(tx(2), participant: axis, vote: .yes))

        f.feed(.begin(tx(3), branches: transfer(99_00, from: hdfc, "a2", to: sbi, "b2")))
        f.feed(.requestCommit(tx(3)))
        f.feed(.voted(tx(3), participant: hdfc, vote: .yes))
        f.feed(.voted(tx(3), participant: sbi, vote: .yes))
        f.feed(.decisionDurable(tx(3), position: LogPosition(segment: 1, offset: 128)))
        f.feed(.acknowledged(tx(3), participant: hdfc))

        // A deadlock: T-1.4 holds hdfc/x and wants axis/y; T-1.5 holds axis/y and wants hdfc/x.
        // (T-1.7 holds hdfc/x first, so that both get their first lock before either asks for
        // its second; its abort hands hdfc/x to T-1.4 and closes the cycle.)
        f.feed(.begin(tx(7), branches: [Branch(participant: hdfc, operations: [.debit(account: account("x"), amount: Paise(1))])]))
        f.feed(.begin(tx(4), branches: [Branch(participant: hdfc, operations: [.debit(account: account("x"), amount: Paise(5))]),
                                        Branch(participant: axis, operations: [.credit(account: account("y"), amount: Paise(5))])]))
        f.feed(.begin(tx(5), branches: [Branch(participant: axis, operations: [.debit(account: account("y"), amount: Paise(7))]),
                                        Branch(participant: hdfc, operations: [.credit(account: account("x"), amount: Paise(7))])]))

        f.feed(.requestCommit(tx(4)))
        f.feed(.requestCommit(tx(5)))
        f.feed(.requestAbort(tx(7), reason: "client gave up"))

        // A heuristic case.
        f.feed(.begin(tx(6), branches: transfer(40_000, from: hdfc, "a3", to: sbi, "b3")))
        f.feed(.requestCommit(tx(6)))
        f.feed(.voted(tx(6), participant: hdfc, vote: .yes))
        f.feed(.voted(tx(6), participant: sbi, vote: .yes))
        f.feed(.decisionDurable(tx(6), position: LogPosition(segment: 1, offset: 192)))
        f.feed(.acknowledged(tx(6), participant: hdfc))
        f.feed(.heuristicReported(tx(6), participant: sbi, committed: false, operations: transfer(40_000, from: hdfc, "a3", to: sbi, "b3")[1].operations,
                                  writers: [hdfc, sbi]))
        return f
    }

    var view: EngineView {
        EngineView(coordinator: coordinator, participants: Self.participants.map { EngineView.Participant(id: $0, isDown: false, fsyncs: 12) },
                   activeFaults: [], mode: "2pl", workload: "random 20/s", takenAtUs: nowUs)
    }

    /// A model that has seen everything above.
    func model(readOnly: Bool = false) -> ConsoleModel {
        var model = ConsoleModel(readOnly: readOnly)
        _ = model.update(.events(events))
        _ = model.update(.snapshot(view))
        _ = model.update(.tick(nowUs: nowUs + 500))
        return model
    }

    static let context = RenderContext(theme: Theme.builtIn, glyphs: .unicode)
}
