import Foundation
import Testing
@testable import XeroML
import XeroMLSQLite
import XeroMLTesting

/// The CLI's paths and errors, through the built `xeroml` binary.
@Suite(.timeLimit(.minutes(3))) struct CLIPathTests {
    @Test func anEmptyOrInMemoryStorePathIsRefusedBeforeAnythingRuns() async throws {
        let empty = try await runCLI(["quickstart", "--db", ""])
        #expect(empty.status == 64)
        #expect(empty.stderr.contains("Error: --db is empty; give the path of a XeroML file"), "\(empty.stderr)")
        #expect(!empty.stdout.contains("Imported"))

        for path in [":memory:", "file::memory:", "file:x?mode=memory"] {
            let memory = try await runCLI(["quickstart", "--db", path])
            #expect(memory.status == 64)
            #expect(memory.stderr.contains("--db \(path) is an in-memory store: it keeps nothing once the command exits"),
                    "\(memory.stderr)")
            #expect(!memory.stdout.contains("Imported"))
        }
        let environment = try await runCLI(["runs", "list"], environment: ["XEROML_DB": ":memory:"])
        #expect(environment.status == 64)
        #expect(environment.stderr.contains("$XEROML_DB :memory: is an in-memory store"), "\(environment.stderr)")
    }

    /// The entry point that prints errors as sentences leaves help and usage errors to the parser.
    @Test func helpAndUsageErrorsAreTheParsers() async throws {
        let help = try await runCLI(["datasets", "import", "--help"])
        #expect(help.status == 0, "\(help.stderr)")
        #expect(help.stdout.contains("name it") == false && help.stdout.contains("--text-columns <columns>"))
        #expect(help.stdout.contains("A text column keeps every cell as"))
        // Every command's options parse together with the shared store options (no name twice).
        for command in [["quickstart"], ["datasets", "import"], ["datasets", "list"], ["datasets", "show"], ["runs", "list"],
                        ["runs", "show"], ["runs", "finish"], ["runs", "abort"], ["compare"], ["gate"], ["eval"],
                        ["judge-cache", "clear"], ["migrate"]] {
            let result = try await runCLI(command + ["--help"])
            #expect(result.status == 0 && result.stdout.contains("--verbose"), "\(command): \(result.stderr)")
        }
        let unknown = try await runCLI(["runs", "list", "--bogus"])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.hasPrefix("Error: Unknown option '--bogus'"))
    }

    /// A typo in the path used to create an empty store and print "No runs"; now every read command
    /// says there is no store there, exits non-zero and leaves the directory as it was.
    @Test func readCommandsOnAMissingPathCreateNothing() async throws {
        let dir = temporaryDirectory()
        let path = dir.appendingPathComponent("tyop.sqlite").path
        let commands: [[String]] = [
            ["runs", "list"], ["runs", "show", "baseline"], ["datasets", "list"], ["datasets", "show", "capitals"],
            ["compare", "a", "b"], ["gate", "b", "--min", "exact_match=0.5"],
        ]
        for command in commands {
            let result = try await runCLI(command + ["--db", path])
            #expect(result.status != 0, "\(command)")
            #expect(result.stderr.contains("Error: no store at \(path): the file does not exist; "
                                           + "create one with `xeroml quickstart --db \(path)`"), "\(command): \(result.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty, "\(command) created a file")
        }
    }

    @Test func aStoreNeedingAnUpgradeAsksForMigrate() async throws {
        let path = temporaryDirectory().appendingPathComponent("old.sqlite").path
        let xeroml = try XeroML(path: path)
        try await xeroml.createDataset(name: "kept")
        let db = try Connection(path: path)
        try db.execute("DELETE FROM xeroml_migrations WHERE name = '0002-cache'; DROP TABLE cache_entries")
        db.close()
        let refused = try await runCLI(["datasets", "list", "--db", path])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("needs an upgrade (0002-cache)") && refused.stderr.contains("xeroml migrate --db \(path)"),
                "\(refused.stderr)")
        let migrated = try await runCLI(["migrate", "--db", path])
        #expect(migrated.status == 0, "\(migrated.stderr)")
        #expect(migrated.stdout.contains("\(path) is up to date."))
        let listed = try await runCLI(["datasets", "list", "--db", path])
        #expect(listed.status == 0 && listed.stdout.contains("kept"), "\(listed.stderr)")
    }

    /// SQLite's own message, extended code and SQL appear only with --verbose.
    @Test func sqlTextOnlyUnderVerbose() async throws {
        let path = writeFile("notes.sqlite", String(repeating: "not a database ", count: 100))
        let plain = try await runCLI(["runs", "list", "--db", path])
        #expect(plain.status == 1)
        #expect(plain.stderr == "Error: \(path) is not an SQLite database, so not a XeroML store; choose another path\n",
                "\(plain.stderr)")
        let verbose = try await runCLI(["runs", "list", "--db", path, "--verbose"])
        #expect(verbose.status == 1)
        #expect(verbose.stderr.contains("Error: \(path) is not an SQLite database"))
        #expect(verbose.stderr.contains("details: SQLite error 26 (file is not a database)"), "\(verbose.stderr)")
        #expect(verbose.stderr.contains("while executing `"))

        // The gate prints its own errors (exit status 2), the same way.
        let gate = try await runCLI(["gate", "r", "--min", "x=1", "--db", path])
        #expect(gate.status == 2)
        #expect(gate.stderr == "Error: \(path) is not an SQLite database, so not a XeroML store; choose another path\n")
    }

    @Test func importsFromStandardInputAndNamesIt() async throws {
        let dir = temporaryDirectory()
        let db = dir.appendingPathComponent("stdin.sqlite").path
        let good = writeFile("good.jsonl", "{\"id\": \"1\", \"input\": \"a\"}\n{\"id\": \"2\", \"input\": 2}\n", in: dir)
        let bad = writeFile("bad.jsonl", "{\"input\": \"a\"}\n{\"input\": 1e999}\n", in: dir)
        let csv = writeFile("p.csv", "input,expected_output\n[INST] hi,[1]\n", in: dir)
        let xeroml = xeromlExecutable().path
        func shell(_ script: String) async throws -> ProcessResult {
            try await RunningProcess(executable: URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", script],
                                     directory: dir).wait()
        }
        // A pipe, with "-".
        let piped = try await shell("cat '\(good)' | '\(xeroml)' datasets import - --name piped --db '\(db)'")
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(piped.stdout.contains("Created dataset piped: 2 created"))
        // /dev/stdin, also a pipe.
        let devStdin = try await shell("cat '\(good)' | '\(xeroml)' datasets import /dev/stdin --name dev --db '\(db)'")
        #expect(devStdin.status == 0, "\(devStdin.stderr)")
        // A redirected file.
        let redirected = try await shell("'\(xeroml)' datasets import - --name redirected --db '\(db)' < '\(good)'")
        #expect(redirected.status == 0, "\(redirected.stderr)")
        // Errors name <stdin> and the line; nothing is written.
        let failed = try await shell("cat '\(bad)' | '\(xeroml)' datasets import - --name failed --db '\(db)'")
        #expect(failed.status == 1)
        #expect(failed.stderr.contains("Error: <stdin>:2: invalid JSON at column 11: number 1e999 is too large"), "\(failed.stderr)")
        let names = try await XeroML(path: db, readOnly: true).datasets().map(\.name).sorted()
        #expect(names == ["dev", "piped", "redirected"])
        // Standard input needs a name; CSV from a pipe needs --format, and --text-columns makes cells text.
        let unnamed = try await shell("cat '\(good)' | '\(xeroml)' datasets import - --db '\(db)'")
        #expect(unnamed.status == 64 && unnamed.stderr.contains("reading standard input needs --name NAME"))
        let refused = try await shell("cat '\(csv)' | '\(xeroml)' datasets import - --name p --format csv --db '\(db)'")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("<stdin>:2: column \"input\" looks like JSON but is not")
                && refused.stderr.contains("--text-columns input"), "\(refused.stderr)")
        let text = try await shell(
            "cat '\(csv)' | '\(xeroml)' datasets import - --name p --format csv --text-columns input --db '\(db)'")
        #expect(text.status == 0, "\(text.stderr)")
        let item = try #require(try await XeroML(path: db, readOnly: true).dataset(named: "p").items.first)
        #expect(item.input == "[INST] hi" && item.expectedOutput == [1])
    }

    /// Read commands work on a store in a directory the user cannot write, and on a read-only file;
    /// writes fail with a sentence. Permissions are not enforced for root, so as root the commands run
    /// as the unprivileged user `nobody` (through `setpriv`).
    @Test func readCommandsWorkOnAReadOnlyStore() async throws {
        let runAs: [String]
        if getuid() != 0 {
            runAs = []
        } else if FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") {
            runAs = ["/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
        } else {
            print("note: running as root without setpriv: the read-only store assertions are skipped")
            return
        }
        func run(_ arguments: [String]) async throws -> ProcessResult {
            let command = runAs + [xeromlExecutable().path] + arguments
            return try await RunningProcess(executable: URL(fileURLWithPath: command[0]), arguments: Array(command.dropFirst()),
                                            directory: URL(fileURLWithPath: "/")).wait()
        }
        let dir = temporaryDirectory()
        let path = dir.appendingPathComponent("ro.sqlite").path
        let quickstart = try await runCLI(["quickstart", "--db", path])
        #expect(quickstart.status == 0, "\(quickstart.stderr)")
        // The last connection to close checkpoints and removes the -wal and -shm files.
        try Connection(path: path).close()
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["ro.sqlite"])
        try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: path)
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: dir.path)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path) }
        let before = try Data(contentsOf: URL(fileURLWithPath: path))

        let list = try await run(["runs", "list", "--db", path])
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.stdout.contains("lookup-v1") && list.stdout.contains("lookup-v2"))
        for command in [["runs", "show", "lookup-v1"], ["datasets", "list"], ["datasets", "show", "capitals"],
                        ["compare", "lookup-v1", "lookup-v2"], ["gate", "lookup-v2", "--min", "exact_match=0.5"]] {
            let result = try await run(command + ["--db", path])
            #expect(result.status == 0, "\(command): \(result.stderr)")
        }
        let write = try await run(["datasets", "import", repositoryRoot.appendingPathComponent("Fixtures/datasets/capitals.jsonl").path,
                                   "--name", "again", "--db", path])
        #expect(write.status == 1)
        #expect(write.stderr.hasPrefix("Error: cannot write to \(path): the database is read-only"), "\(write.stderr)")
        #expect(!write.stderr.contains("PRAGMA") && !write.stderr.contains("SQLite error"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["ro.sqlite"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)

        // A read-only file in a directory the user can write.
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: dir.path)
        let file = try await run(["runs", "list", "--db", path])
        #expect(file.status == 0, "\(file.stderr)")
        #expect(file.stdout.contains("lookup-v2"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }
}
