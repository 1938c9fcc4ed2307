import Foundation

/// Golden-file checks for rendered frames: the text a test produced against a file committed
/// beside the tests (`Tests/<target>/Golden/NAME.txt`). A mismatch fails with the first lines
/// that differ. A missing file fails too, saying how to make it: a golden file is reviewed and
/// committed by a person, never written quietly by the test that reads it.
///
/// `SANDHI_UPDATE_GOLDEN=1 swift test --filter ...` rewrites the files of the tests it runs
/// (and they pass); review the diff before committing.
public enum GoldenFile {
    public struct Mismatch: Error, CustomStringConvertible {
        public var description: String
    }

    public static let updateVariable = "SANDHI_UPDATE_GOLDEN"

    /// Compares `text` with Golden/NAME.txt in the folder of the test file that calls this.
    public static func check(_ text: String, name: String, filePath: String = #filePath,
                             environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let folder = URL(fileURLWithPath: filePath).deletingLastPathComponent().appendingPathComponent("Golden")
        let file = folder.appendingPathComponent(name + ".txt")
        let relative = relativePath(file.path)
        if environment[updateVariable] == "1" {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try text.write(to: file, atomically: true, encoding: .utf8)
            return
        }
        guard let expected = try? String(contentsOf: file, encoding: .utf8) else {
            throw Mismatch(description: "golden file \(relative) is missing; create it with "
                + "`\(updateVariable)=1 swift test --filter <this test>`, then review and commit it")
        }
        guard expected != text else { return }
        let want = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let got = text.split(separator: "\n", omittingEmptySubsequences: false)
        var report = ["\(relative) differs (run with \(updateVariable)=1 to accept the new output):"]
        var shown = 0
        for index in 0..<max(want.count, got.count) where shown < 8 {
            let w = index < want.count ? String(want[index]) : "<no line>"
            let g = index < got.count ? String(got[index]) : "<no line>"
            guard w != g else { continue }
            report.append("  line \(index + 1):\n    expected |\(w)|\n    actual   |\(g)|")
            shown += 1
        }
        throw Mismatch(description: report.joined(separator: "\n"))
    }

    private static func relativePath(_ path: String) -> String {
        guard let range = path.range(of: "/Tests/") else { return path }
        return String(path[path.index(after: range.lowerBound)...])
    }
}
