import Foundation
import Glibc
import SandhiIO
import SandhiTestSupport
import Testing

/// The power-loss tests prove the durability argument over the `FileSystem` contract: a
/// `dataSync`, `fullSync` or `syncDirectory` that returned makes its file or name durable.
/// On the machine that contract is `PosixFileSystem`'s, and SQLite's own unix VFS's for
/// production banks; no simulated disk can see one of them skip its system call. This does:
/// the real binary runs under strace, and every sync the recording file system logged must be
/// a real fsync(2) or fdatasync(2) of that very file or directory, and a production run
/// (SQLite's VFS) must sync each bank's WAL it wrote.
@Suite(.enabled(if: Strace.path != nil, Comment(rawValue: "SKIPPED: \(Strace.missingReason)")))
struct SyncSyscallTests {
    /// One system call strace saw: its name and the path of its descriptor.
    struct Call: Hashable, CustomStringConvertible {
        var name: String
        var path: String
        var description: String { "\(name)(\(path))" }
    }

    @Test func everyRecordedSyncIsARealSystemCallOnItsFile() throws {
        let temporary = TemporaryDirectory("sandhi-strace"); defer { temporary.remove() }
        let data = Strace.realPath(temporary.path) + "/data"
        var recorded: [Call] = []
        var seen: [Call: Int] = [:]
        for (step, arguments) in [
            ["init", "--data", data, "--banks", "hdfc,sbi", "--accounts", "3", "--opening", "1000"],
            ["transfer", "--data", data, "--from", "hdfc/acct-000001", "--to", "sbi/acct-000002", "--amount", "10"],
        ].enumerated() {
            let trace = temporary.appending("io-\(step).trace")
            let calls = try Strace.syncs(of: arguments, environment: ["SANDHI_IO_TRACE": trace], output: temporary.appending("strace-\(step).out"))
            for call in calls { seen[call, default: 0] += 1 }
            for entry in try IOTrace.decode(Array(try Data(contentsOf: URL(fileURLWithPath: trace)))) {
                switch entry {
                case .dataSync(let path): recorded.append(Call(name: "fdatasync", path: path))
                case .fullSync(let path): recorded.append(Call(name: "fsync", path: path))
                case .syncDirectory(let path): recorded.append(Call(name: "fsync", path: path))
                default: break
                }
            }
        }
        let kinds = Set(recorded.map { $0.path.hasSuffix(".tmp") ? "replace" : $0.name + ($0.path.hasSuffix("-wal") ? " wal" : "") })
        #expect(kinds.isSuperset(of: ["fdatasync", "fdatasync wal", "fsync", "replace"]), "the runs sync log, WAL, directories and sandhi.toml: \(kinds)")
        var missing: [String] = []
        for (call, count) in Dictionary(recorded.map { ($0, 1) }, uniquingKeysWith: +).sorted(by: { $0.key.description < $1.key.description }) {
            let found = seen[call] ?? 0
            if found < count { missing.append("\(call): recorded \(count), made \(found)") }
        }
        #expect(missing.isEmpty, "syncs recorded but never made:\n\(missing.joined(separator: "\n"))")
    }

    @Test func aProductionTransferSyncsTheWALOfEveryBankItWrote() throws {
        let temporary = TemporaryDirectory("sandhi-strace"); defer { temporary.remove() }
        let data = Strace.realPath(temporary.path) + "/data"
        let created = try SandhiBinary.run(["init", "--data", data, "--banks", "hdfc,sbi", "--accounts", "3", "--opening", "1000"])
        try #require(created.status == 0, "init failed: \(created.stderr)")
        let calls = try Strace.syncs(of: ["transfer", "--data", data, "--from", "hdfc/acct-000001", "--to", "sbi/acct-000002", "--amount", "10"],
                                     environment: [:], output: temporary.appending("strace.out"))
        for bank in ["hdfc", "sbi"] {
            let wal = "\(data)/banks/\(bank).sqlite-wal"
            #expect(calls.contains { $0.path == wal }, "no fsync or fdatasync of \(wal) in \(calls)")
        }
        #expect(calls.contains { $0.name == "fdatasync" && $0.path.hasPrefix(data + "/coordinator/segment-") }, "the decision log was not synced: \(calls)")
    }
}

