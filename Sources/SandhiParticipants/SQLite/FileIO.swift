import SandhiIO

/// Where a process's files go: the file system the decision log, the journal and
/// `sandhi.toml` are written through, and how SQLite reaches the banks' files.
///
/// Production is `.system`: POSIX calls, and SQLite's own unix VFS. `.through(fs)` sends
/// everything, the banks included, through one `FileSystem` (a `SimulatedDisk`, or a
/// `RecordingFileSystem` whose trace a power-loss test replays), so that a test sees every
/// write and sync the process makes.
public struct FileIO: Sendable {
    public let fileSystem: any FileSystem
    /// The VFS SQLite opens banks with; nil for SQLite's own.
    public let sqliteVFS: FileSystemVFS?

    public static let system = FileIO(fileSystem: PosixFileSystem(), sqliteVFS: nil)

    /// Everything through `fileSystem`, SQLite through a VFS registered over it.
    public static func through(_ fileSystem: any FileSystem) -> FileIO {
        FileIO(fileSystem: fileSystem, sqliteVFS: FileSystemVFS(fileSystem: fileSystem))
    }
}
