import Foundation
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
        if let eta = p.estimatedRemaining, !p.isFinished { text += ", ETA \(formatSeconds(eta))" }
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

/// Runs `body` so that Ctrl-C cancels it cleanly (in-flight items are cancelled, committed results
/// stay, the run is marked interrupted); a second Ctrl-C exits at once.
func withInterruptHandling<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
    signal(SIGINT, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
    let task = Task { try await body() }
    source.setEventHandler {
        if task.isCancelled { exit(130) }
        FileHandle.standardError.write(Data("\ninterrupted: stopping; committed results are kept (Ctrl-C again to quit now)\n".utf8))
        task.cancel()
    }
    source.resume()
    defer {
        source.cancel()
        signal(SIGINT, SIG_DFL)
    }
    return try await task.value
}
