/// The hash of one 64-bit word for Swift's hashed collections, seeded by the table: the word
/// and the seed mixed by SplitMix64's finalizer (a bijection of the word for a given seed, every
/// input bit reaching every output bit).
///
/// Why not `Hasher` (SipHash-1-3): it resists hash flooding, keys chosen so that they collide,
/// at about ten times the cost for one word; it was a twentieth of a simulation, since every
/// table of the coordinator, the lock manager, the wait-for graph and the participants is keyed
/// by transaction and looked up several times per message. Nobody outside can choose these
/// keys: a transaction id is handed out by the coordinator (epoch and sequence), and a
/// resource's word is already a `Hasher` digest of its names, made with the process's random
/// seed. The tables' own seeds still differ per process and per table, so no code can come to
/// depend on their iteration order.
@inline(__always)
func wordHash(_ word: UInt64, seed: Int) -> Int {
    var z = word ^ (UInt64(bitPattern: Int64(seed)) &* 0x9E37_79B9_7F4A_7C15)
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return Int(bitPattern: UInt(truncatingIfNeeded: z ^ (z >> 31)))
}
