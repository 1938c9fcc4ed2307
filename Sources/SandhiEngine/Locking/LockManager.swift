import DequeModule

// Shared and exclusive locks on resources (one account of one participant), for strict
// two-phase locking across every participant, as a pure state machine.
//
// Per resource: the holders, and a FIFO queue of waiters.
//
//   request           resource state                         result
//   ---------------   ------------------------------------   ---------------------------------
//   S or X, held      the holder's mode covers it            granted (nothing changes)
//   X, holds S        sole holder                            upgraded in place
//   X, holds S        other holders                          waits at the queue's front,
//                                                            behind earlier upgrades only
//   S                 no waiters, holders all S              granted
//   X                 no holders, no waiters                 granted
//   anything else                                            waits at the queue's tail
//
//   releaseAll(tx)    drops tx's locks and its wait; then, per touched resource, grants the
//                     queue's front while it is compatible with the holders (a run of S at
//                     once, an X alone), strictly in order.
//
// Fairness: a new S request never passes a queued X, even when the holders are all S, so a
// stream of readers cannot starve a writer. Upgrades go first because the upgrader already
// holds the resource: queued behind a waiter that waits for it, it would deadlock for sure.
//
// Every waiter's edges in the wait-for graph are derived from the queue: a waiter waits for
// the nearest waiter ahead of it whose request conflicts with its own, or, with none ahead,
// for the holders that conflict. That is one or two edges per waiter rather than one per
// transaction ahead, and it loses no cycle: each waiter ahead that conflicts is reachable
// through the nearest one (X waits for its predecessor; an S waiter waits for the last X
// ahead, and the S waiters ahead of that wait for the same things it does).
//
// Timeouts and victims live in the coordinator: it decides when a waiter gives up, and calls
// `releaseAll`.

public struct LockManager: Sendable {
    public struct Configuration: Sendable {
        /// Maintain the wait-for graph and check for cycles as waits begin. Off, deadlocks are
        /// only ever broken by lock timeouts (the baseline the benchmark compares against).
        public var detectDeadlocks = true
        /// Waiters one resource may queue; a request beyond is refused (a bound on every queue).
        public var maxWaitersPerResource = 65_536

        public init() {}
    }

    public struct Holder: Hashable, Sendable {
        public var transaction: TransactionID
        public var mode: LockMode
    }

    public struct Waiter: Hashable, Sendable {
        public var transaction: TransactionID
        public var mode: LockMode
        public var sinceUs: UInt64
        /// Holds the resource shared already and asks for exclusive.
        public var isUpgrade: Bool
    }

    public struct ResourceLocks: Sendable {
        public fileprivate(set) var holders: HolderList = []
        public fileprivate(set) var waiters: Deque<Waiter> = []

        var isEmpty: Bool { holders.isEmpty && waiters.isEmpty }
    }

    /// A waiter that got its lock.
    public struct Grant: Hashable, Sendable {
        public var transaction: TransactionID
        public var resource: ResourceID
        public var mode: LockMode
        public var waitedUs: UInt64
    }

    public enum AcquireResult: Hashable, Sendable {
        case granted
        /// Queued. `blockers` are the transactions it waits for (empty when detection is off).
        case waiting(blockers: [TransactionID])
        /// The resource's queue is full.
        case refused(reason: String)
    }

    /// What a change did to other transactions: waiters granted, and cycles closed by the
    /// wait-for edges it added.
    public struct Changes: Sendable {
        public var grants: [Grant] = []
        public var cycles: [WaitForGraph.Cycle] = []

        public init() {}
    }

    public let configuration: Configuration
    public private(set) var table: [ResourceID: ResourceLocks] = [:]
    public private(set) var graph = WaitForGraph()
    /// What each transaction holds (in the order it got it) and the one resource it waits
    /// for, if any: one entry per transaction, so releasing is one lookup.
    private struct Owner {
        var held: [ResourceID] = []
        var waitingOn: ResourceID?
    }
    private var owners: [TransactionID: Owner] = [:]
    private var waitingTotal = 0
    /// Each waiter's current out-edges in the graph.
    private var waitEdges: [TransactionID: [TransactionID]] = [:]

    public init(configuration: Configuration = Configuration()) {
        precondition(configuration.maxWaitersPerResource > 0)
        self.configuration = configuration
    }

    // MARK: - Queries

    public var waitingCount: Int { waitingTotal }

    public func resource(waitedOnBy tx: TransactionID) -> ResourceID? { owners[tx]?.waitingOn }

    public func heldCount(by tx: TransactionID) -> Int { owners[tx]?.held.count ?? 0 }

    /// The transactions `tx` waits for (its wait-for edges).
    public func blockers(of tx: TransactionID) -> [TransactionID] { waitEdges[tx] ?? [] }

    public func mode(of tx: TransactionID, on resource: ResourceID) -> LockMode? {
        table[resource]?.holders.first { $0.transaction == tx }?.mode
    }

    // MARK: - Changes

