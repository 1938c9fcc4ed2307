import Logging
import SandhiPostgres
import SandhiPostgresLog
import SandhiRuntime

/// The executable's part of wiring a decision log kept in PostgreSQL: the runtime carries
/// `[coordinator] log`'s `DatabaseConnection` and asks `DecisionLogOpener` to open or read it;
/// this opens it as a `PostgresDecisionLog` under the data directory's coordinator instance.
enum PostgresDecisionLogOpener {
    static let opener = DecisionLogOpener(
        open: { database, configuration, logger in
            let (log, recovered) = try PostgresDecisionLog.open(try logConfiguration(database, instance: configuration.instance), logger: logger)
            return (log, recovered)
        },
        read: { database, configuration, logger in
            try PostgresDecisionLog.read(try logConfiguration(database, instance: configuration.instance), logger: logger)
        })

    static func logConfiguration(_ database: DatabaseConnection, instance: String) throws -> PostgresDecisionLogConfiguration {
        PostgresDecisionLogConfiguration(endpoint: PostgresParticipants.endpoint(of: database), username: database.user,
                                         password: try database.resolvedPassword(), database: database.database,
                                         instance: try PostgresParticipants.coordinator(instance))
    }
}
