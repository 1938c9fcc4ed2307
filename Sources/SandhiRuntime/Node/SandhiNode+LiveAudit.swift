import SandhiEngine

// The live audit of a running node (see `LiveAudit` for what it checks and what it costs).
extension SandhiNode {
    /// Checks conservation and atomicity over the banks while the node runs, by asking each
    /// bank's worker (two probes: a scan, then a cut with every bank held at one instant).
    /// Throws `CoordinatorError.halted` if the coordinator is down; a bank that is down or slow
    /// is named in `unavailable` and the checks that need it are skipped, and said so.
    /// - Parameters:
    ///   - scanTimeoutMs: how long the scan of every committed branch may take.
    ///   - holdTimeoutMs: how long the banks may be held for the cut.
    public func liveAudit(scanTimeoutMs: UInt64 = 30_000, holdTimeoutMs: UInt64 = 2_000) async throws -> LiveAudit {
        let driver = self.driver
        if let reason = driver.haltReason { throw CoordinatorError.halted(reason) }
        let configured = configuration.participants.map(\.id)
        let scan = await driver.probeParticipants(hold: false, timeoutMs: scanTimeoutMs) { try LiveAudit.scan($0) }
        let atomicity = LiveAudit.candidates(scan.answers.compactMapValues(\.value), configured: Set(configured))
        var asked: [ParticipantID: [InvariantChecks.HalfApplied]] = [:]
        for candidate in atomicity.halfApplied where asked[candidate.missingAt, default: []].count < LiveAudit.maxCandidatesPerBank {
            asked[candidate.missingAt, default: []].append(candidate)
        }
        let questions = asked.mapValues { $0.map(\.transaction) }
        let cut = await driver.probeParticipants(hold: true, timeoutMs: holdTimeoutMs) { resource in
            try LiveAudit.cut(resource, candidates: questions[resource.id] ?? [])
        }
        return LiveAudit.evaluate(configured: configured, scan: scan, atomicity: atomicity,
                                  asked: Set(asked.values.joined()), cut: cut)
    }
}
