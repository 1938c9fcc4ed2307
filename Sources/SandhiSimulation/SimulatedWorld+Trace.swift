import SandhiEngine

// The trace: every event folded into a hash, the last ones kept for a failure report.
extension SimulatedWorld {
    /// Folds one event into the trace hash, and keeps a readable line of it for the tail.
    mutating func record(_ code: UInt64, _ a: UInt64, _ b: UInt64) {
        // FNV-1a over 64-bit words rather than bytes: as good at telling runs apart, eight
        // times fewer multiplications on a path taken for every event.
        traceHash = (traceHash ^ code) &* 0x0000_0100_0000_01b3
        traceHash = (traceHash ^ nowUs) &* 0x0000_0100_0000_01b3
        traceHash = (traceHash ^ a) &* 0x0000_0100_0000_01b3
        traceHash = (traceHash ^ b) &* 0x0000_0100_0000_01b3
        guard options.traceTail > 0 else { return }
        trace[traceNext] = (code, nowUs, a, b)
        traceNext = (traceNext + 1) % trace.count
    }

    func describe(_ entry: (code: UInt64, atUs: UInt64, a: UInt64, b: UInt64)) -> String {
        let tx = TransactionID(rawValue: entry.a)
        let at = "\(formatMicros(entry.atUs))"
        switch entry.code {
        case 1: return "\(at) client submits \(tx)"
        case 2:
            let kind = ["a message", "PREPARE", "COMMIT", "ROLLBACK", "FORGET"][Int(min(entry.b >> 8, 4))]
            return "\(at) \(names[Int(entry.b & 0xFF)]) receives \(kind) for \(tx)"
        case 3:
            let kind = ["reply", "YES", "NO", "acknowledgement", "heuristic report"][Int(min(entry.b >> 8, 4))]
            return "\(at) coordinator receives \(names[Int(entry.b & 0xFF)])'s \(kind) for \(tx)"
        case 4: return "\(at) \(names[Int(entry.b)]) takes a batch of \(entry.a) message(s)"
        case 5: return "\(at) decision log syncs \(entry.a) record(s)"
        case 6: return "\(at) timer fires for \(tx)"
        case 7: return "\(at) \(names[Int(entry.b)]) restarts with \(entry.a) prepared branch(es)"
        case 8: return "\(at) coordinator crashes"
        case 9: return "\(at) coordinator restarts, epoch \(entry.a)"
        case 10: return "\(at) \(names[Int(entry.b)]) crashes"
        case 12: return "\(at) coordinator learns \(tx)'s COMMIT record is durable"
        case 13: return "\(at) \(names[Int(entry.b & 0xFF)]) decides \(tx) alone: \(entry.b & 0x100 != 0 ? "commit" : "rollback")"
        case 14: return "\(at) the operator settles \(tx) by \(ReconcileAction.allCases[Int(entry.b)].rawValue)"
        default: return "\(at) event \(entry.code)"
        }
    }
}
