// A small executable the crash-recovery tests start and kill: it runs a slow, deterministic
// experiment through `runExperiment`, so a test can SIGKILL it mid-run and resume the run.
//
//   xeroml-testhelper PATH DATASET RUN ITEMS DELAY_MS CONCURRENCY REPETITIONS [resume]
//
// The dataset is created with ITEMS items (input i, expected 2·i) when missing. The task sleeps
// DELAY_MS and outputs 2·input. Prints "done <completed>" when the run finishes.
//   xeroml-testhelper no-flush PATH ITEMS
//
// Records ITEMS raw items with `createExperiment` and `runItemRaw`, then returns from main without
// `flush()` or `finish()`: what a forgetful program does. Prints "recorded <n>".
import Foundation
import XeroML

let arguments = CommandLine.arguments
if arguments.count == 4, arguments[1] == "no-flush", let count = Int(arguments[3]) {
    let xeroml = try XeroML(path: arguments[2])
    let experiment = try await xeroml.createExperiment(name: "forgetful")
    for i in 0..<count {
        try await experiment.runItemRaw(input: .int(Int64(i))) { run in
            run.setOutput(.int(Int64(i) * 2))
            run.score(name: "ok", value: true)
        }
    }
    print("recorded \(count)")
    exit(0)
}
guard arguments.count >= 8, let items = Int(arguments[4]), let delay = Int(arguments[5]),
      let concurrency = Int(arguments[6]), let repetitions = Int(arguments[7]) else {
    FileHandle.standardError.write(Data("usage: xeroml-testhelper PATH DATASET RUN ITEMS DELAY_MS CONCURRENCY REPETITIONS [resume]\n".utf8))
    exit(2)
}
let (path, datasetName, runName) = (arguments[1], arguments[2], arguments[3])
let resume = arguments.count > 8 && arguments[8] == "resume"

let xeroml = try XeroML(path: path)
if (try? await xeroml.dataset(named: datasetName)) == nil {
    let lines = (0..<items).map { #"{"id": "\#($0)", "input": \#($0), "expected_output": \#($0 * 2)}"# }
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("xeroml-helper-\(UUID().uuidString).jsonl")
    try lines.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
    try await xeroml.importDataset(name: datasetName, from: file.path)
}
let report = try await xeroml.runExperiment(
    name: runName, datasetName: datasetName, evaluators: [ExactMatch()],
    options: ExperimentOptions(maxConcurrency: concurrency, repetitions: repetitions, resume: resume)
) { run in
    try await Task.sleep(for: .milliseconds(delay))
    run.setOutput(.int(Int64(run.input.doubleValue ?? 0) * 2))
}
print("done \(report.progress.completed) skipped \(report.progress.skipped)")
