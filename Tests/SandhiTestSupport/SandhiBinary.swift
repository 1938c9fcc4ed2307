import Foundation
import Glibc

/// Runs the `sandhi` executable that `swift test` built next to the test bundle.
public enum SandhiBinary {
    /// The built executable: the directory of this test process's own binary holds it.
    public static var path: String {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
        // `swift test` runs `.build/<triple>/debug/SandhiPackageTests.xctest`; the bundle may be a folder.
        if directory.lastPathComponent.hasSuffix(".xctest") { directory.deleteLastPathComponent() }
        return directory.appendingPathComponent("sandhi").path
    }

    public typealias Result = ChildProcess.Output

    /// Runs `sandhi ARGS` to completion and captures its output. No command a test runs takes
    /// minutes; one that does is killed, and the result says so.
    public static func run(_ arguments: [String], environment: [String: String] = [:], timeoutSeconds: Double = 300) throws -> Result {
        let result = try ChildProcess.run(path, arguments, environment: environment, timeoutSeconds: timeoutSeconds)
        if result.timedOut {
            throw ChildProcess.SpawnError(description: "sandhi \(arguments.joined(separator: " ")) was still running after \(Int(timeoutSeconds)) s and was killed")
        }
        return result
    }

    /// Starts `sandhi ARGS` in the background, output discarded.
    public static func start(_ arguments: [String]) throws -> ChildProcess {
        try ChildProcess.start(path, arguments)
    }

    /// SIGKILL: no handler runs, no buffer is flushed. The crash the tests care about.
    public static func kill(_ process: ChildProcess) {
        process.signal(SIGKILL)
        process.wait()
    }
}
