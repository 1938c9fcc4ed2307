/// Checks a history for garbage reads (a value its version's writer did not write), the
/// isolation anomalies of Adya's model (G0, G1a, G1b, G1c, G2-item), duplicate versions (lost
/// updates), and the bank invariant (every committed audit sees the same total) — the checks
/// Jepsen's Elle and bank workload make, offline, over a whole run.
///
/// The direct serialization graph has a node per transaction that committed (or that has an
/// unknown outcome but whose writes were read) and an edge per dependency (see `EdgeKind`). A
/// serializable history has an acyclic graph; each strongly connected component is one
/// anomaly, reported with a short example cycle at the strongest class it shows.
public struct HistoryChecker: Sendable {
    public init() {}

    public func check(_ history: History) -> HistoryReport {
        check(header: history.header, transactions: history.transactions)
    }

    public func check(header: HistoryHeader, transactions: [HistoryTransaction]) -> HistoryReport {
        check(header, HistoryIndex(transactions))
    }

    /// The same check, given each op's key and writer as numbers (see `InternedReferences`).
    public func check(header: HistoryHeader, transactions: [HistoryTransaction], interned: InternedReferences) -> HistoryReport {
        check(header, HistoryIndex(transactions, interned: interned))
    }

    private func check(_ header: HistoryHeader, _ index: HistoryIndex) -> HistoryReport {
        let transactions = index.transactions
        let order = VersionOrder(writes: installedWrites(index), keyCount: index.keys.count)
        var anomalies = duplicateVersions(order, index)
        var graph = DependencyGraph(nodeCount: transactions.count)
        anomalies += checkReads(index, order, into: &graph)
        order.forEachSuccession { key, earlier, later in graph.add(.ww, from: earlier, to: later, key: key) }
        graph.seal()
        anomalies += cycles(graph, index)
        let (audits, bank) = bankInvariant(header, transactions)
        anomalies += bank
        return HistoryReport(
            anomalies: anomalies, transactionsChecked: transactions.count,
            committed: transactions.count { $0.outcome == .committed },
            aborted: transactions.count { $0.outcome == .aborted },
            unknown: transactions.count { $0.outcome == .unknown },
            unknownObserved: index.unknownObserved, auditsChecked: audits,
            edgeCounts: Dictionary(uniqueKeysWithValues: EdgeKind.allCases.map { ($0, graph.count(of: $0)) }))
    }

    /// Every write of every transaction in the graph, marked final or intermediate.
    private func installedWrites(_ index: HistoryIndex) -> [VersionOrder.Write] {
        var writes: [VersionOrder.Write] = []
        var laterKeys = Set<Int32>()
        for (transaction, record) in index.transactions.enumerated() where index.included[transaction] {
            laterKeys.removeAll(keepingCapacity: true)
            // Backwards, so the first time a key is seen is the transaction's final write of it.
            for op in record.ops.indices.reversed() {
                guard case .write(_, let value, let version) = record.ops[op] else { continue }
                let key = index.key(transaction, op)
                let isFinal = laterKeys.insert(key).inserted
                writes.append(VersionOrder.Write(key: key, version: version, value: value, transaction: Int32(transaction), isFinal: isFinal))
            }
        }
        return writes
    }

    private func duplicateVersions(_ order: VersionOrder, _ index: HistoryIndex) -> [Anomaly] {
        order.duplicates.map { first, second in
            let version = "\(index.keys[Int(first.key)])@\(first.version)"
            if first.transaction == second.transaction {
                return Anomaly(kind: .duplicateVersion, transactions: [index.id(first.transaction)],
                               description: "\(index.id(first.transaction)) installed \(version) twice")
            }
            return Anomaly(kind: .duplicateVersion, transactions: [index.id(first.transaction), index.id(second.transaction)],
                           description: "\(version) installed by both \(index.id(first.transaction)) and \(index.id(second.transaction)) (a lost update)")
        }
    }

