package import Foundation
package import Testing
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A throwaway PostgreSQL cluster for this package's tests: `initdb` into a temporary folder, a
/// server on a free port of 127.0.0.1 with trust authentication on loopback, removed on ``stop()``.
///
/// Only processes are started here (no database driver): `initdb`, `pg_ctl` and `psql`, found on
/// `PATH` or under `/usr/lib/postgresql/*/bin`. PostgreSQL refuses to run as root, so when the tests
/// run as root every server-side program runs as the `postgres` user through `runuser`. Every wait is
/// bounded: a program that does not finish in time is killed and the call throws.
///
/// ```swift
/// @Suite(.enabled(if: PostgresCluster.isAvailable, PostgresCluster.skipReason)) struct MyTests {
///     @Test func something() async throws {
///         let cluster = try await PostgresCluster.shared()
///         let url = try await cluster.createDatabase("t_\(UUID().uuidString.prefix(8))")
///     }
/// }
/// ```
///
/// One cluster per test process is enough (``shared()``); each test makes its own database. If the
/// test process dies without calling ``stop()``, a small watcher started with the cluster stops the
/// server and removes its folder.
package actor PostgresCluster {
    /// Why a cluster could not be set up or driven.
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    /// Where the programs are.
    package struct Binaries: Sendable {
        package var initdb: URL
        package var pgCtl: URL
        package var psql: URL
        /// `runuser`, when this process runs as root.
        package var runuser: URL?
    }

    /// The programs, or nil when some are missing.
    package static let binaries: Binaries? = locateBinaries()

    /// Whether PostgreSQL's programs were found (tests skip otherwise).
    package static var isAvailable: Bool { binaries != nil }

    /// The one line a skipped suite shows.
    package static let skipReason: Comment =
        "PostgreSQL's initdb, pg_ctl and psql were not found on PATH or in /usr/lib/postgresql/*/bin (and runuser, when run as root): PostgreSQL tests skipped"

    package let binaries: Binaries
    /// The cluster's folder (data directory, socket, log).
    package let directory: URL
    /// The TCP port on 127.0.0.1.
    package private(set) var port: Int
    private var running = false
    private var created = false

    private static let sharedCluster = SharedCluster()

    /// The process-wide cluster, started on first use.
    package static func shared() async throws -> PostgresCluster {
        try await sharedCluster.get()
    }

    /// Whether the server syncs its writes to disk (PostgreSQL's defaults). Tests turn it off for speed;
    /// benchmarks keep it on, so their figures are those of a real server.
    package let durable: Bool

    /// A cluster not yet created; ``start()`` creates and starts it.
    package init(durable: Bool = false) throws {
        guard let binaries = Self.binaries else { throw Failure(description: "\(Self.skipReason)") }
        self.binaries = binaries
        self.durable = durable
        directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("xeroml-pg-\(UUID().uuidString.prefix(12))")
        port = 0
    }

    /// `postgres://postgres@127.0.0.1:PORT/NAME`.
    package func url(database: String) -> String {
        "postgres://postgres@127.0.0.1:\(port)/\(database)"
    }

    private var dataDirectory: URL { directory.appendingPathComponent("data") }
    private var logFile: URL { directory.appendingPathComponent("server.log") }

    /// Creates the cluster (first time) and starts its server on a free port.
    package func start() async throws {
        if running { return }
        if !created {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
            try giveToPostgres(directory)
            let result = try await runServerProgram(
                binaries.initdb,
                ["-D", dataDirectory.path, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
                timeout: .seconds(120))
            guard result.status == 0 else {
                throw Failure(description: "initdb failed (\(result.status)): \(result.stderr)")
            }
            created = true
            try startWatcher()
        }
        // A free port can be taken between the probe and the server's bind: try a few. A restart
        // keeps its port, so clients reconnect to the same URL.
        let keepPort = port != 0
        var lastError = ""
        for _ in 0..<(keepPort ? 1 : 3) {
            let candidate = keepPort ? port : try Self.freePort()
            let speed = durable ? "" : " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            let options = "-p \(candidate) -h 127.0.0.1 -k \(directory.path)\(speed) -c max_connections=200"
            let result = try await runServerProgram(
                binaries.pgCtl, ["-D", dataDirectory.path, "-l", logFile.path, "-w", "-t", "60", "-o", options, "start"],
                timeout: .seconds(90))
            if result.status == 0 {
                port = candidate
                running = true
                return
            }
            lastError = "pg_ctl start failed (\(result.status)): \(result.stderr) \(result.stdout) \(log())"
        }
        throw Failure(description: lastError)
    }

    /// Stops the server fast (open connections are closed), keeping its data.
    package func stopServer() async throws {
        guard running else { return }
        let result = try await runServerProgram(
            binaries.pgCtl, ["-D", dataDirectory.path, "-m", "fast", "-w", "-t", "60", "stop"], timeout: .seconds(90))
        guard result.status == 0 else {
            throw Failure(description: "pg_ctl stop failed (\(result.status)): \(result.stderr)")
        }
        running = false
    }

    /// Stops the server, waits `downFor`, and starts it again on the same port.
    package func restart(downFor: Duration = .zero) async throws {
        try await stopServer()
        if downFor > .zero { try await Task.sleep(for: downFor) }
        try await start()
    }

    /// Stops the server and removes the cluster's folder.
    package func stop() async throws {
        try await stopServer()
        try? FileManager.default.removeItem(at: directory)
        created = false
    }

    /// Creates database `name` (letters, digits and `_`) and answers its URL.
    @discardableResult
    package func createDatabase(_ name: String) async throws -> String {
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw Failure(description: "database name \(name) must be letters, digits and _")
        }
        try await psql("CREATE DATABASE \(name)")
        return url(database: name)
    }

    /// Runs `sql` with `psql` in database `database`; answers what it printed (unaligned, tuples only).
    @discardableResult
    package func psql(_ sql: String, database: String = "postgres") async throws -> String {
        guard running else { throw Failure(description: "the PostgreSQL cluster is not running") }
        let result = try await Self.run(
            binaries.psql,
            ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-X", "-A", "-t", "-c", sql],
            environment: ["PGCONNECT_TIMEOUT": "10"], directory: directory, timeout: .seconds(60))
        guard result.status == 0 else {
            throw Failure(description: "psql failed (\(result.status)) on \(sql.prefix(80)): \(result.stderr)")
        }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The server's log, for failure messages.
    package func log() -> String {
        (try? String(contentsOf: logFile, encoding: .utf8)).map { String($0.suffix(2000)) } ?? ""
    }

    // MARK: - Processes

    /// Runs a server-side program as `postgres` when this process is root.
    private func runServerProgram(_ program: URL, _ arguments: [String], timeout: Duration) async throws -> ProcessResult {
        if let runuser = binaries.runuser {
            return try await Self.run(runuser, ["-u", "postgres", "--", program.path] + arguments, directory: directory, timeout: timeout)
        }
        return try await Self.run(program, arguments, directory: directory, timeout: timeout)
    }

    /// Runs `executable` to its end, killing it after `timeout` (then it throws).
    package static func run(_ executable: URL, _ arguments: [String], environment: [String: String] = [:], directory: URL,
                            timeout: Duration) async throws -> ProcessResult {
        let process = try RunningProcess(executable: executable, arguments: arguments,
                                         environment: environment.merging(["LC_ALL": "C"]) { old, _ in old }, directory: directory)
        return try await process.wait(timeout: timeout)
    }

    /// Stops the server and removes the folder once this test process is gone, however it ended.
    private func startWatcher() throws {
        let parent = getpid()
        let stop = binaries.runuser.map { "\($0.path) -u postgres -- " } ?? ""
        let script = """
        exec >/dev/null 2>&1 </dev/null
        while [ -d /proc/\(parent) ]; do sleep 1; done
        \(stop)\(binaries.pgCtl.path) -D \(dataDirectory.path) -m immediate -w -t 30 stop
        rm -rf \(directory.path)
        """
        _ = try RunningProcess(executable: URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", script], directory: directory)
    }

    /// Hands `url` to the `postgres` user when running as root.
    private func giveToPostgres(_ url: URL) throws {
        guard binaries.runuser != nil else { return }
        guard let user = getpwnam("postgres") else { throw Failure(description: "no postgres user to run PostgreSQL as") }
        guard chown(url.path, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
            throw Failure(description: "cannot give \(url.path) to postgres: errno \(errno)")
        }
    }

    /// A port of 127.0.0.1 nobody listens on right now.
    package static func freePort() throws -> Int {
        let (fd, port) = try listenOnLoopback()
        close(fd)
        return Int(port)
    }

    private static func locateBinaries() -> Binaries? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":").map(String.init)
        var folders = path
        if let versions = try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql") {
            // Newest major version first.
            for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) {
                folders.append("/usr/lib/postgresql/\(version)/bin")
            }
        }
        func find(_ name: String, in folders: [String]) -> URL? {
            folders.lazy.map { URL(fileURLWithPath: $0).appendingPathComponent(name) }
                .first { FileManager.default.isExecutableFile(atPath: $0.path) }
        }
        guard let initdb = find("initdb", in: folders) else { return nil }
        // pg_ctl from the same folder as initdb, so the versions match.
        let serverFolder = [initdb.resolvingSymlinksInPath().deletingLastPathComponent().path]
        guard let pgCtl = find("pg_ctl", in: serverFolder) ?? find("pg_ctl", in: folders),
              let psql = find("psql", in: serverFolder) ?? find("psql", in: folders) else { return nil }
        var runuser: URL?
        if geteuid() == 0 {
            guard let found = find("runuser", in: path + ["/usr/sbin", "/sbin"]), getpwnam("postgres") != nil else { return nil }
            runuser = found
        }
        return Binaries(initdb: initdb, pgCtl: pgCtl, psql: psql, runuser: runuser)
    }
}

/// Starts the process-wide cluster once, even when many tests ask at the same time.
private actor SharedCluster {
    private var task: Task<PostgresCluster, any Error>?

    func get() async throws -> PostgresCluster {
        if let task { return try await task.value }
        let task = Task {
            let cluster = try PostgresCluster()
            try await cluster.start()
            return cluster
        }
        self.task = task
        return try await task.value
    }
}
