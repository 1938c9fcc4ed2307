/// Segment file names: `segment-%08d.log`, numbered from 1 and never reused.
///
/// Only the canonical spelling is accepted when listing a directory, so `segment-1.log` or
/// `segment-00000001.log.tmp` can never be mistaken for (or shadow) a real segment.
enum SegmentName {
    static let prefix = "segment-"
    static let suffix = ".log"
    static let minimumDigits = 8
    static let firstNumber: UInt64 = 1

    static func fileName(_ number: UInt64) -> String {
        let digits = String(number)
        let padding = String(repeating: "0", count: max(0, minimumDigits - digits.utf8.count))
        return prefix + padding + digits + suffix
    }

    static func path(directory: String, number: UInt64) -> String {
        directory.hasSuffix("/") ? directory + fileName(number) : directory + "/" + fileName(number)
    }

    /// The segment number of a canonical segment file name, or nil for any other name.
    static func number(fromFileName name: String) -> UInt64? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        let digits = name.dropFirst(prefix.count).dropLast(suffix.count)
        guard digits.utf8.count >= minimumDigits,
              digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let number = UInt64(digits), number >= firstNumber
        else { return nil }
        // Reject non-canonical spellings such as nine digits with a leading zero.
        guard fileName(number) == name else { return nil }
        return number
    }
}
