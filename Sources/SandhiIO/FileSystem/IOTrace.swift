#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SandhiEngine

/// A recording of every change a process made to its files, in the order the calls completed,
/// and of every transfer it acknowledged to a client: what `RecordingFileSystem` writes, and
/// what a power-loss test replays up to a cut point into a `SimulatedDisk` to build the disk a
/// power cut there could have left.
///
/// The order is one the process could have observed: each call is recorded after it returned
/// and before its caller could act on it, and a file is written and synced by one thread at a
/// time, so anything that depended on a sync (a vote, a COMMIT, an acknowledgement) is
/// recorded after that sync.
///
/// Format: a sequence of entries, each `kind:u8` then its fields; strings are `count:u32`
/// then UTF-8; integers little-endian.
public enum IOTrace {
    public enum Entry: Equatable, Sendable {
        /// A file created, or truncated to nothing (O_CREAT of a new name, O_TRUNC).
        case create(path: String)
        case write(path: String, offset: Int, bytes: [UInt8])
        case writeZeros(path: String, offset: Int, count: Int)
        case dataSync(path: String)
        case fullSync(path: String)
        case syncDirectory(path: String)
        case truncate(path: String, bytes: Int)
        case unlink(path: String)
        case rename(from: String, to: String)
        case makeDirectory(path: String)
        /// A client was told this transfer committed; `writers` are the banks it changed.
        case acknowledged(transaction: TransactionID, writers: [ParticipantID])

        public var isSync: Bool {
            switch self {
            case .dataSync, .fullSync, .syncDirectory: return true
            default: return false
            }
        }
    }

    private enum Kind: UInt8 {
        case create = 1, write, writeZeros, dataSync, fullSync, syncDirectory, truncate, unlink, rename, makeDirectory, acknowledged
    }

    public struct DamagedTrace: Error, CustomStringConvertible {
        public var offset: Int
        public var description: String { "I/O trace damaged at byte \(offset)" }
    }

