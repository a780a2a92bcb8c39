import Foundation
import XeroMLSQLite

extension XeroML {
    /// Compares runs of one dataset item by item: `baseline` against each of `candidates` (ids, id
    /// prefixes or names).
    ///
    /// - Throws: ``XeroMLError/Code/notFound`` for an unknown run, ``XeroMLError/Code/invalidArgument``
    ///   when the runs are not of one dataset.
    public func compare(baseline: String, candidates: [String], datasetName: String? = nil,
                        options: ComparisonOptions = ComparisonOptions()) async throws -> RunComparison {
        guard !candidates.isEmpty else { throw XeroMLError(.invalidArgument, "compare needs at least one candidate run") }
        let runs = try await store.read { db in
            var runs: [ExperimentRun] = []
            for reference in [baseline] + candidates {
                guard let run = try Self.findRun(db, reference: reference, datasetName: datasetName) else {
                    throw XeroMLError.notFound("run \"\(reference)\"")
                }
                runs.append(run)
            }
            guard let datasetID = runs[0].datasetID, runs.allSatisfy({ $0.datasetID == datasetID }) else {
                let described = runs.map { "\($0.name) (\($0.datasetName ?? "no dataset"))" }.joined(separator: ", ")
                throw XeroMLError(.invalidArgument, "runs can be compared only over one dataset: \(described)")
            }
            guard Set(runs.map(\.id)).count == runs.count else {
                throw XeroMLError(.invalidArgument, "a run is named twice in the comparison")
            }
            return runs
        }
        // Each run is read on a read connection of its own, concurrently; the comparison itself is
        // computed on the calling task.
        let datasetID = runs[0].datasetID ?? ""
        let wantsDetails = options.itemDetails
        async let details = wantsDetails ? store.read { db in try Self.loadItemDetails(db, datasetID: datasetID) } : []
        let loaded = try await withThrowingTaskGroup(of: (Int, RunColumns).self) { group in
            for (index, run) in runs.enumerated() {
                let runID = run.id
                group.addTask { (index, try await self.store.read { db in try Self.loadOutcomes(db, runID: runID) }) }
            }
            var loaded = [RunColumns?](repeating: nil, count: runs.count)
            for try await (index, columns) in group { loaded[index] = columns }
            return loaded.map { $0! }
        }
        return Self.compare(runs: runs, loaded: loaded, details: try await details, options: options)
    }

    /// Every item of a dataset (all versions) in id order: its id, external id and stored input text,
    /// so a comparison carries them without a query per item.
    static func loadItemDetails(_ db: Connection, datasetID: String) throws -> [(id: String, externalID: String?, input: String?)] {
        try db.query("SELECT id, external_id, input FROM dataset_items WHERE dataset_id = ? ORDER BY id",
                     [.text(datasetID)]) { ($0.text(0)!, $0.text(1), $0.text(2)) }
    }

