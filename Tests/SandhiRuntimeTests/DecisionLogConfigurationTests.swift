import SandhiEngine
import SandhiRuntime
import Testing

/// `[coordinator] log`: where the decision log lives when it is not the segment files.
@Suite struct DecisionLogConfigurationTests {
    static let header = "[sandhi]\nformat = 1\n[[participants]]\nname = \"hdfc\"\n"

    @Test func absentMeansTheSegmentFiles() throws {
        #expect(try SandhiConfiguration(toml: Self.header).decisionLog == nil)
        #expect(try SandhiConfiguration(toml: Self.header + "[coordinator]\ninstance = \"m-1\"\n").decisionLog == nil)
    }

    @Test func aURLOrATableOfConnectionKeys() throws {
        let byURL = try SandhiConfiguration(toml: Self.header + "[coordinator]\nlog = \"postgres://sandhi@db1:5433/decisions\"\n")
        #expect(byURL.decisionLog == DatabaseConnection(endpoint: .tcp(host: "db1", port: 5433), user: "sandhi", database: "decisions"))
        let byTable = try SandhiConfiguration(toml: Self.header + """
            [coordinator.log]
            socket = "/run/postgresql"
            user = "sandhi"
            database = "decisions"
            password_file = "/etc/sandhi/log.password"
            """)
        #expect(byTable.decisionLog == DatabaseConnection(endpoint: .unixSocket(folder: "/run/postgresql", port: 5432), user: "sandhi",
                                                          database: "decisions", passwordFile: "/etc/sandhi/log.password"))
    }

    @Test func whatIsWrittenReadsBackTheSame() throws {
        var configuration = SandhiConfiguration(participants: [.init(id: ParticipantID(validated: "hdfc"))])
        for log in [DatabaseConnection(endpoint: .tcp(host: "db1", port: 5432), user: "sandhi", database: "decisions"),
                    DatabaseConnection(endpoint: .unixSocket(folder: "/tmp/pg sock-1", port: 6543), user: "sandhi", database: "decisions"),
                    DatabaseConnection(endpoint: .tcp(host: "db2", port: 5432), user: "u", database: "d", passwordFile: "/p")] {
            configuration.decisionLog = log
            #expect(try SandhiConfiguration(toml: configuration.toml) == configuration, "\(configuration.toml)")
        }
    }

    @Test func badValuesAreRefusedWithOneLineNamingTheProblem() throws {
        let cases: [(String, String)] = [
            ("[coordinator]\nlog = \"mysql://u@h/d\"\n", "[coordinator] log: \"mysql://u@h/d\" is not a postgres:// URL"),
            ("[coordinator]\nlog = \"postgres://u@h/\"\n", "[coordinator] log: postgres://u@h/: the URL names no database"),
            ("[coordinator]\nlog = 5\n", "[coordinator] log must be a postgres:// URL or a table"),
            ("[coordinator.log]\nhost = \"h\"\n", "[coordinator] log needs user and database"),
            ("[coordinator.log]\nuser = \"u\"\ndatabase = \"d\"\n", "[coordinator] log needs url, host or socket"),
            ("[coordinator.log]\nhost = \"h\"\nsocket = \"/s\"\nuser = \"u\"\ndatabase = \"d\"\n", "[coordinator] log: give host or socket, not both"),
            ("[coordinator.log]\nurl = \"postgres://u@h/d\"\nport = 1\n", "[coordinator] log: give url or port, not both"),
            ("[coordinator.log]\nhost = \"h\"\nport = 70000\nuser = \"u\"\ndatabase = \"d\"\n", "[coordinator] log: port must be 1...65535"),
            ("[coordinator.log]\nhost = \"h\"\nuser = \"u\"\ndatabase = \"d\"\ninstance = \"x\"\n", "[coordinator] log: unknown key instance"),
        ]
        for (toml, expected) in cases {
            let error = #expect(throws: SandhiConfiguration.ParseError.self) { try SandhiConfiguration(toml: Self.header + toml) }
            let text = error?.description ?? ""
            #expect(text.contains(expected) && !text.contains("\n"), "\(toml): \(text)")
        }
    }
}
