import Foundation
import Synchronization

/// An error that tells the runner whether trying again may help.
///
/// Conform your own errors (or throw ``RateLimitError`` / ``TransientError``) so
/// ``XeroML/runExperiment(name:datasetName:description:metadata:evaluators:runEvaluators:options:task:)``
/// retries them with backoff. Errors that do not conform are never retried.
public protocol RetryableError: Error {
    /// Whether another attempt may succeed. Default: `true`.
    var isRetryable: Bool { get }
    /// The wait the other side asked for (an HTTP `Retry-After`), if any. Default: `nil`.
    var retryAfter: Duration? { get }
    /// Whether this is a rate limit (HTTP 429): the shared ``AdaptiveLimiter`` then backs off. Default: `false`.
    var isRateLimit: Bool { get }
}

extension RetryableError {
    public var isRetryable: Bool { true }
    public var retryAfter: Duration? { nil }
    public var isRateLimit: Bool { false }
}

/// A rate limit (HTTP 429): retried after `retryAfter` (or the backoff), and the limiter backs off.
public struct RateLimitError: RetryableError, CustomStringConvertible {
    public var retryAfter: Duration?
    public var message: String
    public var isRateLimit: Bool { true }
    public init(retryAfter: Duration? = nil, message: String = "rate limited") {
        self.retryAfter = retryAfter
        self.message = message
    }
    public var description: String {
        retryAfter.map { "\(message) (retry after \(formatDuration($0)))" } ?? message
    }
}

/// A transient failure (HTTP 5xx, a dropped connection): retried with backoff.
public struct TransientError: RetryableError, CustomStringConvertible {
    public var message: String
    public var retryAfter: Duration?
    public init(_ message: String, retryAfter: Duration? = nil) {
        self.message = message
        self.retryAfter = retryAfter
    }
    public var description: String { message }
}

/// The task of an item ran longer than ``ExperimentOptions/timeout``. Retryable.
public struct TaskTimeoutError: RetryableError, CustomStringConvertible {
    public var timeout: Duration
    public var description: String { "timed out after \(formatDuration(timeout))" }
}

/// How failed attempts are retried: exponential backoff with jitter, honouring `Retry-After`.
public struct RetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first included. 1 means no retry.
    public var maxAttempts: Int
    /// The wait before the second attempt.
    public var initialBackoff: Duration
    /// The longest wait between attempts (a `Retry-After` may ask for longer and is honoured).
    public var maxBackoff: Duration
    /// The factor between consecutive waits.
    public var multiplier: Double
    /// Random spread of each wait, as a fraction: 0.2 waits between 80% and 120% of the backoff.
    public var jitter: Double
    /// The longest `Retry-After` honoured: an error asking for a longer wait is not retried (the item
    /// records the error instead of stalling the run).
    public var maxRetryAfter: Duration

    public init(maxAttempts: Int = 3, initialBackoff: Duration = .milliseconds(500), maxBackoff: Duration = .seconds(30),
                multiplier: Double = 2, jitter: Double = 0.2, maxRetryAfter: Duration = .seconds(120)) {
        self.maxRetryAfter = maxRetryAfter
        self.maxAttempts = max(1, maxAttempts)
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
        self.multiplier = multiplier
        self.jitter = min(max(jitter, 0), 1)
    }

    /// No retries.
    public static let none = RetryPolicy(maxAttempts: 1)

    /// Whether `error` after attempt number `attempt` (1-based) should be retried.
    public func shouldRetry(_ error: any Error, attempt: Int) -> Bool {
        guard attempt < maxAttempts, let retryable = error as? any RetryableError else { return false }
        if let wait = retryable.retryAfter, wait > maxRetryAfter { return false }
        return retryable.isRetryable
    }

    /// The wait after attempt number `attempt` (1-based): `initialBackoff · multiplier^(attempt−1)`,
    /// spread by `jitter`, capped at `maxBackoff`, and never shorter than `retryAfter`.
    public func delay(afterAttempt attempt: Int, retryAfter: Duration?, using random: inout some RandomNumberGenerator) -> Duration {
        let base = initialBackoff.seconds * pow(multiplier, Double(max(0, attempt - 1)))
        let spread = jitter > 0 ? Double.random(in: (1 - jitter)...(1 + jitter), using: &random) : 1
        let wait = min(base * spread, maxBackoff.seconds)
        return .seconds(max(wait, retryAfter?.seconds ?? 0))
    }
}

/// Runs `body`, failing with ``TaskTimeoutError`` when it takes longer than `timeout`. The body is
/// cancelled on timeout; a body that ignores cancellation keeps running until it returns.
func withTimeout<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw CancellationError() }
        guard let value = first else { throw TaskTimeoutError(timeout: timeout) }
        return value
    }
}

