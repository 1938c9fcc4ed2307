#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file-system call that failed: which call, on which path, and the errno it reported.
///
/// `description` is one line, `<what> <path> (<strerror>)`, because it ends up in an
/// operator's one-line error. `errno` is kept for callers that must tell failures apart (a
/// SQLite VFS answers ENOSPC with SQLITE_FULL, anything else with SQLITE_IOERR).
public struct FileSystemError: Error, Equatable, CustomStringConvertible, Sendable {
    /// `<what> <path> (<strerror>)`.
    public var what: String
    public var errno: Int32

    public init(what: String, errno: Int32) {
        self.what = what
        self.errno = errno
    }

    /// `<what> (<strerror(code)>)`.
    public static func io(_ what: String, errno code: Int32) -> FileSystemError {
        FileSystemError(what: "\(what) (\(String(cString: strerror(code))))", errno: code)
    }

    public var description: String { what }
}
