import Glibc

/// A child process started with `posix_spawn` and reaped with `waitpid`: tests that run the real
/// `sandhi` binary or tmux, and the PostgreSQL server programs a throwaway cluster runs.
///
/// Foundation's `Process` is deliberately not used. Under swift-corelibs-foundation its
/// `waitUntilExit` can miss a child's exit when many children start and end at once on
/// different threads: a CI run hung for its whole 90 minutes in `waitUntilExit` on a tmux client
/// that had long since exited (a zombie nobody reaped). Here the test waits for its own child
/// with `waitpid`, every pipe is close-on-exec so no other child inherits it and holds it open,
/// and every wait has a deadline after which the child is killed and the caller told.
public struct ChildProcess: Sendable {
    public let pid: pid_t

    public struct Output: Sendable {
        /// The exit status, or 128 + the signal that ended the child (as shells report it).
        public var status: Int32
        public var stdout: String
        public var stderr: String
        /// The child outlived its deadline and was killed with SIGKILL.
        public var timedOut: Bool
    }

    public struct SpawnError: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// Runs `program ARGUMENTS` to completion (`program` is searched for in PATH when it has no
    /// slash) and captures both outputs. A child still running after `timeoutSeconds` is killed.
    /// `environment` adds to (or replaces in) this process's environment.
    public static func run(_ program: String, _ arguments: [String], environment: [String: String] = [:],
                           timeoutSeconds: Double = 300) throws -> Output {
        let out = try makePipe(), err = try makePipe()
        let child: ChildProcess
        do {
            child = try spawn(program, arguments, environment: environment, stdout: out.write, stderr: err.write)
        } catch {
            for fd in [out.read, out.write, err.read, err.write] { close(fd) }
            throw error
        }
        close(out.write)
        close(err.write)
        let (stdout, stderr, timedOut) = child.drain(out.read, err.read, timeoutSeconds: timeoutSeconds)
        return Output(status: child.wait(), stdout: stdout, stderr: stderr, timedOut: timedOut)
    }

    /// Starts `program ARGUMENTS` in the background with its output discarded.
    public static func start(_ program: String, _ arguments: [String]) throws -> ChildProcess {
        try spawn(program, arguments, environment: [:], stdout: nil, stderr: nil)
    }

    /// Sends `signal`; harmless if the child already ended.
    public func signal(_ signal: Int32) { _ = Glibc.kill(pid, signal) }

    /// Waits for the child to end and reaps it; see `Output.status` for the value.
    @discardableResult
    public func wait() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return -1 }
        }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    // MARK: - Spawning

    private static func spawn(_ program: String, _ arguments: [String], environment: [String: String],
                              stdout: Int32?, stderr: Int32?) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        for (target, source) in [(Int32(1), stdout), (Int32(2), stderr)] {
            if let source {
                posix_spawn_file_actions_adddup2(&actions, source, target)
            } else {
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
            }
        }
        closeEverythingElse(&actions)

        let argv = ([program] + arguments).map { strdup($0) }
        defer { for pointer in argv { free(pointer) } }
        // This process's environment, less the names `environment` sets, plus those.
        var inherited: [String] = []
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.firstIndex(of: "="), environment[String(text[..<equals])] == nil { inherited.append(text) }
            entry += 1
        }
        let envp = (inherited + environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).map { strdup($0) }
        defer { for pointer in envp { free(pointer) } }
        var pid: pid_t = 0
        let result = (argv + [nil]).withUnsafeBufferPointer { pointers in
            (envp + [nil]).withUnsafeBufferPointer { variables in
                posix_spawnp(&pid, program, &actions, nil, pointers.baseAddress!, variables.baseAddress!)
            }
        }
        guard result == 0 else {
            throw SpawnError(description: "cannot start \(program): \(String(cString: strerror(result)))")
        }
        return ChildProcess(pid: pid)
    }

    /// glibc 2.34 and later can close every descriptor above stderr in the child, so nothing the
    /// test process has open (another test's files or sockets) leaks into it. The function is
    /// not in Swift's Glibc module, so it is looked up at run time; without it the close-on-exec
    /// pipes are what matters.
    private static func closeEverythingElse(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return }
        _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
    }

    /// A pipe whose ends are close-on-exec from birth (`pipe2`, looked up at run time as it is
    /// not in Swift's Glibc module), so a child another thread spawns meanwhile cannot inherit it.
    private static func makePipe() throws -> (read: Int32, write: Int32) {
        typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Int32
        var fds: [Int32] = [-1, -1]
        let made: Int32
        if let symbol = dlsym(nil, "pipe2") {
            made = unsafeBitCast(symbol, to: Pipe2.self)(&fds, O_CLOEXEC)
        } else {
            made = pipe(&fds)
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        }
        guard made == 0 else { throw SpawnError(description: "pipe: \(String(cString: strerror(errno)))") }
        return (fds[0], fds[1])
    }

    // MARK: - Reading

    /// Reads both pipes until each reaches end of file (both at once, so a chatty child cannot
    /// fill one pipe and stall), or until the deadline, when the child is killed.
    private func drain(_ outFD: Int32, _ errFD: Int32, timeoutSeconds: Double) -> (String, String, Bool) {
        var buffers: [[UInt8]] = [[], []]
        var polls = [pollfd(fd: outFD, events: Int16(POLLIN), revents: 0),
                     pollfd(fd: errFD, events: Int16(POLLIN), revents: 0)]
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let deadline = Self.nowSeconds() + timeoutSeconds
        var timedOut = false
        while polls.contains(where: { $0.fd >= 0 }) {
            let remaining = deadline - Self.nowSeconds()
            if remaining <= 0 && !timedOut {
                // Killing the child closes its ends; the loop then reads what is left and ends.
                signal(SIGKILL)
                timedOut = true
            }
            let waitMs = timedOut ? 1_000 : Int32(min(remaining * 1_000, 1_000).rounded(.up))
            if poll(&polls, nfds_t(polls.count), waitMs) < 0 && errno != EINTR { break }
            for index in polls.indices where polls[index].fd >= 0 && polls[index].revents != 0 {
                let count = chunk.withUnsafeMutableBytes { read(polls[index].fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    buffers[index].append(contentsOf: chunk[0..<count])
                } else if count == 0 || errno != EINTR {
                    close(polls[index].fd)
                    polls[index].fd = -1
                }
            }
            // A grandchild that inherited the pipes (a daemon) can keep them open after the
            // child is gone; a second past the kill is all it gets.
            if timedOut && remaining < -1 { break }
        }
        for poll in polls where poll.fd >= 0 { close(poll.fd) }
        return (String(decoding: buffers[0], as: UTF8.self), String(decoding: buffers[1], as: UTF8.self), timedOut)
    }

    private static func nowSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
