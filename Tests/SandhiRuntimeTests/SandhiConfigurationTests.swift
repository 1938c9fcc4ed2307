import SandhiEngine
import SandhiRuntime
import Testing

/// `sandhi.toml`: what `init` writes reads back the same, the locking section's settings, and
/// a clear refusal of every bad value.
@Suite struct SandhiConfigurationTests {
    static let header = "[sandhi]\nformat = 1\n[[participants]]\nname = \"hdfc\"\n"

    @Test func whatIsWrittenReadsBackTheSame() throws {
        var configuration = SandhiConfiguration(participants: [.init(id: ParticipantID(validated: "hdfc")), .init(id: ParticipantID(validated: "sbi"))])
        configuration.lockTimeoutMs = 750
        configuration.victimPolicy = .youngest
        configuration.deadlockGraceMs = 300
        configuration.detectDeadlocks = false
        #expect(try SandhiConfiguration(toml: configuration.toml) == configuration)
    }

    @Test func lockingDefaultsAndSettings() throws {
        let defaults = try SandhiConfiguration(toml: Self.header)
        #expect(defaults.concurrency == .twoPhaseLocking && defaults.lockTimeoutMs == 2_000 && defaults.detectDeadlocks)
        #expect(defaults.victimPolicy == .leastWork && defaults.deadlockGraceMs == 0)
        let set = try SandhiConfiguration(toml: Self.header + """
            [locking]
            concurrency = "2pl"
            lock_timeout_ms = 100
            deadlock_detection = false
            victim_policy = "fewest-prepared"
            deadlock_grace_ms = 2500
            """)
        #expect(set.lockTimeoutMs == 100 && !set.detectDeadlocks && set.victimPolicy == .fewestPrepared && set.deadlockGraceMs == 2_500)
    }

    @Test(arguments: [
        ("concurrency = \"occ\"", "concurrency must be one of 2pl"),
        ("victim_policy = \"random\"", "victim_policy must be one of least-work, youngest, fewest-prepared, manual"),
        ("deadlock_detection = \"yes\"", "deadlock_detection must be true or false"),
        ("lock_timeout_ms = 0", "lock_timeout_ms must be a positive integer"),
        ("deadlock_grace_ms = -1", "deadlock_grace_ms must be 0 or more"),
    ])
    func badLockingValuesAreRefusedByName(line: String, problem: String) {
        #expect {
            _ = try SandhiConfiguration(toml: Self.header + "[locking]\n" + line + "\n")
        } throws: { error in
            "\(error)".contains(problem)
        }
    }

    // MARK: PostgreSQL participants

    static let sbi = "[sandhi]\nformat = 1\n[[participants]]\nname = \"sbi\"\nkind = \"postgres\"\n"

    @Test func aPostgresParticipantByURLOrByPartsReadsBackTheSame() throws {
        let byURL = try SandhiConfiguration(toml: Self.sbi + "url = \"postgres://sandhi:secret@db.example:6432/sbi_ledger\"\n")
        let database = try #require(byURL.participants.first?.database)
        #expect(database.endpoint == .tcp(host: "db.example", port: 6432) && database.user == "sandhi" && database.database == "sbi_ledger")
        #expect(database.password == "secret" && database.description == "postgres://sandhi@db.example:6432/sbi_ledger", "no password in messages")
        let byParts = try SandhiConfiguration(toml: Self.sbi + """
            socket = "/run/postgresql"
            user = "postgres"
            database = "sbi"
            password_file = "/etc/sandhi/sbi.password"

            [coordinator]
            instance = "mumbai-1"
            """)
        #expect(byParts.instance == "mumbai-1")
        #expect(byParts.participants.first?.database == DatabaseConnection(
            endpoint: .unixSocket(folder: "/run/postgresql", port: 5432), user: "postgres", database: "sbi", passwordFile: "/etc/sandhi/sbi.password"))
        #expect(try SandhiConfiguration(toml: byParts.toml) == byParts)
        #expect(!byURL.toml.contains("secret"), "a URL's password is never written back")
    }

    @Test(arguments: [
        ("", "sbi is postgres and needs url, host or socket"),
        ("host = \"db\"\n", "sbi is postgres and needs user and database"),
        ("url = \"mysql://u@h/d\"\n", "is not a postgres:// URL"),
        ("url = \"postgres://u@h\"\n", "the URL names no database"),
        ("url = \"postgres://h/d\"\n", "the URL names no user"),
        ("url = \"postgres://u@h/d\"\nhost = \"h\"\n", "give url or host, not both"),
        ("host = \"h\"\nsocket = \"/s\"\nuser = \"u\"\ndatabase = \"d\"\n", "give host or socket, not both"),
        ("host = \"h\"\nport = 70000\nuser = \"u\"\ndatabase = \"d\"\n", "port must be 1...65535"),
        ("url = \"postgres://u@h/d\"\nsessions = 0\n", "sbi: sessions must be 1...256"),
        ("url = \"postgres://u@h/d\"\nsessions = 257\n", "sbi: sessions must be 1...256"),
        ("url = \"postgres://u@h/d\"\nsessions = \"many\"\n", "sbi: sessions must be 1...256"),
    ])
    func aBadPostgresParticipantIsRefusedInOneLine(lines: String, message: String) {
        #expect {
            try SandhiConfiguration(toml: Self.sbi + lines)
        } throws: { error in
            "\(error)".contains(message) && !"\(error)".contains("\n")
        }
    }

    @Test func aPostgresParticipantsSessionsReadBackAndBelongToPostgresOnly() throws {
        let set = try SandhiConfiguration(toml: Self.sbi + "url = \"postgres://u@h/d\"\nsessions = 24\n")
        #expect(set.participants.first?.sessions == 24)
        #expect(try SandhiConfiguration(toml: set.toml) == set)
        let unset = try SandhiConfiguration(toml: Self.sbi + "url = \"postgres://u@h/d\"\n")
        #expect(unset.participants.first?.sessions == nil && !unset.toml.contains("sessions"))
        #expect {
            try SandhiConfiguration(toml: Self.header + "sessions = 4\n")
        } throws: { error in
            "\(error)".contains("sessions belongs to a postgres participant")
        }
    }

    @Test func anSQLiteParticipantHasNoDatabaseAndTheInstanceIsChecked() {
        #expect(throws: SandhiConfiguration.ParseError.self) { try SandhiConfiguration(toml: Self.header + "url = \"postgres://u@h/d\"\n") }
        #expect(throws: SandhiConfiguration.ParseError.self) { try SandhiConfiguration(toml: Self.header + "[coordinator]\ninstance = \"a:b\"\n") }
        #expect(SandhiConfiguration.isValidInstance("mumbai-1") && !SandhiConfiguration.isValidInstance("") && !SandhiConfiguration.isValidInstance("Upper"))
    }
}