extension SyncSyscallTests {
    /// The files written with POSIX calls, outside the `FileSystem` interface (they need a mode
    /// of 0600 it cannot ask for): the audit trail's key pair and the tokens file. Each is
    /// fsynced, and then its directory, before anything else is synced: the next sync after
    /// the last file's is its directory's.
    @Test func theAuditKeyAndTheTokensFileAreSyncedWithTheirNames() throws {
        let temporary = TemporaryDirectory("sandhi-strace"); defer { temporary.remove() }
        let data = Strace.realPath(temporary.path) + "/data"
        let initialised = try Strace.syncs(of: ["init", "--data", data, "--banks", "hdfc,sbi", "--accounts", "3"],
                                           environment: [:], output: temporary.appending("strace-init.out"))
        let key = initialised.firstIndex(of: Call(name: "fsync", path: data + "/audit.key"))
        let pub = initialised.firstIndex(of: Call(name: "fsync", path: data + "/audit.pub"))
        #expect(key != nil && pub != nil, "the key files are fsynced: \(initialised)")
        if let key, let pub {
            #expect(key < pub && initialised.indices.contains(pub + 1) && initialised[pub + 1] == Call(name: "fsync", path: data),
                    "the directory next, before anything else: \(initialised[key...].prefix(4))")
        }
        let added = try Strace.syncs(of: ["token", "add", "grafana", "--role", "viewer", "--data", data],
                                     environment: [:], output: temporary.appending("strace-token.out"))
        #expect(added == [Call(name: "fsync", path: data + "/tokens"), Call(name: "fsync", path: data)],
                "the new tokens file, then its directory: \(added)")
    }
}

/// strace, when the machine has it and lets it trace.
enum Strace {
    static let path: String? = {
        for candidate in ["/usr/bin/strace", "/bin/strace", "/usr/local/bin/strace"] where access(candidate, X_OK) == 0 {
            // ptrace may be forbidden (a container's seccomp profile, Yama): then nothing can be seen.
            guard let probe = try? ChildProcess.run(candidate, ["-f", "-qq", "-o", "/dev/null", "/bin/true"], timeoutSeconds: 60),
                  probe.status == 0 else { return nil }
            return candidate
        }
        return nil
    }()

    static let missingReason = "strace is not installed or may not trace here (install the strace package; .ci/run does)"

    /// Runs `sandhi ARGS` under strace and returns every fsync and fdatasync it made, with the
    /// path of the descriptor (strace -y), in order.
    static func syncs(of arguments: [String], environment: [String: String], output: String) throws -> [SyncSyscallTests.Call] {
        let result = try ChildProcess.run(path!, ["-f", "-qq", "-y", "-e", "trace=fsync,fdatasync", "-o", output, SandhiBinary.path] + arguments,
                                          environment: environment, timeoutSeconds: 300)
        guard result.status == 0, !result.timedOut else {
            throw ChildProcess.SpawnError(description: "sandhi \(arguments.first ?? "") under strace failed (\(result.status)): \(result.stderr)")
        }
        // `1234 fdatasync(7</path/to/file>) = 0`, or `... <unfinished ...>` when another thread
        // interrupts the line; the call was made either way.
        let pattern = try NSRegularExpression(pattern: #"\b(fsync|fdatasync)\(\d+<([^>]*)>"#)
        var calls: [SyncSyscallTests.Call] = []
        for line in try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n") {
            let text = String(line)
            guard let match = pattern.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
                  let name = Range(match.range(at: 1), in: text), let file = Range(match.range(at: 2), in: text) else { continue }
            calls.append(.init(name: String(text[name]), path: String(text[file])))
        }
        return calls
    }

    /// The path with every symbolic link resolved, as strace -y names a descriptor's file.
    static func realPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
