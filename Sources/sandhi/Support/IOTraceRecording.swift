import Foundation
import SandhiIO
import SandhiParticipants

/// Test builds only: with `SANDHI_IO_TRACE=FILE` in the environment, every file this process
/// writes (the decision log, the journal, `sandhi.toml`, the banks through `FileSystemVFS`)
/// goes through a `RecordingFileSystem` that appends each write and sync to FILE, and
/// `sandhi bench` adds each transfer it acknowledged: the power-loss test's raw material. A
/// release build ignores the variable: production I/O has no such detour.
enum IOTraceRecording {
    static let recorder: RecordingFileSystem? = {
        #if DEBUG
        guard let path = ProcessInfo.processInfo.environment["SANDHI_IO_TRACE"], !path.isEmpty else { return nil }
        do {
            return try RecordingFileSystem(tracePath: path)
        } catch {
            printError("sandhi: \(error)")
            exit(2)
        }
        #else
        return nil
        #endif
    }()

    static let io: FileIO = recorder.map { FileIO.through($0) } ?? .system
}
