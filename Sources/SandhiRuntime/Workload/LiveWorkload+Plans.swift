import DequeModule
import SandhiEngine

// What each kind of live workload asks the coordinator to do (LiveWorkload.swift runs it).
// Plans are worked out once, from the accounts read before the node started and the node's
// configuration; drawing one transfer from a plan is a few random numbers.
extension LiveWorkload {
    /// The Mumbai consolidation of DESIGN.md, scaled down: a client's money in small amounts
    /// from every source bank into the target bank, TDS to the tax ledger, and a report row for
    /// every consolidation at or above the report threshold (one in `largeEvery` is that
    /// large). So that the sources never run dry, every `disburseEvery` committed
    /// consolidations are paid back out of the target to the accounts they came from, in one
    /// disbursement: only the TDS leaves the sources for good.
    struct MumbaiPlan: Sendable {
        /// Source banks, in configuration order, each with the accounts a leg may debit.
        var sources: [(bank: ParticipantID, accounts: [AccountID])]
        var target: (bank: ParticipantID, accounts: [AccountID])
        var tds: ResourceID?
        var tdsBasisPoints: Int64
        var reportLedger: ParticipantID?
        var reportThreshold: Paise
    }

    /// A committed consolidation, remembered until a disbursement pays its net back.
    struct Consolidation: Sendable {
        var legs: [(account: ResourceID, amount: Paise)]
        var target: ResourceID
        var gross: Paise
        var net: Paise
    }

    /// Every kind's plan, or why it cannot run on these accounts.
    struct Plans: Sendable {
        /// Accounts of the banks that are not compliance ledgers, by bank.
        var banks: [(bank: ParticipantID, accounts: [AccountID])] = []
        var hot: [ResourceID] = []
        var mumbai: MumbaiPlan?
        var unavailable: [Kind: String] = [:]
    }

    /// One transfer to run, and what to remember when it commits.
    struct Job: Sendable {
        var branches: [Branch]
        var consolidation: Consolidation?
    }

    /// The account every Mumbai leg uses where a bank has it (the demo's data directory);
    /// elsewhere a leg takes a random account of its bank.
    static let clientAccount = AccountID(validated: "client")
    /// The tax ledger's account (see `SandhiConfiguration.taxLedger`).
    static let tdsAccount = AccountID(validated: "tds")
    static let mumbaiSources = ["hdfc", "icici", "axis"].map { ParticipantID(validated: $0) }
    static let mumbaiTarget = ParticipantID(validated: "sbi")

    static func plans(accounts: AccountMap, configuration: SandhiConfiguration, options: Options) -> Plans {
        var plans = Plans()
        let ledgers = Set([configuration.taxLedger, configuration.reportLedger].compactMap { $0 })
        for participant in configuration.participants.map(\.id) where !ledgers.contains(participant) {
            if let list = accounts[participant], !list.isEmpty { plans.banks.append((participant, list)) }
        }
        if plans.banks.reduce(0, { $0 + $1.accounts.count }) < 2 {
            plans.unavailable[.random] = "random transfers need two accounts outside the compliance ledgers"
        }
        let byBank = Dictionary(plans.banks.map { ($0.bank, $0.accounts) }, uniquingKeysWith: { first, _ in first })
        plans.hot = TransferBench.hotAccounts(byBank, count: max(2, options.hotAccounts))
        if plans.hot.count < 2 {
            plans.unavailable[.contention] = "contention needs two accounts outside the compliance ledgers"
        }
        switch mumbaiPlan(banks: plans.banks, accounts: accounts, configuration: configuration) {
        case .success(let plan): plans.mumbai = plan
        case .failure(let why): plans.unavailable[.mumbai] = why.description
        }
        return plans
    }

    /// The demo's banks (hdfc, icici, axis into sbi) where they exist; otherwise every bank but
    /// the last into the last.
    private static func mumbaiPlan(banks: [(bank: ParticipantID, accounts: [AccountID])], accounts: AccountMap,
                                   configuration: SandhiConfiguration) -> Result<MumbaiPlan, Unavailable> {
        func legAccounts(_ list: [AccountID]) -> [AccountID] { list.contains(clientAccount) ? [clientAccount] : list }
        let present = Dictionary(banks.map { ($0.bank, $0.accounts) }, uniquingKeysWith: { first, _ in first })
        var target: (bank: ParticipantID, accounts: [AccountID])
        var sources: [(bank: ParticipantID, accounts: [AccountID])]
        if let list = present[mumbaiTarget], mumbaiSources.contains(where: { present[$0] != nil }) {
            target = (mumbaiTarget, list)
            sources = mumbaiSources.compactMap { bank in present[bank].map { (bank, $0) } }
        } else {
            guard let last = banks.last, banks.count >= 2 else {
                return .failure(Unavailable("the consolidation needs two banks outside the compliance ledgers (the mumbai demo's data directory has them)"))
            }
            target = last
            sources = Array(banks.dropLast())
        }
        target.accounts = legAccounts(target.accounts)
        sources = sources.map { ($0.bank, legAccounts($0.accounts)) }
        var tds: ResourceID?
        if let ledger = configuration.taxLedger {
            guard accounts[ledger]?.contains(tdsAccount) == true else {
                return .failure(Unavailable("the tax ledger \(ledger) has no `\(tdsAccount)` account for TDS"))
            }
            tds = ResourceID(participant: ledger, account: tdsAccount)
        }
        return .success(MumbaiPlan(sources: sources, target: target, tds: tds, tdsBasisPoints: configuration.tdsBasisPoints,
                                   reportLedger: configuration.reportLedger, reportThreshold: configuration.reportThreshold))
    }