    /// Reads every item outcome of a run with two scans: run items in dataset-item order (through the
    /// one-result index) and item scores (index-only, through the covering score index), into flat
    /// columns: no joins, no per-item objects, ids kept as 128-bit integers.
    static func loadOutcomes(_ db: Connection, runID: String) throws -> RunColumns {
        // Run items go through the same accumulator as a dashboard's rows from elsewhere
        // (``ComparisonRows``); scores are gathered here, a column at a time, as the covering index
        // returns them grouped by name.
        var rows = ComparisonRows()
        let items = try db.cached("""
            SELECT id, dataset_item_id, error, latency_ms, cost, output FROM run_items
            WHERE run_id = ? AND dataset_item_id IS NOT NULL ORDER BY dataset_item_id, repetition
            """)
        try items.bind([.text(runID)])
        defer { items.reset() }
        while try items.step() {
            guard let runItem = items.withUTF8(0, UUIDv7.bits), let item = items.withUTF8(1, UUIDv7.bits) else { continue }
            rows.add(runItem: runItem, item: item, failed: !items.isNull(2), latencyMs: items.double(3),
                     cost: items.optionalDouble(4), error: { items.text(2) }, output: { items.text(5) })
        }
        let itemCount = rows.itemCount
        rows.indexRunItems()
        var columns: [RunColumns.ScoreColumn] = []
        let scores = try db.cached("""
            SELECT name, value, data_type, run_item_id FROM scores
            WHERE run_id = ? AND run_item_id IS NOT NULL AND value IS NOT NULL
            """)
        try scores.bind([.text(runID)])
        defer { scores.reset() }
        var current = -1
        var values: [RunningVariance] = []
        func store() {
            guard current >= 0 else { return }
            columns[current].values = values
        }
        while try scores.step() {
            guard let key = scores.withUTF8(3, UUIDv7.bits), let i = rows.item(ofRunItem: key) else { continue }
            // Rows come grouped by name (the covering index starts with it): switch columns rarely.
            let sameName = current >= 0 && scores.withUTF8(0) { $0.elementsEqual(columns[current].name.utf8) }
            if !sameName {
                store()
                let name = scores.text(0)!
                if let found = columns.firstIndex(where: { $0.name == name }) {
                    current = found
                } else {
                    columns.append(RunColumns.ScoreColumn(name: name, isBoolean: scores.text(2) == "boolean",
                                                          values: []))
                    current = columns.count - 1
                }
                values = columns[current].values.isEmpty
                    ? .init(repeating: RunningVariance(), count: itemCount) : columns[current].values
                columns[current].values = []
            }
            values[i].add(scores.double(1))
        }
        store()
        return rows.columns(scores: columns)
    }

