import XeroMLSyncAPI

/// Pushes finished runs from a local XeroML file to a team server.
public enum Sync {
    /// The sync protocol version this client speaks.
    public static var apiVersion: String { SyncAPI.version }
}
