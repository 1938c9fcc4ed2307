import Logging
import SandhiEngine
import SandhiParticipants
import SandhiPostgres
import SandhiRuntime

/// The executable's part of wiring PostgreSQL participants: the runtime carries a `postgres`
/// participant's `DatabaseConnection` and asks `BankOpener` to open it; this opens it as a
/// `PostgresBank` under the data directory's coordinator instance.
enum PostgresParticipants {
    static let opener = BankOpener { participant, configuration, logger in
        try PostgresBank(try bankConfiguration(participant, instance: configuration.instance), logger: logger)
    }

    struct Unusable: Error, CustomStringConvertible {
        var description: String
    }

    static func bankConfiguration(_ participant: SandhiConfiguration.Participant, instance: String) throws -> PostgresBankConfiguration {
        guard let database = participant.database else {
            throw Unusable(description: "participant \(participant.id) is postgres but names no database")
        }
        guard let instance = CoordinatorInstance(instance) else {
            throw Unusable(description: "coordinator instance \"\(instance)\" is not a valid name")
        }
        let endpoint: PostgresBankConfiguration.Endpoint
        switch database.endpoint {
        case .tcp(let host, let port): endpoint = .tcp(host: host, port: port)
        case .unixSocket(let folder, let port): endpoint = .unixSocket(folder: folder, port: port)
        }
        var bank = PostgresBankConfiguration(endpoint: endpoint, username: database.user, password: try database.resolvedPassword(),
                                             database: database.database, participant: participant.id, instance: instance)
        if let sessions = participant.sessions { bank.poolSize = sessions }
        return bank
    }
}
