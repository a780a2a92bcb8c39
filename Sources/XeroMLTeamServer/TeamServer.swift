import XeroMLSyncAPI

/// The team server: receives runs pushed by `xeroml sync push` into PostgreSQL and serves the
/// dashboard's pages per project.
public enum TeamServer {
    /// The sync protocol version this server speaks.
    public static var apiVersion: String { SyncAPI.version }
}
