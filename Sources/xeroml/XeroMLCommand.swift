import ArgumentParser
import Foundation
import XeroML
import XeroMLSQLite

@main
struct XeroMLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xeroml",
        abstract: "XeroML: a local-first LLM evaluation engine.",
        discussion: """
            Every command works on one SQLite file: --db PATH, else $XEROML_DB, else ./xeroml.sqlite.
            Read commands (runs list|show, datasets list|show, compare, gate) open it read-only: they \
            never create it, never change it, and work on a file you cannot write.
            """,
        version: XeroML.version,
        subcommands: [Quickstart.self, Datasets.self, Runs.self, Compare.self, GateCommand.self, Eval.self,
                      JudgeCacheCommand.self, Migrate.self, UI.self, SyncCommand.self]
    )

    /// Parses and runs the command like the default entry point, but prints errors for people: a
    /// sentence, with SQLite's message, extended code and SQL only under `--verbose`.
    static func main() async {
        var command: any ParsableCommand
        do {
            command = try await asyncParseAsRoot(nil)
        } catch {
            exit(withError: error)  // usage errors, help and validation, as the parser prints them
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: PresentedError.wrapping(error, verbose: StoreOptions.verboseRequested(in: command)))
        }
    }
}

/// The store options shared by every command.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "The XeroML file (default: $XEROML_DB, else xeroml.sqlite).")
    var db: String?

    @Flag(name: .long, help: """
        More detail: an error with its technical details (SQLite's message, extended code and SQL); \
        after eval, the full error text of every failed item.
        """)
    var verbose = false

    var path: String { db ?? XeroML.configuredPath }

    /// How the path was given, for messages.
    private var origin: String { db != nil ? "--db" : "$\(XeroML.environmentVariable)" }

    func validate() throws {
        if db?.isEmpty == true {
            throw ValidationError("--db is empty; give the path of a XeroML file, e.g. --db evals.sqlite")
        }
        if XeroML.isInMemory(path: path) {
            throw ValidationError("""
                \(origin) \(path) is an in-memory store: it keeps nothing once the command exits; \
                give a file path, e.g. --db evals.sqlite
                """)
        }
    }

    /// Opens the store for reading and writing, creating it when missing (write commands).
    func open() throws -> XeroML { try XeroML(path: path) }

    /// Opens an existing store read-only (read commands): never creates, migrates or changes the file.
    func openReadOnly() throws -> XeroML {
        do {
            return try XeroML(path: path, readOnly: true)
        } catch let error as XeroMLError where error.code == .storeNotFound {
            throw CommandError("""
                \(error.message); create one with `xeroml quickstart --db \(path)` or \
                `xeroml datasets import FILE --db \(path)`, or name another file with --db
                """)
        }
    }

    /// Whether the parsed command has a ``StoreOptions`` with `--verbose` set.
    static func verboseRequested(in command: any ParsableCommand) -> Bool {
        Mirror(reflecting: command).children.contains { child in
            (child.value as? OptionGroup<StoreOptions>)?.wrappedValue.verbose == true
        }
    }

    /// How `error` reads for people: its sentence, and under `--verbose` its technical details.
    func describe(_ error: any Error) -> String {
        PresentedError.wrapping(error, verbose: verbose).localizedDescription
    }
}

/// An error as the CLI prints it: the error's sentence (its `LocalizedError` description), and, when
/// `--verbose` is given, the technical details on the lines after it. SQL text appears only there.
struct PresentedError: LocalizedError {
    var sentence: String
    var details: String?

    var errorDescription: String? {
        guard let details else { return sentence }
        return "\(sentence)\n  details: \(details)"
    }

    /// `error` ready to print; errors of the argument parser (usage, help, exit codes) pass unchanged.
    static func wrapping(_ error: any Error, verbose: Bool) -> any Error {
        // The parser's own errors (usage, help requests, exit codes, validation) are printed by it.
        if error is PresentedError || String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") { return error }
        let sentence = (error as? any LocalizedError)?.errorDescription ?? String(describing: error)
        var details: String?
        if verbose {
            switch error {
            case let error as XeroMLError: details = error.technicalDetails
            case let error as SQLiteError: details = error.description
            case is CommandError: details = nil
            default: details = "\(type(of: error)): \(String(reflecting: error))"
            }
        }
        return PresentedError(sentence: sentence, details: details)
    }
}

/// `xeroml migrate`: brings a store's format up to date; read commands never do.
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Upgrade a store written by an older XeroML to this version's format.",
        discussion: """
            Read commands open the store read-only and never upgrade it: they ask for this command \
            when the file needs it. Write commands (import, eval, quickstart) upgrade it themselves.
            """)
    @OptionGroup var store: StoreOptions

    func run() async throws {
        guard FileManager.default.fileExists(atPath: store.path) else {
            throw CommandError("no store at \(store.path); nothing to upgrade")
        }
        _ = try await XeroML.open(path: store.path)
        print("\(store.path) is up to date.")
    }
}

/// How a command runs a dataset: shared by every command that runs experiments.
struct RunOptions: ParsableArguments {
    @Option(help: "Items run at the same time.")
    var concurrency = 4

    @Option(help: "Runs per item.")
    var repetitions = 1

    func validate() throws {
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
    }
}

/// A command failure with a message for the user; exits with status 1.
struct CommandError: Error, CustomStringConvertible, LocalizedError {
    var description: String
    init(_ description: String) { self.description = description }
    var errorDescription: String? { description }
}
