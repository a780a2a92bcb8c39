public import Foundation

extension XeroML {
    /// XeroML's version, printed by `xeroml --version` and recorded with every run it makes
    /// (``ExperimentRun/configuration`` key `xeroml_version`).
    public static let version = "0.5.0"

    /// `base` followed by the time, to the second, in UTC: a fresh run name each time a script runs,
    /// as in `createExperiment(name: XeroML.timestampedRunName("prompt-v2"), …)` →
    /// `"prompt-v2 2026-12-01 12:44:03"`.
    public static func timestampedRunName(_ base: String, at date: Date = Date()) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ n: Int?) -> String { n.map { $0 < 10 ? "0\($0)" : "\($0)" } ?? "00" }
        return "\(base) \(c.year ?? 0)-\(two(c.month))-\(two(c.day)) \(two(c.hour)):\(two(c.minute)):\(two(c.second))"
    }
}

extension ExperimentResults {
    /// The name of the run's dataset, or `nil` for a run over local items.
    public var datasetName: String? { run.datasetName }
    /// The run's name.
    public var runName: String { run.name }
}
