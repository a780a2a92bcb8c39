import ArgumentParser
import Foundation
import Logging
import XeroML
import XeroMLDashboard
import XeroMLServer

/// `xeroml ui`: the dashboard over one store file, on this machine by default.
struct UI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ui",
        abstract: "Serve the dashboard of a store: datasets, runs, traces and Compare Runs in the browser.",
        discussion: """
            Reads the file through read-only connections while other processes keep writing runs into it; \
            a running run's page updates itself. Listens on 127.0.0.1 unless --host says otherwise: anyone \
            who can reach the port can read the whole file. Ctrl-C stops it.
            """)

    @OptionGroup var store: StoreOptions

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on (0 picks a free one).")
    var port = 7474

    func validate() throws {
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        guard !host.isEmpty else { throw ValidationError("--host must not be empty") }
    }

    func run() async throws {
        let path = store.path
        // Read-only, as the other read commands: a missing file, a file that is not a XeroML store, a
        // newer schema or one that needs a migration is refused, and nothing creates or changes the file.
        let xeroml = try store.openReadOnly()
        if !DashboardServer.isLoopback(host) {
            FileHandle.standardError.write(Data("""
                warning: listening on \(host), not on this machine only: anyone who can reach port \(port) \
                can read the whole file \(path).\n
                """.utf8))
        }
        var logger = Logger(label: "xeroml.ui")
        logger.logLevel = .warning
        let server = DashboardServer(store: SQLiteDashboardStore(xeroml: xeroml), storeName: path, logger: logger)
        let shownHost = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        let app = server.application(host: host, port: port) { port in
            // Written straight to the descriptor, so a reader of a pipe sees it at once.
            FileHandle.standardOutput.write(Data("XeroML dashboard of \(path) at http://\(shownHost):\(port)/ (Ctrl-C stops it)\n".utf8))
        }
        do {
            try await app.runService()
        } catch {
            throw CommandError("cannot serve the dashboard on \(host):\(port): \(error)")
        }
    }
}
