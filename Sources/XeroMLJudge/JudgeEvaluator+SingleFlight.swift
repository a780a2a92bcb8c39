import Synchronization

/// Identical judge requests in flight at the same moment: the first caller (the leader) answers, the
/// others wait for its outcome instead of asking the endpoint again.
///
/// A flight is keyed by the store it caches into and the judge cache key, so two stores never share
/// an answer. It exists only while its leader works, and the leader holds its store for that time,
/// so a store's `ObjectIdentifier` cannot be reused by another store while a flight names it.
///
/// Rule: the lock is held only to update the table; continuations are resumed after it is released.
final class JudgeFlights: Sendable {
    /// The table every judge in the process shares (flights are scoped by store in their key).
    static let shared = JudgeFlights()

    /// A store and a judge cache key.
    struct Key: Hashable, Sendable {
        var store: ObjectIdentifier
        var cacheKey: String
    }

    /// What the leader got from the cache or the endpoint.
    struct Answer: Sendable {
        /// The reply text.
        var content: String
        /// The model that answered.
        var model: String
        /// The generation of the call that got the answer, carrying its tokens and cost; `nil` when
        /// the answer came from the cache.
        var observationID: String?
    }

    /// How a flight ended, as told to its waiters.
    enum Outcome: Sendable {
        /// The leader has an answer: the waiters use it.
        case answered(Answer)
        /// The leader's call failed after its retries: the waiters fail with the same error.
        case failed(any Error)
        /// The leader was cancelled: the waiters try again, one of them as the new leader.
        case abandoned
    }

    /// What a caller of ``join(_:)`` does next.
    enum Turn: Sendable {
        /// No identical request is in flight: ask, then call ``finish(_:with:)`` whatever happens.
        case lead
        /// An identical request was in flight and ended this way.
        case wait(Outcome)
        /// The caller's task was cancelled before the flight ended.
        case cancelled
    }

    private struct State {
        /// The waiters of each flight in progress; a key is present while its leader works.
        var flights: [Key: [Int: CheckedContinuation<Turn, Never>]] = [:]
        /// Callers between taking a ticket and registering (cancellation can land in between).
        var joining: Set<Int> = []
        /// Callers cancelled while in `joining`.
        var cancelledEarly: Set<Int> = []
        var nextTicket = 0
    }

    private let state = Mutex(State())

    /// Leads the flight of `key`, or waits for the one in progress to end.
    ///
    /// Cancelling the caller while it waits returns ``Turn/cancelled`` at once and leaves the flight
    /// and its other waiters alone.
    func join(_ key: Key) async -> Turn {
        let ticket = state.withLock { state in
            defer { state.nextTicket += 1 }
            state.joining.insert(state.nextTicket)
            return state.nextTicket
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Turn, Never>) in
                let now: Turn? = state.withLock { state in
                    state.joining.remove(ticket)
                    if state.cancelledEarly.remove(ticket) != nil { return .cancelled }
                    guard state.flights[key] != nil else {
                        state.flights[key] = [:]
                        return .lead
                    }
                    state.flights[key]?[ticket] = continuation
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiting: CheckedContinuation<Turn, Never>? = state.withLock { state in
                if state.joining.contains(ticket) {
                    state.cancelledEarly.insert(ticket)
                    return nil
                }
                return state.flights[key]?.removeValue(forKey: ticket)
            }
            waiting?.resume(returning: .cancelled)
        }
    }

    /// Ends the flight of `key` (called once by its leader) and tells every waiter `outcome`.
    func finish(_ key: Key, with outcome: Outcome) {
        let waiters = state.withLock { $0.flights.removeValue(forKey: key) } ?? [:]
        for continuation in waiters.values { continuation.resume(returning: .wait(outcome)) }
    }

    /// The flights of `store` in progress and how many callers wait for them. For tests.
    func inFlight(store: ObjectIdentifier) -> (flights: Int, waiters: Int) {
        state.withLock { state in
            let flights = state.flights.filter { $0.key.store == store }
            return (flights.count, flights.values.reduce(0) { $0 + $1.count })
        }
    }
}
