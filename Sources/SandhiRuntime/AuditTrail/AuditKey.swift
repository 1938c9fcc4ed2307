import Crypto
import Foundation
import Glibc

/// The data directory's signing key for the audit trail: `DIR/audit.key` (ML-DSA-65, its
/// 64-byte integrity-checked seed in hex, mode 0600, readable by its owner only) and
/// `DIR/audit.pub` (the public key, base64, for whoever verifies the trail). Made by `sandhi
/// init`; a directory made before there were keys gets one at its next start.
public enum AuditKey {
    public enum KeyError: Error, CustomStringConvertible, Equatable {
        case missing(String)
        case readableByOthers(String, mode: UInt32)
        case invalid(String, why: String)
        case io(String, why: String)

        public var description: String {
            switch self {
            case .missing(let path): return "\(path) does not exist"
            case .readableByOthers(let path, let mode):
                return "\(path) has mode \(String(mode, radix: 8)): others may read the audit key; chmod 600 it"
            case .invalid(let path, let why): return "\(path) is not an audit key: \(why)"
            case .io(let path, let why): return "\(path): \(why)"
            }
        }
    }

    public static func privatePath(_ directory: String) -> String { directory + "/audit.key" }
    public static func publicPath(_ directory: String) -> String { directory + "/audit.pub" }

    /// Makes a new key pair in `directory`; refuses to replace one (the trail it signed could
    /// no longer be verified).
    public static func create(in directory: String) throws(KeyError) {
        let key: MLDSA65.PrivateKey
        do { key = try MLDSA65.PrivateKey() } catch { throw .io(privatePath(directory), why: "cannot make a key: \(error)") }
        let hex = key.integrityCheckedRepresentation.map { String(format: "%02x", $0) }.joined() + "\n"
        try write(privatePath(directory), Array(hex.utf8), mode: 0o600)
        try write(publicPath(directory), Array((key.publicKey.rawRepresentation.base64EncodedString() + "\n").utf8), mode: 0o644)
        // The two names durable with their bytes.
        let fd = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(directory, why: String(cString: strerror(errno))) }
        defer { Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw .io(directory, why: "fsync: \(String(cString: strerror(errno)))") }
    }

    /// The private key, refusing a file others may read.
    public static func loadPrivate(from directory: String) throws(KeyError) -> MLDSA65.PrivateKey {
        let path = privatePath(directory)
        var info = stat()
        guard stat(path, &info) == 0 else { throw .missing(path) }
        let mode = UInt32(info.st_mode) & 0o777
        guard mode & 0o077 == 0 else { throw .readableByOthers(path, mode: mode) }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw .io(path, why: "not readable") }
        let hex = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard hex.count == 128, let bytes = Self.bytes(hex: hex) else { throw .invalid(path, why: "expected 128 hex digits") }
        do {
            return try MLDSA65.PrivateKey(integrityCheckedRepresentation: bytes)
        } catch {
            throw .invalid(path, why: "\(error)")
        }
    }

    public static func loadPublic(from directory: String) throws(KeyError) -> MLDSA65.PublicKey {
        let path = publicPath(directory)
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw .missing(path) }
        guard let raw = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw .invalid(path, why: "not base64")
        }
        do {
            return try MLDSA65.PublicKey(rawRepresentation: raw)
        } catch {
            throw .invalid(path, why: "\(error)")
        }
    }

    static func bytes(hex: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }

    private static func write(_ path: String, _ bytes: [UInt8], mode: mode_t) throws(KeyError) {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .io(path, why: errno == EEXIST ? "exists already: a key is never replaced" : String(cString: strerror(errno))) }
        defer { Glibc.close(fd) }
        _ = fchmod(fd, mode)  // whatever the umask
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else { throw .io(path, why: String(cString: strerror(errno))) }
    }
}