    /// Adds the wr and rw edges of every read in the graph, and reports the reads no committed
    /// transaction may make: of a value other than the one its version's writer wrote (garbage),
    /// of an aborted or absent writer's version (G1a), of a version its writer never installed
    /// (G1a), of a version its writer later overwrote (G1b). Reads by unknown-outcome
    /// transactions give edges but no anomalies: they may not have committed. A read of the
    /// initial state (no writer) is not checked for garbage: the history does not hold the
    /// opening values, only their total.
    private func checkReads(_ index: HistoryIndex, _ order: VersionOrder, into graph: inout DependencyGraph) -> [Anomaly] {
        var anomalies: [Anomaly] = []
        for (reader, record) in index.transactions.enumerated() where index.included[reader] {
            let readerID = Int32(reader)
            let judged = record.outcome == .committed
            for (op, operation) in record.ops.enumerated() {
                guard case .read(let keyName, let value, let version, let writerName) = operation else { continue }
                let key = index.key(reader, op)
                // Made only for an anomaly: most reads have none, and a string per read was a
                // large part of checking a short history.
                func seen() -> String { "\(record.id) read \(keyName)@\(version)" }
                func garbage(_ writer: Int32, wrote written: Int64) {
                    guard judged && written != value else { return }
                    let own = writer == readerID
                    anomalies.append(Anomaly(
                        kind: .garbageRead, transactions: own ? [record.id] : [record.id, index.id(writer)],
                        description: "\(seen()) = \(value) paise, but " + (own ? "it wrote \(written) paise as that version itself"
                                                                               : "its writer \(index.id(writer)) wrote \(written) paise as that version")))
                }
                var readFrom: Int32 = -1
                switch index.writer(reader, op) {
                case .initial:
                    if judged && version != 0 {
                        anomalies.append(Anomaly(kind: .g1a, transactions: [record.id],
                                                 description: "\(seen()) naming no writer, but only version 0 is the initial state"))
                    }
                case .missing:
                    if judged {
                        anomalies.append(Anomaly(kind: .g1a, transactions: [record.id, writerName ?? ""],
                                                 description: "\(seen()) written by \(writerName ?? ""), which is not in the history (writer unknown)"))
                    }
                case .transaction(let writer) where writer == readerID:
                    // Its own write: no dependency on anyone, but it must read what it wrote.
                    if let write = order.write(key: key, version: version, by: writer) { garbage(writer, wrote: write.value) }
                    continue
                case .transaction(let writer) where !index.included[Int(writer)]:
                    if judged {
                        anomalies.append(Anomaly(kind: .g1a, transactions: [record.id, index.id(writer)],
                                                 description: "\(seen()) written by \(index.id(writer)), which aborted"))
                        // Not in the version order, so its write is looked up in its own ops.
                        if let written = writtenValue(of: keyName, version: version, in: index.transactions[Int(writer)]) {
                            garbage(writer, wrote: written)
                        }
                    }
                case .transaction(let writer):
                    readFrom = writer
                    if let write = order.write(key: key, version: version, by: writer) {
                        garbage(writer, wrote: write.value)
                        graph.add(.wr, from: writer, to: readerID, key: key)
                        if judged && !write.isFinal {
                            let final = finalVersion(of: keyName, in: index.transactions[Int(writer)]).map { " with \(keyName)@\($0)" } ?? ""
                            anomalies.append(Anomaly(kind: .g1b, transactions: [record.id, index.id(writer)],
                                                     description: "\(seen()), an intermediate version: \(index.id(writer)) overwrote it\(final) before committing"))
                        }
                    } else if judged {
                        anomalies.append(Anomaly(kind: .g1a, transactions: [record.id, index.id(writer)],
                                                 description: "\(seen()) written by \(index.id(writer)), which never wrote that version"))
                    }
                }
                if let next = order.nextWriter(key: key, after: version, skipping: readFrom) {
                    graph.add(.rw, from: readerID, to: next, key: key)
                }
            }
        }
        return anomalies
    }

    /// The value `transaction` wrote as `version` of `key`, if it wrote that version.
    private func writtenValue(of key: String, version: Int64, in transaction: HistoryTransaction) -> Int64? {
        for case .write(key, let value, version) in transaction.ops { return value }
        return nil
    }

