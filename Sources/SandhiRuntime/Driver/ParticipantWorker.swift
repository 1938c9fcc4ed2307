import Logging
import SandhiEngine
import SandhiParticipants

/// One thread per participant: it drains every message queued for its resource, hands the
/// whole batch to `process` (one storage commit, one fsync), and delivers the replies. While it
/// is busy in fsync, new messages pile up and become the next batch: group commit without a
/// timer.
final class ParticipantWorker: @unchecked Sendable {
    let id: ParticipantID
    private let resource: ParticipantResource
    private let queue: BlockingQueue<ParticipantMessage>
    private let deliver: @Sendable ([(ParticipantID, ParticipantReply)]) -> Void
    private let logger: Logger
    private let stoppedSignal = BlockingQueue<Bool>(capacity: 1)
    /// Batches and messages processed, for the benchmark's report.
    private(set) var batches = 0
    private(set) var messages = 0

    init(resource: ParticipantResource, capacity: Int, logger: Logger,
         deliver: @escaping @Sendable ([(ParticipantID, ParticipantReply)]) -> Void) {
        self.id = resource.id
        self.resource = resource
        self.queue = BlockingQueue(capacity: capacity)
        self.deliver = deliver
        self.logger = logger
        startThread(name: "sandhi-\(resource.id.name)") { [self] in run() }
    }

    func send(_ message: ParticipantMessage) {
        queue.push(message)
    }

    /// Finishes what is queued, then stops the thread.
    func stop() {
        queue.close()
        var ignored: [Bool] = []
        stoppedSignal.drain(into: &ignored)
    }

    private func run() {
        var batch: [ParticipantMessage] = []
        var outgoing: [(ParticipantID, ParticipantReply)] = []
        while true {
            queue.drain(into: &batch)
            if batch.isEmpty { break } // closed and drained
            do {
                let replies = try resource.process(batch)
                batches += 1
                messages += batch.count
                outgoing.removeAll(keepingCapacity: true)
                for reply in replies { outgoing.append((id, reply)) }
                deliver(outgoing)
            } catch {
                // Nothing of the batch is durable and the resource reloaded itself from storage.
                // No reply goes out: the coordinator's deadline or resend timer covers it.
                logger.error("participant batch failed", metadata: ["participant": "\(id)", "messages": "\(batch.count)", "error": "\(error)"])
            }
        }
        resource.close()
        stoppedSignal.push(true)
    }
}
