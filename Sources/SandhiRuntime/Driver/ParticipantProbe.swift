import Glibc
import SandhiEngine
import SandhiParticipants

// Probes: a question a participant's worker answers from its own storage, on its own thread,
// between two of its batches. A running node's banks are open by their workers alone (SQLite
// in exclusive locking mode), so whatever wants to read them meanwhile (the live audit) asks
// the workers. A worker looks for probes only after a drain, where it already checks whether
// it is to crash: one relaxed atomic load per batch is all probes cost while none is asked.
//
// A holding probe also keeps each worker that has answered from taking its next batch until
// every worker has answered: the answers then describe one instant, a consistent cut of all
// the banks (a worker frozen since it answered still has, when the last one answers, the state
// it reported). While they are held, the driver's coordinator is copied too, so the cut also
// says what the coordinator had decided about every branch the banks hold prepared. Messages
// queue meanwhile; the coordinator goes on. A worker's hold ends when the last worker answers,
// at the probe's deadline, or when that worker is told to crash. A held worker still answers
// other probes (two holding probes asked in a different order at two workers must not wait
// for each other).

/// What one participant said to a probe.
public enum ProbeAnswer<Answer: Sendable>: Sendable {
    case answered(Answer)
    /// The question failed on the participant's storage (or the participant had stopped after
    /// a failed fsync, when its storage must not be read).
    case failed(String)
    /// Crashed, stopped, or went down before it answered.
    case down
    /// Did not come round to it before the probe's deadline (a long batch, or a slow fsync).
    case timedOut

    public var value: Answer? {
        if case .answered(let answer) = self { return answer }
        return nil
    }

    public var label: String {
        switch self {
        case .answered: return "answered"
        case .failed(let why): return "failed: \(why)"
        case .down: return "down"
        case .timedOut: return "did not answer in time"
        }
    }
}

/// Every participant's answer to one probe.
public struct ProbeResult<Answer: Sendable>: Sendable {
    public var answers: [ParticipantID: ProbeAnswer<Answer>]
    /// A holding probe that every participant answered: the answers (and `coordinator`) describe
    /// one instant.
    public var consistent: Bool
    /// A holding probe's copy of the coordinator, taken while every participant was held.
    public var coordinator: Coordinator?
    /// How long the first participant to answer was held: what the cut cost the banks.
    public var heldUs: UInt64
}

/// The side of a probe that a worker sees.
protocol ParticipantProbe: AnyObject, Sendable {
    /// On the worker's thread, between batches: answers from `resource`. True if the worker
    /// must now take no batch until `released` (a holding probe).
    func answer(_ participant: ParticipantID, from resource: ParticipantResource, failure: String?) -> Bool
    /// The worker went down, or refused the probe, without answering.
    func withdraw(_ participant: ParticipantID, _ answer: ProbeWithdrawal)
    /// Every participant answered, or the probe expired.
    var released: Bool { get }
    /// Returns once released, or after `timeoutUs`, whichever is first.
    func waitForRelease(timeoutUs: UInt64)
}

enum ProbeWithdrawal {
    case down
    case busy
}

/// One probe of every participant. Shared by the asking task and the workers' threads; its
/// state is under a pthread mutex, with a condition the held workers wait on.
final class ProbeRound<Answer: Sendable>: ParticipantProbe, @unchecked Sendable {
    private let expected: Set<ParticipantID>
    private let hold: Bool
    private let body: @Sendable (ParticipantResource) throws -> Answer
    /// Taken by the last worker to answer a holding probe, while every worker is held.
    private let whileHeld: @Sendable () -> Coordinator?
    private var mutex = pthread_mutex_t()
    private var releasedCondition = pthread_cond_t()
    private var answers: [ParticipantID: ProbeAnswer<Answer>] = [:]
    /// The last answer is in and the coordinator is being copied: the deadline no longer applies.
    private var finishing = false
    private var done = false
    private var firstAnswerUs: UInt64 = 0
    private var result: ProbeResult<Answer>?
    private var continuation: CheckedContinuation<ProbeResult<Answer>, Never>?

