/// An amount of money in integer paise (1 rupee = 100 paise). Never a floating-point number.
public struct Paise: Hashable, Comparable, Sendable, CustomStringConvertible, AdditiveArithmetic {
    public var value: Int64

    public init(_ value: Int64) { self.value = value }

    /// The largest amount one operation may move: ₹10 lakh crore (10^15 paise). With at most
    /// `OperationCodec.maxOperations` operations per branch and `DecisionRecord.maxParticipants`
    /// branches, no sum the engine or a participant forms can overflow Int64.
    public static let maxAmount = Paise(1_000_000_000_000_000)
    public static func rupees(_ rupees: Int64) -> Paise { Paise(rupees * 100) }

    public static var zero: Paise { Paise(0) }
    public static func + (lhs: Paise, rhs: Paise) -> Paise { Paise(lhs.value + rhs.value) }
    public static func - (lhs: Paise, rhs: Paise) -> Paise { Paise(lhs.value - rhs.value) }
    public static func < (lhs: Paise, rhs: Paise) -> Bool { lhs.value < rhs.value }

    /// Checked addition: nil on overflow, so a hostile amount cannot wrap a balance.
    public func adding(_ other: Paise) -> Paise? {
        let (sum, overflow) = value.addingReportingOverflow(other.value)
        return overflow ? nil : Paise(sum)
    }

    /// This amount times `basisPoints` / 10,000 (1% = 100 bp), rounded toward zero, in exact
    /// integer arithmetic (split so that the product cannot overflow for any Int64 amount).
    public func basisPoints(_ basisPoints: Int64) -> Paise {
        precondition(basisPoints >= 0 && basisPoints <= 10_000, "basis points out of range: \(basisPoints)")
        return Paise((value / 10_000) * basisPoints + (value % 10_000) * basisPoints / 10_000)
    }

    /// Indian digit grouping: `₹18,00,000.00`.
    public var description: String { formatted(symbol: true) }

    public func formatted(symbol: Bool = true, showPaise: Bool = true) -> String {
        let negative = value < 0
        let magnitude = value.magnitude
        let rupees = magnitude / 100
        let paise = magnitude % 100
        var digits = String(rupees)
        var grouped = ""
        if digits.count > 3 {
            let lastThree = String(digits.suffix(3))
            digits.removeLast(3)
            var groups: [String] = []
            while digits.count > 2 {
                groups.insert(String(digits.suffix(2)), at: 0)
                digits.removeLast(2)
            }
            if !digits.isEmpty { groups.insert(digits, at: 0) }
            grouped = groups.joined(separator: ",") + "," + lastThree
        } else {
            grouped = digits
        }
        var text = (negative ? "-" : "") + (symbol ? "₹" : "") + grouped
        if showPaise {
            text += "." + (paise < 10 ? "0" : "") + String(paise)
        }
        return text
    }

    /// Parses `1800000` (rupees), `1800000.50`, `18,00,000`, or `180000000p` (paise).
    /// Rejects anything with more than two decimal places, signs, or overflow.
    public init?(parsing text: String) {
        let body = String(text.filter { $0 != "," && $0 != "₹" }).trimmingWhitespace()
        if body.hasSuffix("p") {
            let digits = body.dropLast()
            guard !digits.isEmpty, isDecimalDigits(digits),
                  let paise = Int64(digits) else { return nil }
            self.init(paise)
            return
        }
        let parts = body.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2, !parts[0].isEmpty,
              isDecimalDigits(parts[0]),
              let rupees = Int64(parts[0]) else { return nil }
        var paise: Int64 = 0
        if parts.count == 2 {
            let fraction = parts[1]
            guard (1...2).contains(fraction.count),
                  isDecimalDigits(fraction),
                  let value = Int64(fraction) else { return nil }
            paise = fraction.count == 1 ? value * 10 : value
        }
        let (scaled, overflow) = rupees.multipliedReportingOverflow(by: 100)
        guard !overflow else { return nil }
        let (total, overflow2) = scaled.addingReportingOverflow(paise)
        guard !overflow2 else { return nil }
        self.init(total)
    }
}

/// ASCII digits only: no sign, no spaces (which `Int64.init(_:)` alone would let through).
private func isDecimalDigits(_ text: Substring) -> Bool {
    text.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
