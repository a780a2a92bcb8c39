#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
#if os(Linux)
@preconcurrency import Dispatch
#else
import Dispatch
#endif

/// A connection confined to its own serial dispatch queue.
///
/// Every call runs on the queue's thread, one at a time, so the `SQLITE_OPEN_NOMUTEX` connection is
/// never used by two threads at once and blocking SQLite calls stay off Swift's cooperative pool.
/// Bodies are synchronous closures: a transaction cannot be split by an `await`.
///
/// `@unchecked Sendable`: the only mutable state is the connection, and it is touched exclusively from
/// `queue` (every method dispatches onto it); the interrupt handle is thread-safe by SQLite's contract.
///
/// ## Topics
/// ### Running work
/// - ``run(interruptible:_:)``
/// - ``sync(_:)``
public final class DatabaseQueue: @unchecked Sendable {
    /// How urgently the queue's work runs relative to other threads.
    public enum Priority: Sendable {
        case normal
        case background
    }

    private let queue: DispatchQueue
    private let connection: Connection
    private let interruptHandle: InterruptHandle

    /// Opens a connection to `path` confined to a new serial queue.
    ///
    /// - Parameter priority: ``Priority/background`` runs the queue below the tasks that feed it, so
    ///   on a busy machine they keep their cores (used by the store's writer).
    public init(path: String, mode: Connection.Mode = .readWrite, label: String = "xeroml.sqlite",
                busyTimeoutMilliseconds: Int32 = 5_000, priority: Priority = .normal) throws(SQLiteError) {
        self.queue = DispatchQueue(label: label, qos: priority == .background ? .utility : .userInitiated)
        let result: Result<Connection, SQLiteError> = queue.sync {
            do throws(SQLiteError) {
                return .success(try Connection(path: path, mode: mode, busyTimeoutMilliseconds: busyTimeoutMilliseconds))
            } catch { return .failure(error) }
        }
        self.connection = try result.get()
        self.interruptHandle = connection.interruptHandle
    }

    // No deinit: every queued job retains `self`, so when the last reference goes no job can be using
    // the connection, and `Connection.deinit` closes it on whichever thread released it.

    /// Runs `body` on the queue and returns its result.
    ///
    /// With `interruptible`, cancelling the calling task stops the running statement, which then fails
    /// with ``SQLiteError/Code/interrupt``: at once through `sqlite3_interrupt`, and, should the
    /// cancellation land before the statement started (when `sqlite3_interrupt` has nothing to stop),
    /// through a progress handler that checks the cancellation every few thousand virtual-machine
    /// steps. Use it for reads; a queue shared by several callers should not be interruptible.
    public func run<T: Sendable>(interruptible: Bool = false,
                                 _ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        guard interruptible else {
            return try await withCheckedThrowingContinuation { continuation in
                self.queue.async { continuation.resume(with: Result { try body(self.connection) }) }
            }
        }
        try Task.checkCancellation()
        let handle = interruptHandle
        let cancelled = CancellationFlag()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                self.queue.async {
                    continuation.resume(with: Result {
                        try self.connection.stoppable(by: cancelled) { try body(self.connection) }
                    })
                }
            }
        } onCancel: {
            cancelled.set()
            handle.interrupt()
        }
    }

    /// Runs `body` on the queue, blocking the calling thread until it returns.
    ///
    /// For command-line tools and set-up code; never call it from the cooperative pool in a loop.
    public func sync<T>(_ body: (Connection) throws -> T) rethrows -> T {
        try queue.sync { try body(connection) }
    }

    /// Schedules `body` on the queue without waiting.
    public func async(_ body: @escaping @Sendable (Connection) -> Void) {
        queue.async { body(self.connection) }
    }
}
