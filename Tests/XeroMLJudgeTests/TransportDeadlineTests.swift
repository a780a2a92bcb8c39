import Foundation
import Synchronization
import Testing
import XeroMLHTTP
import XeroMLTesting

/// Every request ends by its deadline whatever the server does, cancellation ends it at once, and
/// `N` concurrent requests are `N` requests on the wire.
@Suite(.timeLimit(.minutes(2))) struct TransportDeadlineTests {
    static let clock = ContinuousClock()

    /// Sends one request to a server misbehaving as `misbehavior` with a 500 ms deadline; returns the
    /// error and how long the call took.
    func failure(_ kind: TransportKind, of misbehavior: FakeReply.Misbehavior, timeout: Duration = .milliseconds(500)) async throws
        -> (error: HTTPError?, elapsed: Duration) {
        try await withFakeOpenAIServer { server in
            server.enqueue(FakeReply.chat(String(repeating: "answer ", count: 40)).misbehaving(misbehavior))
            let transport = kind.make(timeout: timeout)
            let start = Self.clock.now
            let error = await #expect(throws: HTTPError.self) {
                try await transport.send(.post(server.baseURL.appendingPathComponent("chat/completions"), json: Data("{}".utf8)))
            }
            return (error, Self.clock.now - start)
        }
    }

    @Test(arguments: TransportKind.allCases, [
        FakeReply.Misbehavior.neverAnswer, .stallAfterHeaders, .trickle(interval: .milliseconds(200)),
    ])
    func aServerThatDoesNotFinishTimesOutByTheDeadline(_ kind: TransportKind, _ misbehavior: FakeReply.Misbehavior) async throws {
        let (error, elapsed) = try await failure(kind, of: misbehavior)
        #expect(error?.code == .timeout, "\(misbehavior): \(String(describing: error))")
        #expect(error?.isRetryable == true)
        #expect(elapsed >= .milliseconds(450), "\(misbehavior) ended before its deadline: \(elapsed)")
        // The deadline is 500 ms; the bound leaves room for the suite's start on two cores (10 s
        // stalls have been seen), and is far below "never".
        #expect(elapsed < .seconds(30), "\(misbehavior) took \(elapsed)")
    }

    @Test(arguments: TransportKind.allCases, [FakeReply.Misbehavior.closeMidBody, .reset])
    func aBrokenConnectionFailsAtOnceAndIsRetryable(_ kind: TransportKind, _ misbehavior: FakeReply.Misbehavior) async throws {
        let (error, elapsed) = try await failure(kind, of: misbehavior, timeout: .seconds(60))
        // A dropped connection, not a server speaking something else: worth another attempt.
        #expect(error?.code == .connectionFailed, "\(misbehavior): \(String(describing: error))")
        #expect(error?.isRetryable == true)
        // Long before the 60 s deadline; the bound, half of it, leaves room for the suite's start on
        // two cores.
        #expect(elapsed < .seconds(30), "\(misbehavior) took \(elapsed)")
    }

    @Test(arguments: TransportKind.allCases, [FakeReply.Misbehavior.neverAnswer, .stallAfterHeaders, .trickle(interval: .milliseconds(300))])
    func cancellingTheCallerEndsTheRequestAtOnce(_ kind: TransportKind, _ misbehavior: FakeReply.Misbehavior) async throws {
        try await withFakeOpenAIServer { server in
            server.enqueue(FakeReply.chat("late").misbehaving(misbehavior))
            let transport = kind.make(timeout: .seconds(60))
            let url = server.baseURL
            let request = Task { try await transport.send(HTTPRequest(url: url)) }
            // Wait until the server holds the request, then cancel the caller.
            while server.requestCount == 0 { try await Task.sleep(for: .milliseconds(10)) }
            let cancelled = Self.clock.now
            request.cancel()
            let result = await request.result
            let elapsed = Self.clock.now - cancelled
            #expect(throws: CancellationError.self) { try result.get() }
            // About a second, with room for a loaded machine; the request's own deadline is 60 s.
            #expect(elapsed < .seconds(30), "cancellation took \(elapsed)")
        }
    }

    @Test(arguments: TransportKind.allCases) func manyRequestsCancelledTogetherAllEnd(_ kind: TransportKind) async throws {
        // The pattern that used to deadlock: many requests in flight, all cancelled at once.
        try await withFakeOpenAIServer(handler: { _ in FakeReply.chat("late").misbehaving(.neverAnswer) }) { server in
            let transport = kind.make(timeout: .seconds(60))
            let url = server.baseURL
            let group = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<64 { group.addTask { _ = try await transport.send(HTTPRequest(url: url)) } }
                    try await group.waitForAll()
                }
            }
            let deadline = Self.clock.now + .seconds(20)
            while server.requestCount < 64, Self.clock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            #expect(server.requestCount == 64)
            let cancelled = Self.clock.now
            group.cancel()
            _ = await group.result
            // Without the fix this never ended; the bound, half the requests' deadline, leaves room
            // for a loaded machine.
            #expect(Self.clock.now - cancelled < .seconds(30))
        }
    }

    @Test(arguments: TransportKind.allCases) func manyDeadlinesExpiringTogetherAllEnd(_ kind: TransportKind) async throws {
        // Requests queued behind others and timing out together against a silent server: each round
        // of 64 ends within its 300 ms deadline plus slack, never hangs.
        try await withFakeOpenAIServer(handler: { _ in FakeReply.chat("late").misbehaving(.neverAnswer) }) { server in
            let transport = kind.make(timeout: .milliseconds(300))
            let url = server.baseURL
            for round in 0..<5 {
                let start = Self.clock.now
                let timeouts = await withTaskGroup(of: Bool.self) { group in
                    for _ in 0..<64 {
                        group.addTask {
                            do { _ = try await transport.send(HTTPRequest(url: url)); return false } catch let error as HTTPError {
                                return error.code == .timeout
                            } catch { return false }
                        }
                    }
                    return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
                #expect(timeouts == 64, "round \(round)")
                #expect(Self.clock.now - start < .seconds(30), "round \(round) took \(Self.clock.now - start)")
            }
        }
    }

    @Test(arguments: TransportKind.allCases, [1, 8, 64])
    func concurrentRequestsAreAllOnTheWire(_ kind: TransportKind, _ concurrency: Int) async throws {
        let delay = Duration.seconds(3)
        try await withFakeOpenAIServer(handler: { _ in FakeReply.chat("ok").delayed(by: delay) }) { server in
            let transport = kind.make(timeout: .seconds(30))
            let url = server.baseURL
            let latencies = try await withThrowingTaskGroup(of: Duration.self) { group in
                for _ in 0..<concurrency {
                    group.addTask {
                        let start = Self.clock.now
                        _ = try await transport.send(HTTPRequest(url: url)).checked()
                        return Self.clock.now - start
                    }
                }
                return try await group.reduce(into: [Duration]()) { $0.append($1) }
            }
            #expect(server.peakConcurrency == concurrency, "peak \(server.peakConcurrency) of \(concurrency)")
            // No request waited in a client queue for others to finish: queued behind a cap of 6, the
            // slowest of 64 would take 11 delays; on the wire, one delay plus machine load (stalls of
            // 10 s have been seen at the suite's start on two cores).
            let slowest = latencies.max() ?? .zero
            #expect(slowest < delay * 6, "the slowest of \(concurrency) took \(slowest)")
        }
    }

    @Test(arguments: TransportKind.allCases) func aKeepAliveServerServesManyRequestsPerConnection(_ kind: TransportKind) async throws {
        let server = try FakeOpenAIServer(handler: { _ in .chat("ok") }, keepAlive: true)
        defer { server.stop() }
        let transport = kind.make(timeout: .seconds(10))
        let url = server.baseURL
        for _ in 0..<20 { #expect(try await transport.send(HTTPRequest(url: url)).statusCode == 200) }
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<16 { group.addTask { try await transport.send(HTTPRequest(url: url)).statusCode } }
            for try await status in group { #expect(status == 200) }
        }
        #expect(server.requestCount == 36)
    }
}

/// The transports every transport test runs against: the default (``NIOTransport``) and
/// ``URLSessionTransport``.
enum TransportKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case nio, urlsession

    func make(timeout: Duration = .seconds(60), maxResponseBytes: Int = 8 << 20) -> any HTTPTransport {
        switch self {
        case .nio: NIOTransport(timeout: timeout, maxResponseBytes: maxResponseBytes)
        case .urlsession: URLSessionTransport(timeout: timeout, maxResponseBytes: maxResponseBytes)
        }
    }

    var testDescription: String { rawValue }
}
