import SandhiEngine
import SandhiIO

extension SimulatedDisk {
    /// The decision records that a power cut now would certainly leave in the segment files of
    /// `directory`: what is durable, read as recovery would read it (whole, checksummed frames
    /// from the start of each segment whose name is durable). For tests that look, at the
    /// instant something is sent or acknowledged, at whether what it depends on is on the disk.
    public func durableDecisionRecords(in directory: String) -> [DecisionRecord] {
        let names = (try? listDirectory(directory)) ?? []
        var records: [DecisionRecord] = []
        for name in names.sorted() where name.hasPrefix("segment-") {
            guard let bytes = durableBytes(directory + "/" + name) else { continue }
            for frame in RecordFraming.scan(bytes).records {
                if let record = try? DecisionRecord(decoding: frame.payload) { records.append(record) }
            }
        }
        return records
    }
}
