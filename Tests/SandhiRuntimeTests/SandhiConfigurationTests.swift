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
}