/// A small seedable generator (SplitMix64), so jitter is reproducible with a seed.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A concurrency limit that adapts to rate limits: it halves on a rate-limit error (multiplicative
/// decrease), pauses new work for the `Retry-After` the server asked for, and grows by one after each
/// full window of successes (additive increase) back up to its maximum.
///
/// Share one limiter between experiments that call the same provider (for example from parallel
/// tests): together they stay within what the provider accepts.
///
/// ```swift
/// let limiter = AdaptiveLimiter(maximum: 32)
/// var options = ExperimentOptions(maxConcurrency: 32)
/// options.limiter = limiter
/// ```
public final class AdaptiveLimiter: Sendable {
    /// What happened to an attempt that held a permit.
    public enum Outcome: Sendable {
        case success
        case failure
        case rateLimited(retryAfter: Duration?)
    }

    private struct State {
        var limit: Double
        var inUse = 0
        var successes = 0
        var pausedUntil: ContinuousClock.Instant?
        var lastDecrease: ContinuousClock.Instant?
        var waiters: [(id: Int, continuation: CheckedContinuation<Void, Never>)] = []
        var nextWaiterID = 0
    }

    /// The most permits ever handed out at once.
    public let maximum: Int
    /// The fewest: the limit never drops below it.
    public let minimum: Int
    private let state: Mutex<State>
    private let clock = ContinuousClock()

    /// - Parameters:
    ///   - maximum: the upper bound of the limit.
    ///   - initial: the starting limit (default: `maximum`).
    ///   - minimum: the lower bound (default 1).
    public init(maximum: Int, initial: Int? = nil, minimum: Int = 1) {
        self.maximum = max(1, maximum)
        self.minimum = max(1, min(minimum, self.maximum))
        state = Mutex(State(limit: Double(min(max(initial ?? maximum, self.minimum), self.maximum))))
    }

    /// The current limit.
    public var currentLimit: Int { state.withLock { Int($0.limit) } }
    /// Permits held now.
    public var inUse: Int { state.withLock { $0.inUse } }
    /// How long new work stays paused because a server asked to wait (`Retry-After`), or `nil`.
    public var pauseRemaining: Duration? {
        let now = clock.now
        return state.withLock { s in s.pausedUntil.flatMap { $0 > now ? $0 - now : nil } }
    }

    /// Waits for a permit. Throws `CancellationError` when the task is cancelled while waiting.
    public func acquire() async throws {
        enum Action { case acquired, sleep(ContinuousClock.Instant), wait }
        while true {
            try Task.checkCancellation()
            let now = clock.now
            let action: Action = state.withLock { s in
                if let until = s.pausedUntil, until > now { return .sleep(until) }
                s.pausedUntil = nil
                if s.inUse < Int(s.limit) {
                    s.inUse += 1
                    return .acquired
                }
                return .wait
            }
            switch action {
            case .acquired: return
            case .sleep(let until): try await Task.sleep(until: until, clock: clock)
            case .wait: await waitForRelease()
            }
        }
    }

    private func waitForRelease() async {
        let id = state.withLock { s in defer { s.nextWaiterID += 1 }; return s.nextWaiterID }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { s in
                    if s.inUse < Int(s.limit) || Task.isCancelled { return true }
                    s.waiters.append((id, continuation))
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let continuation = state.withLock { s -> CheckedContinuation<Void, Never>? in
                guard let index = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return s.waiters.remove(at: index).continuation
            }
            continuation?.resume()
        }
    }

    /// Returns a permit and reports how the attempt went.
    public func release(_ outcome: Outcome) {
        let now = clock.now
        let woken: [CheckedContinuation<Void, Never>] = state.withLock { s in
            s.inUse = max(0, s.inUse - 1)
            switch outcome {
            case .success:
                s.successes += 1
                if s.successes >= Int(s.limit) {
                    s.successes = 0
                    s.limit = min(Double(maximum), s.limit + 1)
                }
            case .failure:
                break
            case .rateLimited(let retryAfter):
                // One decrease per burst: rate-limit errors within 250 ms of the last decrease come
                // from attempts that were already in flight and say nothing new.
                if s.lastDecrease.map({ now - $0 > .milliseconds(250) }) ?? true {
                    s.limit = max(Double(minimum), (s.limit / 2).rounded(.down))
                    s.lastDecrease = now
                    s.successes = 0
                }
                if let retryAfter {
                    let until = now + retryAfter
                    if s.pausedUntil.map({ until > $0 }) ?? true { s.pausedUntil = until }
                }
            }
            let free = max(0, Int(s.limit) - s.inUse)
            let count = min(free, s.waiters.count)
            let woken = s.waiters.prefix(count).map(\.continuation)
            s.waiters.removeFirst(count)
            return woken
        }
        for continuation in woken { continuation.resume() }
    }
}
