import SandhiEngine

/// Where a PostgreSQL bank lives and how the bank uses it.
public struct PostgresBankConfiguration: Sendable {
    public enum Endpoint: Sendable, Equatable {
        /// The folder holding the server's socket (`unix_socket_directories`); the socket file
        /// is `<folder>/.s.PGSQL.<port>`.
        case unixSocket(folder: String, port: Int = 5432)
        case tcp(host: String, port: Int = 5432)
    }

    public var endpoint: Endpoint
    public var username: String
    public var password: String?
    public var database: String
    /// The participant this database is (stored in the database when it is created).
    public var participant: ParticipantID
    /// The coordinator whose branches this bank prepares and recovers (part of every gid).
    public var instance: CoordinatorInstance
    /// Connections a batch's statements spread over (`sessions` in sandhi.toml): a quarter of
    /// them (one to four) stage the batch's groups, the rest run its write-sets, phase two and
    /// reads side by side (see `PostgresBank`). Each is a backend of the server, whose
    /// `max_connections` (100 by default) must leave room for every bank and everyone else.
    public var poolSize: Int = 8
    /// How long a batch smaller than the one before waits for more messages (see
    /// `ParticipantResource.batchLingerUs`): a batch here costs a few statements whatever its
    /// size, so under load merging two half-size batches into one nearly halves the cost per
    /// transfer. About one batch's time on a busy server.
    public var batchLingerUs: UInt64 = 3_000
    /// How long a statement waits for a row lock before the branch votes NO instead. Sandhi's
    /// own branches never wait for each other here (the participant protocol refuses a
    /// conflicting prepare first); this bounds waits on writers outside Sandhi, including other
    /// coordinators' prepared transactions.
    public var lockTimeoutMs: Int = 2_000
    public var connectTimeoutMs: Int = 10_000
    /// How long one wave of a batch may wait for PostgreSQL before the batch fails (and the bank
    /// reloads on new sessions). Generous: a wave is many statements, each bounded by
    /// `lockTimeoutMs` where it waits for a row.
    public var batchTimeoutMs: Int = 60_000

    public init(endpoint: Endpoint, username: String, password: String? = nil, database: String,
                participant: ParticipantID, instance: CoordinatorInstance) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.participant = participant
        self.instance = instance
    }

    /// What this bank's sessions call themselves in `pg_stat_activity`: a reopened bank ends
    /// every older session of the same name before it recovers (see `PostgresBank`).
    /// PostgreSQL keeps at most 63 bytes of it.
    var applicationName: String {
        String(decoding: "sandhi:\(instance.name):\(participant.name)".utf8.prefix(63), as: UTF8.self)
    }
}
