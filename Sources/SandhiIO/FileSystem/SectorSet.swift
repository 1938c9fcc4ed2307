/// A set of sector numbers as a bitmap: which sectors of a simulated file are dirty (written
/// since their last sync) or lost (marked clean by a failed sync). A file's sectors are dense
/// and small in number, and every write marks a few of them, so a bitmap costs a shift and an
/// OR where a hashed set would hash and probe; iteration is in ascending order, which a power
/// cut needs anyway (its draws must replay from the seed).
struct SectorSet {
    private var words: [UInt64] = []
    /// Words past this are all zero (and so is the one before it, unless it is 0): iteration
    /// and emptiness look at these only.
    private var usedWords = 0

    var isEmpty: Bool { usedWords == 0 }

    /// The lowest sector in the set.
    var first: Int? {
        for index in 0..<usedWords where words[index] != 0 {
            return index << 6 + words[index].trailingZeroBitCount
        }
        return nil
    }

    func contains(_ sector: Int) -> Bool {
        let index = sector >> 6
        return index < usedWords && words[index] & (1 << UInt64(sector & 63)) != 0
    }

    mutating func insert(_ sectors: ClosedRange<Int>) {
        precondition(sectors.lowerBound >= 0, "a sector number is never negative")
        let lastWord = sectors.upperBound >> 6
        if lastWord >= words.count { words.append(contentsOf: repeatElement(0, count: lastWord + 1 - words.count)) }
        usedWords = max(usedWords, lastWord + 1)
        for sector in sectors { words[sector >> 6] |= 1 << UInt64(sector & 63) }
    }

    mutating func insert(_ sector: Int) { insert(sector...sector) }

    mutating func remove(_ sector: Int) {
        let index = sector >> 6
        guard index < usedWords else { return }
        words[index] &= ~(1 << UInt64(sector & 63))
        while usedWords > 0 && words[usedWords - 1] == 0 { usedWords -= 1 }
    }

    mutating func formUnion(_ other: SectorSet) {
        for index in 0..<other.usedWords where other.words[index] != 0 {
            if index >= words.count { words.append(contentsOf: repeatElement(0, count: index + 1 - words.count)) }
            words[index] |= other.words[index]
            usedWords = max(usedWords, index + 1)
        }
    }

    /// Empties the set and keeps its storage (a file is written and synced over and over).
    mutating func removeAll() {
        for index in 0..<usedWords { words[index] = 0 }
        usedWords = 0
    }

    /// Calls `body` with each sector, in ascending order.
    func forEach(_ body: (Int) throws -> Void) rethrows {
        for index in 0..<usedWords {
            var word = words[index]
            while word != 0 {
                try body(index << 6 + word.trailingZeroBitCount)
                word &= word - 1
            }
        }
    }

    /// The sectors, in ascending order.
    var sorted: [Int] {
        var sectors: [Int] = []
        forEach { sectors.append($0) }
        return sectors
    }
}
