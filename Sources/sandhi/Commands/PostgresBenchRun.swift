import Foundation
import Logging
import SandhiEngine
import SandhiPostgres
import SandhiPostgresTools
import SandhiRuntime
import Synchronization

/// The set-up of `sandhi bench --participants postgres`: two fresh PostgreSQL databases on one
/// server, a fresh data directory whose two participants are banks in them, and the hand-written
/// client's tables beside the banks; so Sandhi and the yardstick it must beat
/// (`HandWrittenTwoPhaseBench`) run in the same process, on the same server, minutes apart.
///
/// The server is one the caller names (`--postgres-server URL`, a role that may create
/// databases), or else a throwaway cluster this run starts and removes (`ThrowawayCluster`).
/// Either way every database and folder made here is removed at the end.
final class PostgresBenchRun: @unchecked Sendable {
    static let participants = ["pga", "pgb"].map { ParticipantID(validated: $0) }

    let directory: DataDirectory
    /// The databases' connections as the hand-written client uses them.
    let databases: [PostgresBankConfiguration]
    private let admin: PostgresBankConfiguration
    private let databaseNames: [String]
    private let folder: String
    private let cluster: ThrowawayCluster?
    private let logger: Logger
    private let finishing = Mutex(false)
    private var signalSources: [any DispatchSourceSignal] = []

    private init(directory: DataDirectory, databases: [PostgresBankConfiguration], admin: PostgresBankConfiguration,
                 databaseNames: [String], folder: String, cluster: ThrowawayCluster?, logger: Logger) {
        self.directory = directory
        self.databases = databases
        self.admin = admin
        self.databaseNames = databaseNames
        self.folder = folder
        self.cluster = cluster
        self.logger = logger
    }