    public mutating func acquire(_ tx: TransactionID, _ request: LockRequest, nowUs: UInt64,
                                 into changes: inout Changes) -> AcquireResult {
        precondition(owners[tx]?.waitingOn == nil, "\(tx) asked for \(request.resource) while still waiting for \(owners[tx]!.waitingOn!)")
        let resource = request.resource
        // One lookup, and the resource's state changed in place: a copy would make appending to
        // a long queue copy the queue.
        let step = Self.place(tx, request.mode, nowUs: nowUs, maxWaiters: configuration.maxWaitersPerResource,
                              in: &table[resource, default: ResourceLocks()])
        switch step {
        case .alreadyHeld:
            return .granted
        case .granted:
            owners[tx, default: Owner()].held.append(resource)
            return .granted
        case .refused:
            if table[resource]?.isEmpty == true { table[resource] = nil }
            return refusal(resource)
        case .queued(let upgrade):
            owners[tx, default: Owner()].waitingOn = resource
            waitingTotal += 1
            if upgrade {
                rederiveEdges(of: resource, into: &changes) // went in ahead of others
            } else if configuration.detectDeadlocks, let locks = table[resource] {
                // Appended at the tail: nobody else's edges change; derive the newcomer's alone.
                setEdges(of: tx, to: desiredEdges(at: locks.waiters.count - 1, in: locks), into: &changes)
            }
        }
        assert(owners[tx]?.waitingOn == resource)
        return .waiting(blockers: waitEdges[tx] ?? [])
    }

    /// Drops every lock `tx` holds and its wait, if any (commit, abort, timeout, victim), and
    /// grants what that frees.
    public mutating func releaseAll(_ tx: TransactionID, nowUs: UInt64, into changes: inout Changes) {
        guard let owner = owners.removeValue(forKey: tx) else {
            assert(!graph.contains(tx), "\(tx) holds nothing but is in the wait-for graph")
            return // held nothing: the common second call, after the decision already released
        }
        var touched: [ResourceID] = []
        if let resource = owner.waitingOn {
            table[resource]?.waiters.removeAll { $0.transaction == tx }
            waitingTotal -= 1
            touched.append(resource)
        }
        for resource in owner.held {
            guard let entry = table.index(forKey: resource) else { continue }
            table.values[entry].holders.removeAll { $0.transaction == tx }
            if table.values[entry].waiters.isEmpty {
                // Nobody to grant, no edges to re-derive: the common case by far.
                if table.values[entry].holders.isEmpty { table.remove(at: entry) }
                continue
            }
            if !touched.contains(resource) { touched.append(resource) }
        }
        if configuration.detectDeadlocks && graph.nodeCount > 0 && graph.contains(tx) {
            waitEdges[tx] = nil
            graph.removeNode(tx)
        }
        for resource in touched {
            grantWaiters(on: resource, nowUs: nowUs, into: &changes)
            if configuration.detectDeadlocks { rederiveEdges(of: resource, into: &changes) }
            if table[resource]?.isEmpty == true { table[resource] = nil }
        }
        if configuration.detectDeadlocks { changes.cycles += graph.retryDeferred() }
        assert(owners[tx] == nil && !graph.contains(tx))
    }

    private enum Step {
        /// Held already in a mode that covers the request, or upgraded in place.
        case alreadyHeld
        /// A new holding.
        case granted
        case queued(upgrade: Bool)
        case refused
    }

    /// The request against one resource's holders and queue (the table at the top of this file).
    private static func place(_ tx: TransactionID, _ mode: LockMode, nowUs: UInt64, maxWaiters: Int,
                              in locks: inout ResourceLocks) -> Step {
        var waiter = Waiter(transaction: tx, mode: mode, sinceUs: nowUs, isUpgrade: false)
        if let index = locks.holders.firstIndex(where: { $0.transaction == tx }) {
            if locks.holders[index].mode.covers(mode) { return .alreadyHeld }
            if locks.holders.count == 1 {
                locks.holders[index].mode = .exclusive
                return .alreadyHeld
            }
            guard locks.waiters.count < maxWaiters else { return .refused }
            waiter.isUpgrade = true
            locks.waiters.insert(waiter, at: locks.waiters.prefix { $0.isUpgrade }.count)
            return .queued(upgrade: true)
        }
        if locks.waiters.isEmpty && locks.holders.allSatisfy({ $0.mode.isCompatible(with: mode) }) {
            locks.holders.append(Holder(transaction: tx, mode: mode))
            return .granted
        }
        guard locks.waiters.count < maxWaiters else { return .refused }
        locks.waiters.append(waiter)
        return .queued(upgrade: false)
    }

    private func refusal(_ resource: ResourceID) -> AcquireResult {
        .refused(reason: "\(configuration.maxWaitersPerResource) transactions already wait for \(resource)")
    }