    /// The next transfer of `kind`. For the consolidation, a disbursement instead when enough
    /// committed consolidations wait to be paid back (`pending` gives them up).
    static func job(_ kind: Kind, plans: Plans, options: Options, pending: inout Deque<Consolidation>,
                    sequence: Int, random: inout SplitMix64) -> Job {
        func draw(_ count: Int) -> Int { Int(random.next() % UInt64(count)) }
        func amount() -> Paise { Paise(1 + Int64(random.next() % UInt64(max(1, options.maxAmount.value)))) }
        switch kind {
        case .random:
            var from = plans.banks[draw(plans.banks.count)], to = plans.banks[draw(plans.banks.count)]
            if from.accounts.count == 1 && to.bank == from.bank {
                // Two accounts exist (the plan says so), just not both here.
                let other = plans.banks.first { $0.bank != from.bank }!
                if random.next() % 2 == 0 { to = other } else { from = other }
            }
            let debit = ResourceID(participant: from.bank, account: from.accounts[draw(from.accounts.count)])
            var credit = ResourceID(participant: to.bank, account: to.accounts[draw(to.accounts.count)])
            if credit == debit {
                let index = to.accounts.firstIndex(of: credit.account)!
                credit = ResourceID(participant: to.bank, account: to.accounts[(index + 1) % to.accounts.count])
            }
            return Job(branches: TransferBench.transfer(amount(), from: debit, to: credit))
        case .contention:
            let first = draw(plans.hot.count)
            let second = (first + 1 + draw(plans.hot.count - 1)) % plans.hot.count
            return Job(branches: TransferBench.transfer(amount(), from: plans.hot[first], to: plans.hot[second]))
        case .mumbai:
            let plan = plans.mumbai!
            if pending.count >= options.disburseEvery {
                var batch: [Consolidation] = []
                while batch.count < options.disburseEvery, let next = pending.popFirst() { batch.append(next) }
                return Job(branches: disbursement(batch, plan: plan))
            }
            let large = options.largeEvery > 0 && sequence % options.largeEvery == options.largeEvery - 1
            var legs: [(account: ResourceID, amount: Paise)] = []
            for (index, source) in plan.sources.enumerated() {
                let account = ResourceID(participant: source.bank, account: source.accounts[draw(source.accounts.count)])
                if large {
                    // The threshold split evenly, the remainder on the first leg: a report row.
                    let count = Int64(plan.sources.count), threshold = plan.reportThreshold.value
                    legs.append((account, Paise(threshold / count + (index == 0 ? threshold % count : 0))))
                } else {
                    legs.append((account, amount()))
                }
            }
            return consolidation(legs, plan: plan, random: &random)
        }
    }

    private static func consolidation(_ legs: [(account: ResourceID, amount: Paise)], plan: MumbaiPlan,
                                      random: inout SplitMix64) -> Job {
        let gross = legs.reduce(Paise.zero) { $0 + $1.amount }
        let tds = plan.tds == nil ? .zero : gross.basisPoints(plan.tdsBasisPoints)
        let net = gross - tds
        let target = ResourceID(participant: plan.target.bank,
                                account: plan.target.accounts[Int(random.next() % UInt64(plan.target.accounts.count))])
        var branches = legs.map { Branch(participant: $0.account.participant, operations: [.debit(account: $0.account.account, amount: $0.amount)]) }
        branches.append(Branch(participant: target.participant, operations: [.credit(account: target.account, amount: net)]))
        if let account = plan.tds, tds > .zero {
            branches.append(Branch(participant: account.participant, operations: [.credit(account: account.account, amount: tds)]))
        }
        if let ledger = plan.reportLedger, gross >= plan.reportThreshold {
            branches.append(Branch(participant: ledger, operations: [.fileReport(Report(
                kind: "large-transaction", amount: gross, reference: "consolidation of client funds into \(target)"))]))
        }
        return Job(branches: branches, consolidation: Consolidation(legs: legs, target: target, gross: gross, net: net))
    }

    /// Pays the nets of `batch` back out of their target accounts to the accounts they came
    /// from, each leg its share of its consolidation's net. Branches in the consolidation's
    /// order (sources, then the target) and accounts sorted within a bank: every transfer of
    /// this kind asks for its locks in one global order, so none of them deadlock.
    static func disbursement(_ batch: [Consolidation], plan: MumbaiPlan) -> [Branch] {
        var credits: [ResourceID: Paise] = [:], debits: [ResourceID: Paise] = [:]
        for item in batch {
            var left = item.net
            for (index, leg) in item.legs.enumerated() {
                let share = index == item.legs.count - 1 ? left : share(of: item.net, leg.amount, of: item.gross)
                credits[leg.account, default: .zero] = credits[leg.account, default: .zero] + share
                left = left - share
            }
            debits[item.target, default: .zero] = debits[item.target, default: .zero] + item.net
        }
        var branches: [Branch] = []
        for bank in plan.sources.map(\.bank) + [plan.target.bank] {
            var operations: [Operation] = []
            for (account, amount) in credits.filter({ $0.key.participant == bank && $0.value > .zero }).sorted(by: { $0.key < $1.key }) {
                operations.append(.credit(account: account.account, amount: amount))
            }
            for (account, amount) in debits.filter({ $0.key.participant == bank && $0.value > .zero }).sorted(by: { $0.key < $1.key }) {
                operations.append(.debit(account: account.account, amount: amount))
            }
            if !operations.isEmpty { branches.append(Branch(participant: bank, operations: operations)) }
        }
        return branches
    }

    /// `net` × `part` / `whole`, rounded down, without overflow for any amounts.
    static func share(of net: Paise, _ part: Paise, of whole: Paise) -> Paise {
        guard whole > .zero else { return .zero }
        let product = net.value.multipliedFullWidth(by: part.value)
        return Paise(whole.value.dividingFullWidth(product).quotient)
    }
}
