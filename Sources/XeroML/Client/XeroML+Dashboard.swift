public import Foundation
public import XeroMLSQLite

// What a dashboard over this store needs from the core: read access for its own queries (through the
// client's read-only connections), runs' statuses as the core shows them, and the dashboard's address
// checked as an http(s) URL.

extension XeroML {
    /// Runs `body` on one of the client's read-only connections, inside one read transaction (one
    /// consistent snapshot); cancelling the calling task interrupts the query. For the dashboard's own
    /// queries: nothing run here can change the file or hold a lock that writers wait for.
    @_spi(Dashboard)
    public func read<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        try await store.read(body)
    }

    /// The columns ``displayedStatus(stored:createdAt:ownerHost:ownerPID:ownerProcessStart:heartbeatMicroseconds:)``
    /// reads, of `experiment_runs` aliased `r`.
    @_spi(Dashboard)
    public static let runOwnerColumns = "r.owner_host, r.owner_pid, r.owner_process_start, r.heartbeat_us"

    /// A run's status as ``runs(datasetName:)`` shows it: a run stored as `running` whose owner is gone
    /// reads as `interrupted`. Any other stored text is returned as it is.
    @_spi(Dashboard)
    public static func displayedStatus(stored: String, createdAt: Date, ownerHost: String?, ownerPID: Int64?,
                                       ownerProcessStart: Int64?, heartbeatMicroseconds: Int64?) -> String {
        guard stored == RunStatus.running.rawValue else { return stored }
        if let ownerHost {
            let owner = RunOwner(host: ownerHost, processID: Int(ownerPID ?? 0),
                                 heartbeatAt: heartbeatMicroseconds.map { date(microseconds: $0) }, processStart: ownerProcessStart)
            return owner.isGone() ? RunStatus.interrupted.rawValue : stored
        }
        return Date().timeIntervalSince(createdAt) > Double(RunOwner.staleAfter.components.seconds) ? RunStatus.interrupted.rawValue : stored
    }

    /// Parses text as stored in the file's JSON columns; text that is not JSON becomes a string.
    @_spi(Dashboard)
    public static func parseStoredJSON(_ text: String?) -> JSONValue? { parseStored(text) }

    /// The dashboard address `text` as a base URL.
    ///
    /// - Throws: ``XeroMLError/Code/invalidArgument`` naming ``dashboardEnvironmentVariable`` when
    ///   `text` is not an absolute http or https URL with a host.
    public static func dashboardBaseURL(parsing text: String) throws -> URL {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = url.host, !host.isEmpty
        else {
            throw XeroMLError(.invalidArgument,
                              "\(dashboardEnvironmentVariable) must be an http(s) URL such as http://127.0.0.1:7474, not \"\(text)\"")
        }
        return url
    }

    /// The dashboard address from the environment: `$XEROML_UI_URL` checked as an http(s) URL, else
    /// `http://127.0.0.1:7474`.
    /// - Throws: ``XeroMLError/Code/invalidArgument`` when the variable is set to something else.
    public static func configuredDashboardBaseURL() throws -> URL {
        if let text = ProcessInfo.processInfo.environment[dashboardEnvironmentVariable], !text.isEmpty {
            return try dashboardBaseURL(parsing: text)
        }
        return URL(string: "http://127.0.0.1:7474")!
    }
}