    /// The bytes of one entry.
    public static func encode(_ entry: Entry) -> [UInt8] {
        var out: [UInt8] = []
        func string(_ text: String) {
            let bytes = Array(text.utf8)
            integer(UInt64(bytes.count), width: 4)
            out += bytes
        }
        func integer(_ value: UInt64, width: Int) {
            for index in 0..<width { out.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(index)))) }
        }
        switch entry {
        case .create(let path): out.append(Kind.create.rawValue); string(path)
        case .write(let path, let offset, let bytes):
            out.append(Kind.write.rawValue); string(path); integer(UInt64(offset), width: 8)
            integer(UInt64(bytes.count), width: 4); out += bytes
        case .writeZeros(let path, let offset, let count):
            out.append(Kind.writeZeros.rawValue); string(path); integer(UInt64(offset), width: 8); integer(UInt64(count), width: 8)
        case .dataSync(let path): out.append(Kind.dataSync.rawValue); string(path)
        case .fullSync(let path): out.append(Kind.fullSync.rawValue); string(path)
        case .syncDirectory(let path): out.append(Kind.syncDirectory.rawValue); string(path)
        case .truncate(let path, let bytes): out.append(Kind.truncate.rawValue); string(path); integer(UInt64(bytes), width: 8)
        case .unlink(let path): out.append(Kind.unlink.rawValue); string(path)
        case .rename(let from, let to): out.append(Kind.rename.rawValue); string(from); string(to)
        case .makeDirectory(let path): out.append(Kind.makeDirectory.rawValue); string(path)
        case .acknowledged(let transaction, let writers):
            out.append(Kind.acknowledged.rawValue); integer(transaction.rawValue, width: 8)
            string(writers.map(\.name).joined(separator: ","))
        }
        return out
    }

    /// Every whole entry of a trace. A torn last entry (the recorder killed mid-write) is
    /// dropped; anything else that does not decode is an error naming its offset.
    public static func decode(_ bytes: [UInt8]) throws(DamagedTrace) -> [Entry] {
        var entries: [Entry] = []
        var position = 0
        struct Short: Error {}
        func integer(_ width: Int) throws(Short) -> UInt64 {
            guard position + width <= bytes.count else { throw Short() }
            var value: UInt64 = 0
            for index in 0..<width { value |= UInt64(bytes[position + index]) << (8 * UInt64(index)) }
            position += width
            return value
        }
        func raw(_ count: Int) throws(Short) -> [UInt8] {
            guard position + count <= bytes.count else { throw Short() }
            defer { position += count }
            return Array(bytes[position..<(position + count)])
        }
        func string() throws(Short) -> String { String(decoding: try raw(Int(try integer(4))), as: UTF8.self) }
        while position < bytes.count {
            let start = position
            guard let kind = Kind(rawValue: bytes[position]) else { throw DamagedTrace(offset: start) }
            position += 1
            do {
                switch kind {
                case .create: entries.append(.create(path: try string()))
                case .write:
                    let path = try string()
                    let offset = Int(try integer(8))
                    entries.append(.write(path: path, offset: offset, bytes: try raw(Int(try integer(4)))))
                case .writeZeros:
                    let path = try string()
                    let offset = Int(try integer(8))
                    entries.append(.writeZeros(path: path, offset: offset, count: Int(try integer(8))))
                case .dataSync: entries.append(.dataSync(path: try string()))
                case .fullSync: entries.append(.fullSync(path: try string()))
                case .syncDirectory: entries.append(.syncDirectory(path: try string()))
                case .truncate:
                    let path = try string()
                    entries.append(.truncate(path: path, bytes: Int(try integer(8))))
                case .unlink: entries.append(.unlink(path: try string()))
                case .rename:
                    let from = try string()
                    entries.append(.rename(from: from, to: try string()))
                case .makeDirectory: entries.append(.makeDirectory(path: try string()))
                case .acknowledged:
                    let transaction = TransactionID(rawValue: try integer(8))
                    let writers = try string().split(separator: ",").compactMap { ParticipantID(String($0)) }
                    entries.append(.acknowledged(transaction: transaction, writers: writers))
                }
            } catch {
                return entries  // A torn last entry.
            }
        }
        return entries
    }
}

extension SimulatedDisk {
    /// Performs `entries` on this disk, as the recorded process did (acknowledgements change
    /// nothing). Files are opened by path as the entries name them.
    public func replay(_ entries: some Sequence<IOTrace.Entry>) throws(FileSystemError) {
        var open: [String: Int32] = [:]
        func descriptor(_ path: String) throws(FileSystemError) -> Int32 {
            if let fd = open[path] { return fd }
            let fd = try openForWriting(path)
            open[path] = fd
            return fd
        }
        func forget(_ path: String) {
            if let fd = open.removeValue(forKey: path) { close(fd) }
        }
        for entry in entries {
            switch entry {
            case .create(let path):
                forget(path)
                open[path] = try createReplacing(path)
            case .write(let path, let offset, let bytes): try writeAll(try descriptor(path), bytes, atOffset: offset, path: path)
            case .writeZeros(let path, let offset, let count): try writeZeros(try descriptor(path), atOffset: offset, count: count, path: path)
            case .dataSync(let path): try dataSync(try descriptor(path), path: path)
            case .fullSync(let path): try fullSync(try descriptor(path), path: path)
            case .syncDirectory(let path): try syncDirectory(path)
            case .truncate(let path, let bytes): try truncate(try descriptor(path), toBytes: bytes, path: path)
            case .unlink(let path):
                forget(path)
                try unlink(path)
            case .rename(let from, let to):
                forget(from)
                forget(to)
                try rename(from, to: to)
            case .makeDirectory(let path): try makeDirectory(path)
            case .acknowledged: break
            }
        }
        for fd in open.values { close(fd) }
    }
}
