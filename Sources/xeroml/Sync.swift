import ArgumentParser
import Foundation
import XeroML
import XeroMLSync

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Push finished runs to a team server (xeroml-server), and show what was pushed.",
        discussion: """
            Only finished runs are pushed, with their dataset items, traces, observations, run items and \
            scores. A push that was interrupted resumes where it stopped; a run already synced sends nothing. \
            See docs/sync.md.
            """,
        subcommands: [Push.self, Status.self])

    /// Where to push, shared by the subcommands.
    struct ServerOptions: ParsableArguments {
        @Option(help: "The team server's address, e.g. https://xeroml.example.com (default: $XEROML_SYNC_URL).")
        var server: String?

        @Option(help: "The environment variable that holds the project key (default: XEROML_API_KEY).")
        var apiKeyEnv = "XEROML_API_KEY"

        var serverURL: String? { server ?? ProcessInfo.processInfo.environment["XEROML_SYNC_URL"] }

        func syncServer() throws -> SyncServer {
            guard let text = serverURL, !text.isEmpty else {
                throw ValidationError("name the team server with --server URL (or set XEROML_SYNC_URL)")
            }
            guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
                  url.host?.isEmpty == false else {
                throw ValidationError("--server \(text) is not an http:// or https:// address")
            }
            guard let key = ProcessInfo.processInfo.environment[apiKeyEnv], !key.isEmpty else {
                throw ValidationError("""
                    no project key in $\(apiKeyEnv); create one with `xeroml-server keys create --project NAME` \
                    and export it, or name another variable with --api-key-env
                    """)
            }
            return SyncServer(url: url, apiKey: key)
        }
    }

    struct Push: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Push runs to a team server.",
            discussion: """
                Exit status: 0 when every named run is synced (or was already), 1 when a push failed \
                (run the command again to resume it), 64 for a usage error. Running and interrupted runs \
                are skipped with the reason.
                """)
        @OptionGroup var store: StoreOptions
        @OptionGroup var target: ServerOptions
        @Argument(help: "Runs to push: ids, id prefixes of 8+ characters, or names.") var runs: [String] = []
        @Flag(help: "Push every finished run of the file.") var all = false
        @Option(help: "Attempts per request before a push gives up on a transient failure.") var maxAttempts = 10
        @Option(help: "Run items per chunk at most (smaller chunks suit slow links and strict proxies).") var chunkItems = 1_000
        @Option(help: "Approximate bytes of JSON per chunk at most, before compression.") var chunkBytes = 4 << 20

        func validate() throws {
            if runs.isEmpty && !all { throw ValidationError("name the runs to push, or give --all") }
            if !runs.isEmpty && all { throw ValidationError("give runs or --all, not both") }
            guard maxAttempts >= 1 else { throw ValidationError("--max-attempts must be at least 1") }
            guard chunkItems >= 1 else { throw ValidationError("--chunk-items must be at least 1") }
            guard chunkBytes >= 1024 else { throw ValidationError("--chunk-bytes must be at least 1024") }
        }

        func run() async throws {
            let server = try target.syncServer()
            // A push reads runs that exist: a mistyped --db is an error, never a new empty file.
            guard FileManager.default.fileExists(atPath: store.path) else {
                throw CommandError("no store at \(store.path); name the file that holds the runs with --db (or $XEROML_DB)")
            }
            let xeroml = try store.open()
            let progress = SyncProgressLine()
            let options = SyncOptions(limits: ChunkLimits(runItems: chunkItems, bytes: chunkBytes),
                                      retry: SyncRetryPolicy(maxAttempts: maxAttempts))
            let report = try await xeroml.sync(to: server, runs: all ? nil : runs, options: options) { update in
                progress.show(update)
            }
            progress.clear()
            if report.results.isEmpty { print("No runs in \(store.path).") }
            var (pushed, unchanged, skipped) = (0, 0, 0)
            for result in report.results {
                switch result.outcome {
                case .pushed:
                    pushed += 1
                    let resumed = result.resumedAtChunk > 0 ? ", resumed at chunk \(result.resumedAtChunk)" : ""
                    print("pushed   \(result.runName): \(result.runItemsSent) items in \(result.chunksSent) chunks, "
                          + "\(formatBytes(result.bytesSent))\(resumed)" + (result.remoteURL.map { "  \($0)" } ?? ""))
                    if let reason = result.pushedAgainBecause { print("         pushed again: \(reason)") }
                case .alreadySynced:
                    unchanged += 1
                    print("synced   \(result.runName): already on the server, nothing sent" + (result.remoteURL.map { "  \($0)" } ?? ""))
                case .skipped(let reason):
                    skipped += 1
                    print("skipped  \(result.runName): \(reason)")
                case .failed(let error):
                    print("failed   \(result.runName): \(error.message)")
                }
            }
            let failed = report.failures.count
            print("\(pushed) pushed, \(unchanged) already synced, \(skipped) skipped, \(failed) failed")
            if failed > 0 {
                let transient = report.failures.contains { if case .failed(let e) = $0.outcome { e.isTransient } else { false } }
                if transient { print("Run the same command again to resume: acknowledged chunks are not sent again.") }
                throw ExitCode(1)
            }
            if !all && skipped > 0 {
                // Runs named on purpose and not pushed: the command did not do what it was asked.
                FileHandle.standardError.write(Data(
                    "xeroml sync push: \(skipped) of the named runs \(skipped == 1 ? "was" : "were") not pushed (see above); exit status 1\n".utf8))
                throw ExitCode(1)
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show each run's sync state.")
        @OptionGroup var store: StoreOptions
        @Option(help: "Only the state with this server (default: $XEROML_SYNC_URL, else every server).")
        var server: String?

        func run() async throws {
            let xeroml = try store.openReadOnly()
            let serverURL = (server ?? ProcessInfo.processInfo.environment["XEROML_SYNC_URL"])
                .flatMap { URL(string: $0) }.map { SyncServer(url: $0, apiKey: "").normalizedURL }
            let states = try await xeroml.syncStatus(server: serverURL)
            guard !states.isEmpty else { print("No runs in \(store.path)."); return }
            var table = Table(headers: ["RUN", "DATASET", "RUN STATUS", "SERVER", "SYNC", "CHUNKS", "ITEMS", "ATTEMPTS", "LAST ERROR"])
            for state in states {
                let sync = state.runStatus == .finished || state.status != .pending ? state.status.rawValue : "not pushable"
                table.append([state.runName, state.datasetName ?? "-", state.runStatus.rawValue, state.server ?? "-", sync,
                              "\(state.chunksAcknowledged)", "\(state.runItemsSent)", "\(state.attempts)",
                              state.lastError.map { String($0.prefix(80)) } ?? "-"])
            }
            print(table.render())
        }
    }
}

/// One progress line on standard error while a push runs (only on a terminal).
final class SyncProgressLine: Sendable {
    private let terminal = isatty(STDERR_FILENO) == 1

    func show(_ update: SyncProgress) {
        guard terminal else {
            if let retrying = update.retrying { FileHandle.standardError.write(Data("\(update.runName): \(retrying.prefix(300))\n".utf8)) }
            return
        }
        let line = update.retrying.map { "\(update.runName): retrying, \($0)" }
            ?? "\(update.runName): \(update.runItemsSent)/\(update.runItemCount) items, \(update.chunksAcknowledged) chunks"
        FileHandle.standardError.write(Data("\r\u{1B}[2K\(line.prefix(160))".utf8))
    }

    func clear() {
        if terminal { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
    }
}

private func formatBytes(_ count: Int) -> String {
    if count < 1024 { return "\(count) B" }
    if count < 1024 * 1024 { return String(format: "%.1f KB", Double(count) / 1024) }
    return String(format: "%.1f MB", Double(count) / 1024 / 1024)
}
