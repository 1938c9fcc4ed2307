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
        var bank = PostgresBankConfiguration(endpoint: endpoint(of: database), username: database.user, password: try database.resolvedPassword(),
                                             database: database.database, participant: participant.id, instance: try coordinator(instance))
        if let sessions = participant.sessions { bank.poolSize = sessions }
        return bank
    }

    /// The runtime's description of where a database is, as the PostgreSQL libraries take it.
    static func endpoint(of database: DatabaseConnection) -> PostgresBankConfiguration.Endpoint {
        switch database.endpoint {
        case .tcp(let host, let port): .tcp(host: host, port: port)
        case .unixSocket(let folder, let port): .unixSocket(folder: folder, port: port)
        }
    }

    static func coordinator(_ instance: String) throws -> CoordinatorInstance {
        guard let name = CoordinatorInstance(instance) else {
            throw Unusable(description: "coordinator instance \"\(instance)\" is not a valid name")
        }
        return name
    }
}
