import Foundation
import Glibc
import SandhiPostgresTools
import SandhiProcess

/// What a test needs to see an asynchronous commit lost in a server crash, every time.
///
/// A commit under `synchronous_commit = off` returns before its WAL is written out; the WAL
/// writer writes it within `wal_writer_delay`, and so does any later commit that flushes, or a
/// background process writing a dirty page. A crash of the server (`pg_ctl stop -m immediate`)
/// in that window loses the commit; a crash after it does not, since what was written to the
/// kernel survives the processes. Whether a test's crash falls in the window would be timing;
/// these close the other doors so that it always does: no background writer, no autovacuum,
/// no timed checkpoint, and the WAL writer stopped. A commit that flushes by itself
/// (`synchronous_commit = on`, PREPARE TRANSACTION) is durable all the same.
extension ThrowawayCluster {
    /// Turns off the background writer's page writes (each first flushes the WAL up to the
    /// page), autovacuum and timed checkpoints, and restarts the server so that every process
    /// starts with them. Once per cluster; does nothing the second time.
    public func quietBackgroundWALFlushes() throws {
        guard try sql("postgres", "SHOW bgwriter_lru_maxpages") != "0" else { return }
        try sql("postgres", "ALTER SYSTEM SET bgwriter_lru_maxpages = 0")
        try sql("postgres", "ALTER SYSTEM SET autovacuum = off")
        try sql("postgres", "ALTER SYSTEM SET checkpoint_timeout = '1d'")
        try restartImmediately()
    }

    /// Stops the server's WAL writer (SIGSTOP) until the next `restartImmediately`, whose
    /// immediate shutdown kills it (the postmaster sends SIGKILL to a child that has not
    /// ended 5 s after SIGQUIT). From here on an asynchronous commit stays in the server's
    /// shared memory until something flushes, and a crash loses it.
    ///
    /// A WAL writer stopped in the middle of a write would hold the lock every flush needs:
    /// a synchronous commit that wrote WAL then proves it is not (it flushes, taking that
    /// lock, and flushes everything before it too; a commit that wrote nothing, such as one
    /// that only took a transaction id, is not flushed at all). Should it hang, the writer is
    /// let go and stopped again.
    public func pauseWALWriter() throws {
        for _ in 0..<5 {
            guard let pid = pid_t(try sql("postgres", "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'")) else {
                throw Failure(description: "no walwriter in pg_stat_activity")
            }
            guard kill(pid, SIGSTOP) == 0 else { throw Failure(description: "cannot stop the WAL writer \(pid): \(String(cString: strerror(errno)))") }
            try waitUntilStopped(pid)
            let probe = "SET synchronous_commit = on; CREATE TABLE IF NOT EXISTS sandhi_wal_probe(at timestamptz); INSERT INTO sandhi_wal_probe VALUES (now())"
            if (try? sqlWithin(seconds: 20, probe)) != nil { return }
            _ = kill(pid, SIGCONT)
        }
        throw Failure(description: "a synchronous commit never completed with the WAL writer stopped")
    }

    /// `sql` in database `postgres` with a deadline of its own.
    private func sqlWithin(seconds: Double, _ statement: String) throws -> String {
        guard let binDirectory = Self.binDirectory else { throw Failure(description: Self.missingReason) }
        let output = try ChildProcess.run(binDirectory + "/psql",
                                          ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", socketDirectory, "-U", Self.superuser,
                                           "-d", "postgres", "-c", statement], timeoutSeconds: seconds)
        guard output.status == 0, !output.timedOut else { throw Failure(description: "psql: \(output.stderr)") }
        return output.stdout
    }

    /// Waits for the kernel to report `pid` stopped (state T in /proc/PID/stat).
    private func waitUntilStopped(_ pid: pid_t) throws {
        for _ in 0..<10_000 {
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            if let close = stat.lastIndex(of: ")"), stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("T") { return }
            usleep(1_000)
        }
        throw Failure(description: "the WAL writer \(pid) did not stop")
    }
}
