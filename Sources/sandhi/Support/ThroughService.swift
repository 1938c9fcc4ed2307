import Foundation
import SandhiEngine
import SandhiRuntime
import SandhiService

/// The command line beside a running `sandhi serve`: the commands that would take the data
/// directory's lock ask the service instead (`transfer`, `check`, `reconcile resolve`), and
/// the one that cannot (`recover`) says why. The read-only ones (`log dump`, `log verify`,
/// `reconcile list|show`) read the files as ever.
enum ThroughService {
    /// The service holding `directory`, if one answers on its socket.
    static func client(for directory: DataDirectory) -> ServiceClient? {
        ServiceClient.serving(directory.path)
    }

    /// `sandhi transfer` through the service: the same request, the same output.
    static func transfer(_ branches: [Branch], client: ServiceClient, json: Bool) throws -> Int32 {
        let body = TransferAPI.TransferRequest(branches: branches.map { branch in
            TransferAPI.BranchBody(participant: branch.participant.name, operations: branch.operations.compactMap { operation in
                switch operation {
                case .debit(let account, let amount): return .init(kind: "debit", account: account.name, amountPaise: amount.value)
                case .credit(let account, let amount): return .init(kind: "credit", account: account.name, amountPaise: amount.value)
                case .read(let account): return .init(kind: "read", account: account.name)
                case .fileReport: return nil
                }
            })
        }, timeoutMs: 300_000)
        let reply = try client.request("POST", "/v1/transfers", json: body)
        let result = try reply.decode(TransferAPI.TransferResponse.self)
        if json {
            print(String(decoding: reply.body, as: UTF8.self))
        } else {
            print("\(result.transaction) \(result.outcome == "aborted" ? "aborted (\(result.reason ?? ""))" : result.outcome) in \(formatMicros(result.latencyUs))")
            for read in result.reads ?? [] { print(TransferCommand.line(read)) }
        }
        switch result.outcome {
        case "committed": return 0
        case "aborted":
            if !json { printError("sandhi: transfer aborted: \(result.reason ?? "")") }
            return 1
        default:
            printError("sandhi: \(result.transaction) was not decided in time; `sandhi` cannot say more yet, the service can: GET /v1/transactions/\(result.transaction)")
            return 1
        }
    }

    /// `sandhi check` through the service: the live audit, in `check`'s own layout.
    static func check(client: ServiceClient, json: Bool) throws -> Int32 {
        let reply = try client.request("GET", "/v1/check")
        struct Check: Decodable {
            struct Bank: Decodable { var name: String; var accounts: Int; var totalPaise: Int64; var prepared: Int; var locks: Int; var committed: Int; var reports: Int }
            var ok: Bool; var totalPaise: Int64; var mintedPaise: Int64; var decidedInFlightPaise: Int64; var inFlight: Int
            var banks: [Bank]; var violations: [String]; var notes: [String]; var unavailable: [String: String]
        }
        let check = try reply.decode(Check.self)
        if json {
            print(String(decoding: reply.body, as: UTF8.self))
            return check.ok ? 0 : 1
        }
        CheckCommand.printBanks(check.banks.map { ($0.name, $0.accounts, Paise($0.totalPaise), $0.prepared, $0.locks, $0.committed, $0.reports) })
        print("minted: \(check.mintedPaise)")
        print("total: \(check.totalPaise)")
        print("checked live by the service on \(client.description): \(check.inFlight) transaction(s) in flight, "
              + "\(Paise(check.decidedInFlightPaise)) decided and not yet applied everywhere")
        for (participant, why) in check.unavailable.sorted(by: { $0.key < $1.key }) { print("not checked: \(participant): \(why)") }
        for note in check.notes { print(note) }
        if check.ok {
            print("invariants: ok (conservation, atomicity)")
        } else {
            for violation in check.violations { print("VIOLATION: \(violation)") }
        }
        return check.ok ? 0 : 1
    }

    /// `sandhi reconcile resolve` through the service: its dry run, or the command with its
    /// note as the reason, then the live check.
    static func resolve(_ tx: TransactionID, action: ReconcileAction, note: String, dryRun: Bool, client: ServiceClient) throws -> Int32 {
        struct Command: Encodable { var kind = "reconcile"; var transaction: String; var action: String; var reason: String; var dryRun: Bool }
        struct Result: Decodable { var summary: String; var performed: Bool }
        let reply = try client.request("POST", "/v1/commands",
                                       json: Command(transaction: "\(tx)", action: action.rawValue, reason: note, dryRun: dryRun))
        let result = try reply.decode(Result.self)
        print(dryRun ? "dry run: \(action.rawValue) \(result.summary)" : "\(tx): \(result.summary)")
        guard !dryRun else { return 0 }
        return try check(client: client, json: false)
    }

    /// What `recover` says when a service holds the directory.
    static func refuseRecover(_ client: ServiceClient) -> Error {
        UsageFailure("a service holds this data directory (\(client.description)); it recovered when it started, and settles "
                     + "in-doubt transactions as it runs. Stop it (SIGTERM) to run `sandhi recover` yourself.")
    }
}