    static func compare(runs: [ExperimentRun], loaded: [RunColumns],
                        details: [(id: String, externalID: String?, input: String?)] = [],
                        options: ComparisonOptions) -> RunComparison {
        var detail = 0
        // Merge the runs' sorted item keys: the union, in order, with each run's position per item.
        // (Hex ids of one width sort like their integers.)
        var itemKeys: [UInt128] = []
        var positions: [[Int?]] = []
        var cursors = [Int](repeating: 0, count: loaded.count)
        while true {
            var next: UInt128?
            for (r, run) in loaded.enumerated() where cursors[r] < run.count {
                let key = run.itemKeys[cursors[r]]
                if next == nil || key < next! { next = key }
            }
            guard let key = next else { break }
            itemKeys.append(key)
            positions.append(loaded.indices.map { r in
                guard cursors[r] < loaded[r].count, loaded[r].itemKeys[cursors[r]] == key else { return nil }
                defer { cursors[r] += 1 }
                return cursors[r]
            })
        }
        let statistics = loaded.map(\.statistics)
        let sortedNames = Set(loaded.flatMap { $0.scores.map(\.name) }).sorted()
        // Per run, the column of each score name (nil when the run lacks it).
        let columnOf: [[Int?]] = loaded.map { run in sortedNames.map { name in run.scores.firstIndex { $0.name == name } } }
        let booleans = sortedNames.indices.map { n in
            loaded.indices.contains { r in columnOf[r][n].map { loaded[r].scores[$0].isBoolean } ?? false }
        }
        let changeIndex = { (change: ScoreChange) in ScoreChange.allCases.firstIndex(of: change)! }
        let lowerIsBetter = sortedNames.map { options.lowerIsBetter.contains($0) }
        var items: [ComparedItem] = []
        items.reserveCapacity(itemKeys.count)
        // Per candidate and score name: paired means and change counts.
        var pairedBaseline = [[[Double]]](repeating: .init(repeating: [], count: sortedNames.count), count: runs.count - 1)
        var pairedCandidate = pairedBaseline
        var counts = [[[Int]]](repeating: .init(repeating: .init(repeating: 0, count: ScoreChange.allCases.count),
                                                 count: sortedNames.count), count: runs.count - 1)
        for (itemIndex, key) in itemKeys.enumerated() {
            let position = positions[itemIndex]
            let outcomes: [ItemOutcome?] = position.enumerated().map { r, p in p.map { ItemOutcome(columns: loaded[r], index: $0) } }
            var changes: [[String: ScoreChange]] = []
            for c in 1..<runs.count {
                var itemChanges: [String: ScoreChange] = [:]
                let basePosition = position[0], candidatePosition = position[c]
                let baseFailed = basePosition.map { loaded[0].errors[$0] == loaded[0].repetitions[$0] }
                let candidateFailed = candidatePosition.map { loaded[c].errors[$0] == loaded[c].repetitions[$0] }
                for (n, name) in sortedNames.enumerated() {
                    let b = basePosition.flatMap { p in columnOf[0][n].flatMap { loaded[0].value($0, p) } }
                    let v = candidatePosition.flatMap { p in columnOf[c][n].flatMap { loaded[c].value($0, p) } }
                    let change: ScoreChange
                    if baseFailed == false, candidateFailed == true, b != nil {
                        change = .newError
                    } else if baseFailed == true, candidateFailed == false, v != nil {
                        change = .fixedError
                    } else if let b, let v {
                        pairedBaseline[c - 1][n].append(b.mean)
                        pairedCandidate[c - 1][n].append(v.mean)
                        var delta = options.tolerance.difference(v.mean, b.mean)
                        if lowerIsBetter[n] { delta = -delta }
                        if delta == 0 {
                            change = .unchanged
                        } else if b.count > 1 && v.count > 1,
                                  abs(delta) <= 1.96 * (b.variance / Double(b.count) + v.variance / Double(v.count)).squareRoot() {
                            change = .withinNoise
                        } else {
                            change = delta > 0 ? .improved : .regressed
                        }
                    } else if b == nil && v == nil {
                        continue
                    } else {
                        change = .missing
                    }
                    itemChanges[name] = change
                    counts[c - 1][n][changeIndex(change)] += 1
                }
                changes.append(itemChanges)
            }
            // Items and details are both in id order: a merge, no lookups.
            let id = UUIDv7.format(bits: key)
            while detail < details.count, details[detail].id < id { detail += 1 }
            let found = detail < details.count && details[detail].id == id ? details[detail] : nil
            items.append(ComparedItem(datasetItemID: id, externalID: found?.externalID, outcomes: outcomes, changes: changes,
                                      inputJSON: found?.input))
        }
        var scores: [ScoreComparison] = []
        let tolerance = options.tolerance
        for candidateIndex in 1..<runs.count {
            for (n, name) in sortedNames.enumerated() {
                // Only scores the baseline or this candidate has.
                guard columnOf[0][n] != nil || columnOf[candidateIndex][n] != nil else { continue }
                let isBoolean = booleans[n]
                let lowerIsBetter = options.lowerIsBetter.contains(name)
                let b = pairedBaseline[candidateIndex - 1][n], c = pairedCandidate[candidateIndex - 1][n]
                // Differences within the tolerance are exactly zero, in every figure below.
                let differences = zip(c, b).map { tolerance.difference($0, $1) }
                func mean(_ r: Int) -> Double? {
                    guard let column = columnOf[r][n] else { return nil }
                    let run = loaded[r]
                    var sum = 0.0, count = 0
                    for i in 0..<run.count { if let v = run.value(column, i) { sum += v.mean; count += 1 } }
                    return count > 0 ? sum / Double(count) : nil
                }
                var byChange: [ScoreChange: Int] = [:]
                for (k, change) in ScoreChange.allCases.enumerated() where counts[candidateIndex - 1][n][k] > 0 {
                    byChange[change] = counts[candidateIndex - 1][n][k]
                }
                let range = options.scoreRanges[name] ?? (isBoolean ? 0...1 : nil)
                // A difference of two values of the range lies within ± its width.
                let differenceRange = range.map { -($0.upperBound - $0.lowerBound)...($0.upperBound - $0.lowerBound) }
                var comparison = ScoreComparison(
                    name: name, candidate: candidateIndex - 1, isBoolean: isBoolean, lowerIsBetter: lowerIsBetter,
                    counts: byChange, baselineMean: mean(0), candidateMean: mean(candidateIndex),
                    pairs: differences.count,
                    meanDifference: differences.isEmpty ? nil : differences.reduce(0, +) / Double(differences.count),
                    meanDifferenceInterval: nil, range: range,
                    wilcoxon: nil, mcNemar: nil, significantRegression: false, significantImprovement: false)
                let worse: Bool
                let better: Bool
                // 0/1 up to the tolerance (a mean of agreeing repetitions, rounded or not).
                func bit(_ v: Double) -> Int? { tolerance.ties(v, 0) ? 0 : tolerance.ties(v, 1) ? 1 : nil }
                let baseBits = b.map(bit), candidateBits = c.map(bit)
                if isBoolean && !baseBits.contains(nil) && !candidateBits.contains(nil) {
                    var cells = [0, 0, 0, 0]  // pass→pass, pass→fail, fail→pass, fail→fail
                    for (x, y) in zip(baseBits, candidateBits) { cells[(1 - x!) * 2 + (1 - y!)] += 1 }
                    let passToFail = cells[1], failToPass = cells[2]
                    let p = PairedTests.mcNemarExact(b: passToFail, c: failToPass)
                    comparison.mcNemar = (passToFail, failToPass, p)
                    comparison.meanDifferenceInterval = PairedTests.pairedProportionInterval(
                        bothPass: cells[0], passToFail: passToFail, failToPass: failToPass, bothFail: cells[3])
                    worse = lowerIsBetter ? failToPass > passToFail : passToFail > failToPass
                    better = lowerIsBetter ? passToFail > failToPass : failToPass > passToFail
                } else {
                    // Booleans averaged over repetitions are proportions: compared like numbers.
                    comparison.isBoolean = false
                    let w = PairedTests.wilcoxonSignedRank(differences, tolerance: tolerance)
                    comparison.wilcoxon = w
                    comparison.meanDifferenceInterval = PairedTests.meanDifferenceInterval(differences, range: differenceRange)
                    worse = lowerIsBetter ? w.wPlus > w.wMinus : w.wMinus > w.wPlus
                    better = lowerIsBetter ? w.wMinus > w.wPlus : w.wPlus > w.wMinus
                }
                if let p = comparison.pValue, p < options.alpha {
                    comparison.significantRegression = worse
                    comparison.significantImprovement = better
                }
                scores.append(comparison)
            }
        }
        let errorComparisons = (1..<runs.count).map { candidateIndex -> ErrorComparison in
            var newErrors = 0, fixedErrors = 0
            for position in positions {
                guard let b = position[0], let c = position[candidateIndex] else { continue }
                let baseFailed = loaded[0].errors[b] == loaded[0].repetitions[b]
                let candidateFailed = loaded[candidateIndex].errors[c] == loaded[candidateIndex].repetitions[c]
                if !baseFailed && candidateFailed { newErrors += 1 }
                if baseFailed && !candidateFailed { fixedErrors += 1 }
            }
            let p = PairedTests.mcNemarExact(b: newErrors, c: fixedErrors)
            return ErrorComparison(candidate: candidateIndex - 1, newErrors: newErrors, fixedErrors: fixedErrors, pValue: p,
                                   significantRegression: newErrors > fixedErrors && p < options.alpha)
        }
        return RunComparison(baseline: runs[0], candidates: Array(runs.dropFirst()), options: options, items: items,
                             scores: scores, runStatistics: statistics, errorComparisons: errorComparisons)
    }
}
