import ArgumentParser
import XeroML

@main
struct XeroMLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xeroml",
        abstract: "XeroML: a local-first LLM evaluation engine.",
        discussion: """
            Every command works on one SQLite file: --db PATH, else $XEROML_DB, else ./xeroml.sqlite.
            """,
        version: XeroML.version,
        subcommands: [Quickstart.self, Datasets.self, Runs.self, Compare.self, GateCommand.self, Eval.self, JudgeCacheCommand.self]
    )
}

/// The store option shared by every command.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "The XeroML file (default: $XEROML_DB, else xeroml.sqlite).")
    var db: String?

    var path: String { db ?? XeroML.configuredPath }

    func open() throws -> XeroML { try XeroML(path: path) }
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
struct CommandError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
