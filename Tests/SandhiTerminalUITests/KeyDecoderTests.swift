import SandhiTerminalUI
import Testing

/// Raw bytes to keys: every sequence the console listens for, split sequences, and the lone
/// Esc that only the caller's timeout can tell from the start of a sequence.
@Suite struct KeyDecoderTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test(arguments: [
        ("\r", Key.enter), ("\n", .enter), ("\t", .tab), ("\u{7F}", .backspace), ("\u{8}", .backspace),
        ("\u{3}", .control("c")), ("\u{1}", .control("a")), ("\u{17}", .control("w")),
        ("q", .character("q")), (" ", .character(" ")), ("/", .character("/")), ("₹", .character("₹")), ("क", .character("क")),
        ("😀", .character("😀")),
        ("\u{1B}[A", .up), ("\u{1B}[B", .down), ("\u{1B}[C", .right), ("\u{1B}[D", .left),
        ("\u{1B}OA", .up), ("\u{1B}OB", .down), ("\u{1B}OC", .right), ("\u{1B}OD", .left),
        ("\u{1B}[1;5A", .up), ("\u{1B}[H", .home), ("\u{1B}[F", .end), ("\u{1B}OH", .home), ("\u{1B}OF", .end),
        ("\u{1B}[1~", .home), ("\u{1B}[4~", .end), ("\u{1B}[7~", .home), ("\u{1B}[8~", .end),
        ("\u{1B}[5~", .pageUp), ("\u{1B}[6~", .pageDown), ("\u{1B}[2~", .insert), ("\u{1B}[3~", .delete), ("\u{1B}[Z", .backTab),
        ("\u{1B}OP", .function(1)), ("\u{1B}OQ", .function(2)), ("\u{1B}OR", .function(3)), ("\u{1B}OS", .function(4)),
        ("\u{1B}[11~", .function(1)), ("\u{1B}[15~", .function(5)), ("\u{1B}[17~", .function(6)), ("\u{1B}[21~", .function(10)),
        ("\u{1B}[23~", .function(11)), ("\u{1B}[24~", .function(12)), ("\u{1B}[1;2P", .function(1)), ("\u{1B}[[A", .function(1)),
        ("\u{1B}[[E", .function(5)), ("\u{1B}OM", .enter),
    ] as [(String, Key)])
    func decodesWholeSequence(_ text: String, _ key: Key) {
        let input = Self.bytes(text)
        #expect(KeyDecoder.decode(input, final: false) == .key(key, length: input.count), "\(text.debugDescription)")
    }

    @Test func aLoneEscapeWaitsForTheCallersTimeout() {
        #expect(KeyDecoder.decode([0x1B], final: false) == .needMore)
        #expect(KeyDecoder.decode([0x1B], final: true) == .key(.escape, length: 1))
        #expect(KeyDecoder.decode([0x1B, 0x1B], final: false) == .key(.escape, length: 1))
        // Esc then a letter: Esc, and the letter is the next key.
        #expect(KeyDecoder.decodeAll(Self.bytes("\u{1B}q"), final: false).keys == [.escape, .character("q")])
    }

    @Test func splitSequencesNeedMoreUntilComplete() {
        let whole = Self.bytes("\u{1B}[15~")
        for cut in 1..<whole.count {
            #expect(KeyDecoder.decode(whole[..<cut], final: false) == .needMore, "cut at \(cut)")
        }
        #expect(KeyDecoder.decode(whole, final: false) == .key(.function(5), length: 5))
        // After the timeout an incomplete sequence is Esc, then its bytes as typed.
        #expect(KeyDecoder.decodeAll(Self.bytes("\u{1B}["), final: true).keys == [.escape, .character("[")])
        #expect(KeyDecoder.decode(Self.bytes("\u{1B}O"), final: false) == .needMore)
        // A split UTF-8 character.
        let rupee = Self.bytes("₹")
        #expect(KeyDecoder.decode(rupee[..<2], final: false) == .needMore)
        #expect(KeyDecoder.decode(rupee[..<2], final: true) == .ignored(length: 2))
    }

    @Test func aStreamOfKeysAndTheRestLeftOver() {
        let stream = Self.bytes("j\u{1B}[Bk\r/ab\u{1B}[")
        let (keys, rest) = KeyDecoder.decodeAll(stream, final: false)
        #expect(keys == [.character("j"), .down, .character("k"), .enter, .character("/"), .character("a"), .character("b")])
        #expect(rest == Self.bytes("\u{1B}["))
    }

    @Test func noiseIsSkippedNotMisread() {
        #expect(KeyDecoder.decode(Self.bytes("\u{1B}[99~"), final: false) == .ignored(length: 5))
        #expect(KeyDecoder.decode(Self.bytes("\u{1B}[?1;2c"), final: false) == .ignored(length: 7))  // a device attributes reply
        #expect(KeyDecoder.decode([0xFF], final: false) == .ignored(length: 1))
        #expect(KeyDecoder.decode([0xC3, 0x28], final: false) == .ignored(length: 1))  // a lead byte without its continuation
        #expect(KeyDecoder.decode([0xC2, 0x85], final: false) == .ignored(length: 2))  // C1 control NEL
        #expect(KeyDecoder.decode([UInt8](), final: true) == .needMore)
        let endless = [0x1B, UInt8(ascii: "[")] + Array(repeating: UInt8(ascii: "1"), count: 40)
        #expect(KeyDecoder.decode(endless, final: false) == .ignored(length: KeyDecoder.maxSequenceBytes))
    }

    @Test func textInputEditsByCharacter() {
        var input = TextInputState("क्षि ok")
        #expect(input.handle(.backspace) == .edited && input.text == "क्षि o")
        input.handle(.control("w"))
        #expect(input.text == "क्षि ")
        input.handle(.home)
        #expect(input.handle(.delete) == .edited)
        #expect(input.text == "क्षि ".dropFirst().description)
        #expect(input.handle(.enter) == .submitted && input.handle(.escape) == .cancelled)
        var bounded = TextInputState(maxCharacters: 3)
        for c in "abcd" { bounded.handle(.character(c)) }
        #expect(bounded.text == "abc")
    }
}
