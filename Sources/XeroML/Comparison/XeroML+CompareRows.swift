public import Foundation

/// One run's results fed row by row to a comparison, for a dashboard that reads runs from a store
/// other than the SQLite file (the team server's PostgreSQL).
///
/// Feed run items in dataset-item order, then repetition (``addRunItem(id:datasetItemID:error:latencyMs:cost:output:)``),
/// then item scores with a value in the order of the file's covering score index: name, value, data
/// type, run item (``addScore(runItemID:name:dataType:value:)``). Fed in those orders, the comparison is
/// the one ``XeroML/compare(baseline:candidates:datasetName:options:)`` computes over the same rows.
@_spi(Dashboard)
public struct ComparisonRows: Sendable {
    var itemKeys: [UInt128] = []
    var runItemKeys: [UInt128] = []
    var runItemStarts: [Int32] = [0]
    var repetitions: [Int32] = []
    var errors: [Int32] = []
    var firstErrors: [String?] = []
    var outputs: [String?] = []
    var latencySums: [Double] = []
    var costs: [Double?] = []
    var itemOfRunItem: [Int32] = []
    var latencies: [Double] = []
    var totalCost: Double?
    var errorCount = 0
    var scores: [RunColumns.ScoreColumn] = []
    var sortedKeys: [UInt128]?
    var sortedItems: [Int32] = []

    public init() {}

    /// Adds one run item (ids are the stored UUIDv7 text; a malformed id is skipped, as the file's reader does).
    public mutating func addRunItem(id: String, datasetItemID: String, error: String?, latencyMs: Double, cost: Double?,
                                    output: String?) {
        guard let runItem = Self.bits(id), let item = Self.bits(datasetItemID) else { return }
        add(runItem: runItem, item: item, failed: error != nil, latencyMs: latencyMs, cost: cost, error: { error }, output: { output })
    }

    /// Adds one run item by its 128-bit keys; `error` and `output` are read only when needed (the first
    /// error and the first output of a dataset item). The SQLite file's reader and ``addRunItem(id:datasetItemID:error:latencyMs:cost:output:)`` both add through it.
    @inline(__always)
    mutating func add(runItem: UInt128, item: UInt128, failed: Bool, latencyMs: Double, cost: Double?,
                      error: () -> String?, output: () -> String?) {
        latencies.append(latencyMs)
        if failed { errorCount += 1 }
        if let cost { totalCost = (totalCost ?? 0) + cost }
        if itemKeys.last != item {
            itemKeys.append(item)
            runItemStarts.append(runItemStarts[runItemStarts.count - 1])
            repetitions.append(0)
            errors.append(0)
            firstErrors.append(nil)
            outputs.append(output())
            latencySums.append(0)
            costs.append(nil)
        }
        let i = itemKeys.count - 1
        runItemKeys.append(runItem)
        runItemStarts[i + 1] += 1
        repetitions[i] += 1
        latencySums[i] += latencyMs
        if failed {
            errors[i] += 1
            if firstErrors[i] == nil { firstErrors[i] = error() }
        }
        if let cost { costs[i] = (costs[i] ?? 0) + cost }
        itemOfRunItem.append(Int32(i))
    }

    /// Sorts the run-item keys for ``item(ofRunItem:)``; call once every run item is added.
    mutating func indexRunItems() {
        let order = runItemKeys.indices.sorted { runItemKeys[$0] < runItemKeys[$1] }
        sortedKeys = order.map { runItemKeys[$0] }
        sortedItems = order.map { itemOfRunItem[$0] }
    }

    /// The dataset item (its index) of a run item, by binary search over the sorted run-item keys
    /// (measured several times faster here than a dictionary of 128-bit keys); nil for an unknown one.
    @inline(__always)
    func item(ofRunItem key: UInt128) -> Int? {
        guard let keys = sortedKeys else { return nil }
        var low = 0, high = keys.count
        while low < high {
            let mid = (low + high) / 2
            if keys[mid] < key { low = mid + 1 } else { high = mid }
        }
        return low < keys.count && keys[low] == key ? Int(sortedItems[low]) : nil
    }

    /// The number of dataset items added so far.
    var itemCount: Int { itemKeys.count }

    /// Adds one item score's value (after every run item); a score of an unknown run item is skipped.
    public mutating func addScore(runItemID: String, name: String, dataType: String, value: Double) {
        if sortedKeys == nil { indexRunItems() }
        guard let key = Self.bits(runItemID), let item = item(ofRunItem: key) else { return }
        let column: Int
        if let last = scores.indices.last, scores[last].name == name {
            column = last
        } else if let found = scores.firstIndex(where: { $0.name == name }) {
            column = found
        } else {
            scores.append(RunColumns.ScoreColumn(name: name, isBoolean: dataType == "boolean",
                                                 values: .init(repeating: RunningVariance(), count: itemKeys.count)))
            column = scores.count - 1
        }
        scores[column].values[item].add(value)
    }

    static func bits(_ text: String) -> UInt128? {
        var text = text
        return text.withUTF8(UUIDv7.bits)
    }

    /// The run as columns, with `scores` in place of those added here when given.
    func columns(scores replacement: [RunColumns.ScoreColumn]? = nil) -> RunColumns {
        let run = RunColumns()
        (run.itemKeys, run.runItemKeys, run.runItemStarts) = (itemKeys, runItemKeys, runItemStarts)
        (run.repetitions, run.errors, run.firstErrors, run.outputs) = (repetitions, errors, firstErrors, outputs)
        (run.latencySums, run.costs, run.scores) = (latencySums, costs, replacement ?? scores)
        let sorted = latencies.sorted()
        run.statistics = RunComparison.RunStatistics(
            items: sorted.count, errors: errorCount,
            latencyP50: Statistics.percentile(sorted, 0.5).map { .microseconds(Int64($0 * 1000)) },
            latencyP95: Statistics.percentile(sorted, 0.95).map { .microseconds(Int64($0 * 1000)) },
            cost: totalCost)
        return run
    }
}

extension XeroML {
    /// Compares runs whose results were fed through ``ComparisonRows`` (baseline first), with the
    /// statistics of ``compare(baseline:candidates:datasetName:options:)``.
    @_spi(Dashboard)
    public static func compare(runs: [ExperimentRun], rows: [ComparisonRows],
                               options: ComparisonOptions = ComparisonOptions()) -> RunComparison {
        precondition(runs.count == rows.count && runs.count >= 2, "one ComparisonRows per run, two runs or more")
        return compare(runs: runs, loaded: rows.map { $0.columns() }, options: options)
    }
}

extension ExperimentRun {
    /// A run as read from another store (the team server's), for ``XeroML/compare(runs:rows:options:)``.
    @_spi(Dashboard)
    public init(id: String, name: String, datasetID: String?, datasetName: String?, datasetVersion: Int?,
                description: String?, metadata: JSONValue?, status: RunStatus, createdAt: Date, finishedAt: Date?,
                itemCount: Int, errorCount: Int) {
        (self.id, self.name, self.datasetID, self.datasetName, self.datasetVersion) = (id, name, datasetID, datasetName, datasetVersion)
        (self.description, self.metadata, self.status, self.createdAt, self.finishedAt) = (description, metadata, status, createdAt, finishedAt)
        (self.itemCount, self.errorCount) = (itemCount, errorCount)
    }
}