    /// Starts (or connects to) the server and creates everything: banks of `accounts` accounts
    /// each, and the hand-written client's tables of as many.
    /// `clients` and `workers` (the most hand-written workers) size a throwaway cluster: every
    /// client may hold a branch prepared in each database, and every session is a backend.
    static func start(serverURL: String?, accounts: Int, opening: Paise, sessions: Int, clients: Int, workers: Int,
                      baseline: HandWrittenTwoPhaseBench.Options, logger: Logger) async throws -> PostgresBenchRun {
        var template = Array("/tmp/sandhi-bench-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw UsageFailure("cannot create a temporary folder: \(String(cString: strerror(errno)))") }
        let folder = String(cString: made)
        var cluster: ThrowawayCluster?
        do {
            let server: DatabaseConnection
            if let serverURL {
                do { server = try DatabaseConnection(url: serverURL) } catch { throw UsageFailure("--postgres-server: \(error)") }
            } else {
                let participantCount = participants.count
                // A client's next branch may prepare before its last one's COMMIT PREPARED ran.
                let started = try ThrowawayCluster.start(maxPreparedTransactions: 2 * participantCount * max(clients, workers) + 16,
                                                         maxConnections: participantCount * (sessions + workers) + 20, logger: logger)
                cluster = started
                server = DatabaseConnection(endpoint: .unixSocket(folder: started.socketDirectory, port: started.port),
                                            user: ThrowawayCluster.superuser, database: "postgres")
            }
            let admin = try configuration(of: server, participant: ParticipantID(validated: "admin"))
            let names = participants.map { "sandhi_bench_\(getpid())_\($0.name)" }
            var created: [String] = []
            do {
                for name in names {
                    try DatabaseAdmin.create(name, on: admin, logger: logger)
                    created.append(name)
                }
                let members = zip(participants, names).map { participant, name in
                    var connection = server
                    connection.database = name
                    return SandhiConfiguration.Participant(id: participant, kind: .postgres, database: connection, sessions: sessions)
                }
                let directory = DataDirectory(path: folder + "/data", bankOpener: PostgresParticipants.opener)
                try InitCommand.create(directory: directory, banks: [], postgres: members, accounts: accounts, opening: opening, logger: logger)
                let databases = try members.map { try configuration(of: $0.database!, participant: $0.id) }
                try await HandWrittenTwoPhaseBench.createTables(databases, options: baseline, logger: logger)
                return PostgresBenchRun(directory: directory, databases: databases, admin: admin, databaseNames: names,
                                        folder: folder, cluster: cluster, logger: logger)
            } catch {
                for name in created { try? DatabaseAdmin.drop(name, on: admin, logger: logger) }
                throw error
            }
        } catch {
            cluster?.stop()
            try? FileManager.default.removeItem(atPath: folder)
            throw error
        }
    }

    /// Drops the databases, removes the folder, stops a throwaway cluster. Run after the node
    /// has stopped (it leaves nothing prepared: every branch is finished before `stop` returns,
    /// and anything left would be rolled back with the database).
    func finish() {
        // Once, whoever comes first: the command's end or a signal.
        guard finishing.withLock({ done in defer { done = true }; return !done }) else { return }
        for name in databaseNames {
            do { try DatabaseAdmin.drop(name, on: admin, logger: logger) } catch {
                logger.warning("could not drop a benchmark database", metadata: ["database": "\(name)", "error": "\(error)"])
            }
        }
        cluster?.stop()
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// The hand-written client with each number of workers in turn, each for the options'
    /// duration. Its money is counted before and after: a client that lost or made money would
    /// be no yardstick.
    func measureYardstick(workers: [Int], options: HandWrittenTwoPhaseBench.Options) async throws -> [HandWrittenTwoPhaseBench.Report] {
        let before = try await HandWrittenTwoPhaseBench.total(databases, logger: logger)
        var reports: [HandWrittenTwoPhaseBench.Report] = []
        for count in workers {
            var options = options
            options.workers = count
            reports.append(try await HandWrittenTwoPhaseBench.run(databases, options: options, logger: logger))
        }
        let after = try await HandWrittenTwoPhaseBench.total(databases, logger: logger)
        guard before == after else {
            throw UsageFailure("the hand-written client's total moved from \(before) to \(after) paise: its numbers are void")
        }
        return reports
    }

    /// Removes everything on Ctrl-C or `kill` too: a throwaway cluster runs detached (pg_ctl
    /// starts it so), and databases left on a named server would hold prepared transactions.
    func finishOnSignals() {
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                printError("sandhi bench: stopped by signal \(number); removing the benchmark's databases")
                finish()
                exit(128 + number)
            }
            source.resume()
            signalSources.append(source)
        }
    }

    /// A server, which the title says: a throwaway cluster's folder, or the URL's host.
    var serverDescription: String {
        cluster.map { "a throwaway PostgreSQL \($0.version) cluster in \($0.folder) (fsync on)" } ?? "\(admin.endpoint)"
    }

    private static func configuration(of connection: DatabaseConnection, participant: ParticipantID) throws -> PostgresBankConfiguration {
        try PostgresParticipants.bankConfiguration(.init(id: participant, kind: .postgres, database: connection), instance: "bench")
    }
}

/// One hand-written client measurement in `sandhi bench --json` (a line after the report).
struct YardstickLine: Encodable {
    var yardstick = "hand-written two-phase client"
    var workers: Int
    var transfers: Int
    var refused: Int
    var transfersPerSecond: Double

    init(_ report: HandWrittenTwoPhaseBench.Report) {
        workers = report.workers
        transfers = report.transfers
        refused = report.refused
        transfersPerSecond = report.transfersPerSecond
    }
}

extension BenchCommand {
    /// `--baseline-workers`: a comma-separated list of 1 to 64 workers each.
    func parseBaselineWorkers() throws -> [Int] {
        let list = baselineWorkers ?? "1,2,4"
        let parts = list.split(separator: ",", omittingEmptySubsequences: false)
        let counts = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, counts.count == parts.count, counts.allSatisfy({ (1...64).contains($0) }) else {
            throw UsageFailure("--baseline-workers takes numbers from 1 to 64 separated by commas, got \(list)")
        }
        return counts
    }
}