    /// Grants the queue's front while it fits with the holders, in order.
    private mutating func grantWaiters(on resource: ResourceID, nowUs: UInt64, into changes: inout Changes) {
        guard let entry = table.index(forKey: resource) else { return }
        // One waiter at a time: changed in place (a copy would copy the queue on its first
        // change), then the bookkeeping that needs the rest of `self`. That bookkeeping never
        // touches the table, so `entry` stays valid, and granting one by one grants exactly the
        // waiters a single pass would (the pass looks only at this resource's holders and queue).
        while let (front, newHolding) = Self.popGrantable(from: &table.values[entry]) {
            if let owner = owners.index(forKey: front.transaction) {
                if newHolding { owners.values[owner].held.append(resource) }
                owners.values[owner].waitingOn = nil
            } else if newHolding {
                owners[front.transaction] = Owner(held: [resource])
            }
            waitingTotal -= 1
            if configuration.detectDeadlocks { setEdges(of: front.transaction, to: [], into: &changes) }
            changes.grants.append(Grant(transaction: front.transaction, resource: resource, mode: front.mode,
                                        waitedUs: nowUs &- front.sinceUs))
        }
    }

    /// The queue's front, granted if it fits with the holders, with whether it is a new holding
    /// (not an upgrade in place); nil when the front must go on waiting (or nobody waits).
    private static func popGrantable(from locks: inout ResourceLocks) -> (Waiter, newHolding: Bool)? {
        guard let front = locks.waiters.first,
              locks.holders.allSatisfy({ $0.transaction == front.transaction || $0.mode.isCompatible(with: front.mode) }) else { return nil }
        locks.waiters.removeFirst()
        if front.isUpgrade, let index = locks.holders.firstIndex(where: { $0.transaction == front.transaction }) {
            locks.holders[index].mode = .exclusive
            return (front, false)
        }
        locks.holders.append(Holder(transaction: front.transaction, mode: front.mode))
        return (front, true)
    }

    // MARK: - Wait-for edges

    /// Whom the waiter at `index` waits for (see the top of this file).
    private func desiredEdges(at index: Int, in locks: ResourceLocks) -> [TransactionID] {
        let waiter = locks.waiters[index]
        var ahead = index - 1
        while ahead >= 0 {
            let other = locks.waiters[ahead]
            if !other.mode.isCompatible(with: waiter.mode) { return [other.transaction] }
            ahead -= 1
        }
        return Self.conflictingHolders(of: waiter, in: locks)
    }

    /// The holders a waiter with no conflicting waiter ahead of it waits for.
    private static func conflictingHolders(of waiter: Waiter, in locks: ResourceLocks) -> [TransactionID] {
        locks.holders.compactMap { holder in
            holder.transaction != waiter.transaction && !holder.mode.isCompatible(with: waiter.mode) ? holder.transaction : nil
        }
    }

    /// Re-derives every waiter's edges on one resource after its holders or queue changed.
    private mutating func rederiveEdges(of resource: ResourceID, into changes: inout Changes) {
        guard configuration.detectDeadlocks, let locks = table[resource] else { return }
        // One pass: an X waiter's nearest conflict is its predecessor, an S waiter's the last X.
        var previous: TransactionID?
        var lastExclusive: TransactionID?
        for waiter in locks.waiters {
            let nearest = waiter.mode == .exclusive ? previous : lastExclusive
            let desired = nearest.map { [$0] } ?? Self.conflictingHolders(of: waiter, in: locks)
            if waitEdges[waiter.transaction] ?? [] != desired {
                setEdges(of: waiter.transaction, to: desired, into: &changes)
            }
            previous = waiter.transaction
            if waiter.mode == .exclusive { lastExclusive = waiter.transaction }
        }
    }

    private mutating func setEdges(of tx: TransactionID, to desired: [TransactionID], into changes: inout Changes) {
        let current = waitEdges[tx] ?? []
        for target in current where !desired.contains(target) { graph.removeEdge(from: tx, to: target) }
        for target in desired where !current.contains(target) {
            if let cycle = graph.addEdge(from: tx, to: target) { changes.cycles.append(cycle) }
        }
        waitEdges[tx] = desired.isEmpty ? nil : desired
    }

    // MARK: - Invariants

    /// Holders compatible with each other, no waiter that could be granted, bookkeeping in
    /// step with the table, every waiter's edges as derived. For tests; costs the whole table.
    public func isConsistent() -> Bool {
        var holdings = 0
        for (resource, locks) in table {
            if locks.isEmpty { return false }
            for (i, a) in locks.holders.enumerated() {
                for b in locks.holders[(i + 1)...] where a.transaction == b.transaction || !a.mode.isCompatible(with: b.mode) { return false }
                guard owners[a.transaction]?.held.contains(resource) == true else { return false }
            }
            holdings += locks.holders.count
            if let front = locks.waiters.first,
               locks.holders.allSatisfy({ $0.transaction == front.transaction || $0.mode.isCompatible(with: front.mode) }) {
                return false // grantable but waiting
            }
            for (index, waiter) in locks.waiters.enumerated() {
                guard owners[waiter.transaction]?.waitingOn == resource else { return false }
                if configuration.detectDeadlocks && (waitEdges[waiter.transaction] ?? []) != desiredEdges(at: index, in: locks) { return false }
            }
        }
        let waits = table.values.reduce(0) { $0 + $1.waiters.count }
        return holdings == owners.values.reduce(0) { $0 + $1.held.count } && waits == waitingTotal
            && waits == owners.values.filter { $0.waitingOn != nil }.count
            && (!configuration.detectDeadlocks || graph.orderIsConsistent())
    }
}