    private func finalVersion(of key: String, in transaction: HistoryTransaction) -> Int64? {
        transaction.ops.last { if case .write(key, _, _) = $0 { true } else { false } }?.version
    }

    /// One anomaly per strongly connected component, at the strongest class that explains it:
    /// a ww-only component is G0; a ww+wr component is G1c if it holds a wr edge (else it is
    /// that G0 again); a component of the full graph is G2-item if it holds an rw edge (else it
    /// is a G0 or G1c already reported). Each example cycle goes through an edge of its class.
    private func cycles(_ graph: DependencyGraph, _ index: HistoryIndex) -> [Anomaly] {
        // A cycle of a subgraph is a cycle of the whole graph: with none there, there is none to
        // look for (the common case, and what a short history costs most).
        let whole = StronglyConnectedComponents(graph, mask: [.ww, .wr, .rw])
        guard !whole.components.isEmpty else { return [] }
        var search = CycleSearch(nodeCount: graph.nodeCount)
        var anomalies: [Anomaly] = []
        let classes: [(AnomalyKind, mask: EdgeMask, through: EdgeMask)] = [
            (.g0, [.ww], [.ww]),
            (.g1c, [.ww, .wr], [.wr]),
            (.g2Item, [.ww, .wr, .rw], [.rw]),
        ]
        for (kind, mask, through) in classes {
            let components = kind == .g2Item ? whole : StronglyConnectedComponents(graph, mask: mask)
            var found: [(earliest: Int32, Anomaly)] = []
            for (componentIndex, component) in components.components.enumerated() {
                guard let cycle = search.exampleCycle(in: component, componentIndex: Int32(componentIndex),
                                                      componentOf: components.componentOf, graph: graph, mask: mask, through: through)
                else { continue }
                found.append((component.min()!, describe(kind, cycle: cycle, componentSize: component.count, graph, index)))
            }
            // Tarjan finds components in reverse topological order; people read a history forwards.
            anomalies += found.sorted { $0.earliest < $1.earliest }.map(\.1)
        }
        return anomalies
    }

    private func describe(_ kind: AnomalyKind, cycle: [Int32], componentSize: Int, _ graph: DependencyGraph, _ index: HistoryIndex) -> Anomaly {
        let members = cycle.map { index.id(graph.edgeSource[Int($0)]) }
        var text = members[0]
        for edge in cycle.map(Int.init) {
            text += " -\(graph.edgeKind[edge].rawValue)(\(index.keys[Int(graph.edgeKey[edge])]))-> \(index.id(graph.edgeTarget[edge]))"
        }
        if componentSize > cycle.count {
            text += " (one cycle of \(componentSize) transactions that depend on each other)"
        }
        return Anomaly(kind: kind, transactions: members, description: text)
    }

    /// Every committed audit read every account, so its reads must sum to the header's total.
    private func bankInvariant(_ header: HistoryHeader, _ transactions: [HistoryTransaction]) -> (audits: Int, [Anomaly]) {
        var audits = 0
        var anomalies: [Anomaly] = []
        for transaction in transactions where transaction.audit && transaction.outcome == .committed {
            audits += 1
            var sumPaise: Int64 = 0
            var overflowed = false
            for case .read(_, let value, _, _) in transaction.ops {
                let (sum, overflow) = sumPaise.addingReportingOverflow(value)
                sumPaise = sum
                overflowed = overflowed || overflow
            }
            if overflowed {
                anomalies.append(Anomaly(kind: .bankInvariant, transactions: [transaction.id],
                                         description: "audit \(transaction.id) read balances whose sum overflows 64 bits; expected \(header.totalPaise) paise"))
            } else if sumPaise != header.totalPaise {
                let (difference, _) = sumPaise.subtractingReportingOverflow(header.totalPaise)
                anomalies.append(Anomaly(kind: .bankInvariant, transactions: [transaction.id],
                                         description: "audit \(transaction.id) read \(sumPaise) paise in total, expected \(header.totalPaise) (difference \(difference > 0 ? "+" : "")\(difference))"))
            }
        }
        return (audits, anomalies)
    }
}