    init(expected: Set<ParticipantID>, hold: Bool, whileHeld: @escaping @Sendable () -> Coordinator?,
         body: @escaping @Sendable (ParticipantResource) throws -> Answer) {
        self.expected = expected
        self.hold = hold
        self.whileHeld = whileHeld
        self.body = body
        pthread_mutex_init(&mutex, nil)
        MonotonicClock.initializeCondition(&releasedCondition)
    }

    deinit {
        pthread_mutex_destroy(&mutex)
        pthread_cond_destroy(&releasedCondition)
    }

    func answer(_ participant: ParticipantID, from resource: ParticipantResource, failure: String?) -> Bool {
        let answer: ProbeAnswer<Answer>
        if let failure {
            answer = .failed("stopped after a failed fsync (\(failure))")
        } else {
            do {
                answer = .answered(try body(resource))
            } catch {
                answer = .failed("\(error)")
            }
        }
        post(participant, answer)
        return hold && !released
    }

    var released: Bool {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return done
    }

    func waitForRelease(timeoutUs: UInt64) {
        var deadline = MonotonicClock.deadline(atUs: MonotonicClock.nowUs() + timeoutUs)
        pthread_mutex_lock(&mutex)
        if !done { _ = pthread_cond_timedwait(&releasedCondition, &mutex, &deadline) }
        pthread_mutex_unlock(&mutex)
    }

    func withdraw(_ participant: ParticipantID, _ reason: ProbeWithdrawal) {
        switch reason {
        case .down: post(participant, .down)
        case .busy: post(participant, .failed("too many probes pending"))
        }
    }

    /// Gives up on the participants that have not answered: `timedOut`, and the held ones go.
    func expire() {
        pthread_mutex_lock(&mutex)
        guard !done && !finishing else {
            pthread_mutex_unlock(&mutex)
            return
        }
        let resume = finishLocked(consistent: false, coordinator: nil)
        pthread_mutex_unlock(&mutex)
        resume?.resume(returning: result!)
    }

    /// Waits for every answer (or the deadline: `expire`).
    func outcome() async -> ProbeResult<Answer> {
        await withCheckedContinuation { continuation in
            pthread_mutex_lock(&mutex)
            if let result {
                pthread_mutex_unlock(&mutex)
                continuation.resume(returning: result)
                return
            }
            self.continuation = continuation
            pthread_mutex_unlock(&mutex)
        }
    }

    private func post(_ participant: ParticipantID, _ answer: ProbeAnswer<Answer>) {
        pthread_mutex_lock(&mutex)
        guard !done && !finishing && expected.contains(participant) && answers[participant] == nil else {
            pthread_mutex_unlock(&mutex)
            return
        }
        answers[participant] = answer
        if firstAnswerUs == 0 { firstAnswerUs = MonotonicClock.nowUs() }
        guard answers.count == expected.count else {
            pthread_mutex_unlock(&mutex)
            return
        }
        finishing = true
        pthread_mutex_unlock(&mutex)
        // Outside the round's lock: the copy takes the driver's lock. Every worker is held here
        // (those that answered wait; the others are down), so the copy belongs to the cut.
        let coordinator = hold ? whileHeld() : nil
        pthread_mutex_lock(&mutex)
        let consistent = hold && coordinator != nil && answers.values.allSatisfy { $0.value != nil }
        let resume = finishLocked(consistent: consistent, coordinator: coordinator)
        pthread_mutex_unlock(&mutex)
        resume?.resume(returning: result!)
    }

    /// Under the mutex: records the result, releases the held workers, and returns the asker's
    /// continuation to resume once the mutex is released.
    private func finishLocked(consistent: Bool, coordinator: Coordinator?) -> CheckedContinuation<ProbeResult<Answer>, Never>? {
        done = true
        var all = answers
        for participant in expected where all[participant] == nil { all[participant] = .timedOut }
        result = ProbeResult(answers: all, consistent: consistent, coordinator: coordinator,
                             heldUs: hold && firstAnswerUs > 0 ? MonotonicClock.nowUs() - firstAnswerUs : 0)
        pthread_cond_broadcast(&releasedCondition)
        defer { continuation = nil }
        return continuation
    }
}
