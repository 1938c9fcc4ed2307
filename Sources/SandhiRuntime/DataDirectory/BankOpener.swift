import Logging
import SandhiEngine
import SandhiParticipants

/// How a participant's bank is opened. The runtime opens the embedded SQLite banks itself;
/// the other kinds (PostgreSQL) are opened by code the executable hands over, since wiring
/// participants to drivers is the executable's job and the runtime imports no database client.
public struct BankOpener: Sendable {
    /// Opens a bank of a kind the runtime does not know, or throws one clear line. The
    /// configuration is the whole `sandhi.toml` (the coordinator's instance name, a planted bug).
    public typealias Open = @Sendable (_ participant: SandhiConfiguration.Participant, _ configuration: SandhiConfiguration, _ logger: Logger) throws -> Bank

    public var other: Open?

    public init(other: Open? = nil) { self.other = other }

    public struct Unsupported: Error, CustomStringConvertible {
        public var participant: ParticipantID
        public var kind: SandhiConfiguration.ParticipantKind
        public var description: String { "participant \(participant) is of kind \(kind.rawValue), which this program cannot open" }
    }
}

extension DataDirectory {
    /// Opens `participant`'s bank (restoring its prepared branches) with its heuristic policy.
    public func openBank(_ participant: SandhiConfiguration.Participant, of configuration: SandhiConfiguration, logger: Logger) throws -> Bank {
        var bank: Bank
        if participant.kind == .sqlite {
            bank = try SQLiteBank(path: bankPath(participant.id), participant: participant.id, logger: logger, io: io,
                                  plantedBug: configuration.plantedBug)
        } else {
            guard let open = bankOpener.other else { throw BankOpener.Unsupported(participant: participant.id, kind: participant.kind) }
            bank = try open(participant, configuration, logger)
        }
        bank.heuristicPolicy = participant.heuristic
        return bank
    }
}
