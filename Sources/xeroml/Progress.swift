import ArgumentParser
import Foundation
import Synchronization
import XeroML
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// Shows experiment progress on standard error: a redrawn bar with rate and ETA on a terminal, plain
/// lines (about one a second) otherwise.
struct ProgressPrinter: Sendable {
    let label: String
    let isTerminal = isatty(STDERR_FILENO) == 1

    /// Consumes `events` until the stream finishes.
    func consume(_ events: AsyncStream<ExperimentProgress>) async {
        var lastLine = ContinuousClock.now - .seconds(10)
        var drewBar = false
        var printedFinal = false
        for await p in events {
            if isTerminal {
                write("\r\u{1B}[2K" + bar(p))
                drewBar = true
            } else if (ContinuousClock.now - lastLine >= .seconds(1) || p.isFinished) && !printedFinal {
                printedFinal = p.isFinished
                lastLine = ContinuousClock.now
                write(line(p) + "\n")
            }
        }
        if drewBar { write("\n") }
    }

    func line(_ p: ExperimentProgress) -> String {
        var text = "\(label): \(p.completed)/\(p.total)"
        if p.total > 0 { text += String(format: " (%.0f%%)", Double(p.completed) / Double(p.total) * 100) }
        text += String(format: ", %.0f items/s", p.itemsPerSecond)
        if p.failed > 0 { text += ", \(p.failed) failed" }
        if p.retries > 0 { text += ", \(p.retries) retries" }
        if p.skipped > 0 { text += ", \(p.skipped) already done" }
        if let eta = p.estimatedRemaining, !p.isFinished, p.pausedFor == nil { text += ", ETA \(formatSeconds(eta))" }
        if let pause = p.pausedFor { text += ", paused \(formatSeconds(pause)) (the server asked to wait: Retry-After)" }
        if let failure = p.writeFailure { text += ", STOPPING: results cannot be stored (\(failure.prefix(160)))" }
        return text
    }

    func bar(_ p: ExperimentProgress) -> String {
        let width = 24
        let fraction = p.total > 0 ? min(1, Double(p.completed) / Double(p.total)) : 1
        let filled = Int((fraction * Double(width)).rounded(.down))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] " + line(p)
    }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}

func formatSeconds(_ d: Duration) -> String {
    let s = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    if s < 1 { return String(format: "%.1f ms", s * 1000) }
    if s < 60 { return String(format: "%.1fs", s) }
    return String(format: "%dm%02ds", Int(s) / 60, Int(s) % 60)
}

/// The signal that interrupted the last ``withInterruptHandling(_:)`` body, if any.
private let interruptingSignal = Mutex<Int32?>(nil)

/// The exit status after an interruption: 128 + the signal (130 for Ctrl-C, 143 for SIGTERM, 129 for
/// SIGHUP), as shells report a process ended by that signal.
var interruptedExitCode: ExitCode { ExitCode(128 + (interruptingSignal.withLock { $0 } ?? SIGINT)) }

/// The last signal the handler caught, and how many it caught: written by the signal handler
/// (lock-free atomics are safe there), read by the watcher of ``withInterruptHandling(_:)``.
private let caughtSignal = Atomic<Int32>(0)
private let caughtSignals = Atomic<Int>(0)

/// The process's handler for SIGINT, SIGTERM and SIGHUP while a run goes on: it only records the
/// signal. (A dispatch signal source needs the signals ignored first and registers its own handler
/// later, on another thread; a signal arriving in between, on a loaded machine, was lost.)
private func recordSignal(_ signo: Int32) {
    caughtSignal.store(signo, ordering: .relaxed)
    caughtSignals.add(1, ordering: .releasing)
}

/// Runs `body` so that Ctrl-C, SIGTERM (what CI runners and `kill` send) and SIGHUP (a closed
/// terminal) cancel it cleanly: in-flight items are cancelled, every finished result is written, the
/// run is marked interrupted. A second signal a quarter of a second or more after the first exits at
/// once; one sooner is the same interruption delivered twice (a wrapper such as `timeout` or `make`
/// passes a signal on to the process and to its process group) and is ignored.
func withInterruptHandling<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let task = Task { try await body() }
    // Both globals are made before the handler can run (a lazy global's first use is not safe there).
    let seenBefore = caughtSignals.load(ordering: .acquiring)
    _ = caughtSignal.load(ordering: .relaxed)
    for signo in [SIGINT, SIGTERM, SIGHUP] { signal(signo, recordSignal) }
    let watcher = Task.detached {
        var seen = seenBefore
        var firstAt: ContinuousClock.Instant?
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
            let count = caughtSignals.load(ordering: .acquiring)
            guard count != seen else { continue }
            seen = count
            let signo = caughtSignal.load(ordering: .relaxed)
            let now = ContinuousClock.now
            if let firstAt {
                guard now - firstAt >= .milliseconds(250) else { continue }
                fflush(nil)  // every stream, standard output among them
                exit(128 + signo)
            }
            firstAt = now
            interruptingSignal.withLock { $0 = signo }
            let name = signo == SIGINT ? "Ctrl-C" : signo == SIGTERM ? "SIGTERM" : "SIGHUP"
            FileHandle.standardError.write(Data(
                "\ninterrupted (\(name)): stopping; finished results are written (\(name == "Ctrl-C" ? "Ctrl-C" : "a signal") again to quit now)\n".utf8))
            task.cancel()
        }
    }
    let result = await task.result
    // An interrupted command is about to say so and exit: the signals stay handled until then, so that
    // one more (the same interruption delivered twice, or an impatient second Ctrl-C) cannot end the
    // process by default before it has written that the run was interrupted.
    if interruptingSignal.withLock({ $0 }) == nil {
        watcher.cancel()
        for signo in [SIGINT, SIGTERM, SIGHUP] { signal(signo, SIG_DFL) }
    }
    return try result.get()
}
