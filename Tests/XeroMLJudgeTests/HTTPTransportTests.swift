import Foundation
import Testing
import XeroMLHTTP
import XeroMLTesting

@Suite struct HTTPTransportTests {
    @Test func retryAfterIsReadAsSecondsOrHTTPDate() {
        #expect(RetryAfter.parse("120") == .seconds(120))
        #expect(RetryAfter.parse(" 0 ") == .zero)
        let now = Date(timeIntervalSince1970: 1_445_412_450)  // 30 s before the date below
        #expect(RetryAfter.parse("Wed, 21 Oct 2015 07:28:00 GMT", now: now) == .seconds(30))
        #expect(RetryAfter.parse("Wednesday, 21-Oct-15 07:28:00 GMT", now: now) == .seconds(30))
        #expect(RetryAfter.parse("Wed, 21 Oct 2015 07:00:00 GMT", now: now) == .zero)
        #expect(RetryAfter.parse("soon") == nil)
        #expect(RetryAfter.parse("") == nil)
    }

    @Test func errorsSayWhetherTheyAreRetryable() {
        let limited = HTTPError(response: HTTPResponse(statusCode: 429, headers: ["Retry-After": "2"], body: Data("slow down".utf8)))
        #expect(limited.code == .status && limited.statusCode == 429)
        #expect(limited.isRetryable && limited.isRateLimit)
        #expect(limited.retryAfter == .seconds(2))
        #expect(limited.responseBody == "slow down")
        #expect(limited.shortDescription == "HTTP 429")
        for status in [408, 500, 502, 503, 504] {
            #expect(HTTPError(response: HTTPResponse(statusCode: status)).isRetryable, "HTTP \(status)")
        }
        for status in [400, 401, 403, 404, 422] {
            #expect(!HTTPError(response: HTTPResponse(statusCode: status)).isRetryable, "HTTP \(status)")
        }
        #expect(HTTPError(.timeout, "late").isRetryable)
        #expect(HTTPError(.connectionFailed, "refused").isRetryable)
        #expect(!HTTPError(.responseTooLarge, "big").isRetryable)
        #expect(!HTTPError(.invalidRequest, "bad").isRetryable)
        #expect(throws: HTTPError.self) { try HTTPResponse(statusCode: 503).checked() }
        #expect(throws: Never.self) { try HTTPResponse(statusCode: 204).checked() }
    }

    @Test(arguments: TransportKind.allCases) func sendsRequestsAndReturnsEveryStatus(_ kind: TransportKind) async throws {
        try await withFakeOpenAIServer { server in
            server.enqueue(FakeReply(status: 201, headers: ["X-Answer": "42"], body: Data(#"{"ok":true}"#.utf8)),
                           .status(404, body: "missing"))
            let transport = kind.make(timeout: .seconds(5))
            let url = server.baseURL.appendingPathComponent("things")
            let created = try await transport.send(.post(url, json: Data(#"{"a":1}"#.utf8), headers: ["X-Key": "v"]))
            #expect(created.statusCode == 201)
            #expect(created.header("x-answer") == "42")
            #expect(created.text == #"{"ok":true}"#)
            let missing = try await transport.send(HTTPRequest(url: url))
            #expect(missing.statusCode == 404 && missing.text == "missing")

            let requests = server.requests
            #expect(requests.count == 2)
            #expect(requests[0].method == "POST" && requests[0].path == "/v1/things")
            #expect(requests[0].header("X-Key") == "v")
            #expect(requests[0].header("content-type") == "application/json")
            #expect(requests[0].json == ["a": 1])
            #expect(requests[1].method == "GET")
        }
    }

    @Test(arguments: TransportKind.allCases) func aSlowServerTimesOut(_ kind: TransportKind) async throws {
        try await withFakeOpenAIServer { server in
            server.enqueue(FakeReply.status(200, body: "{}").delayed(by: .seconds(90)))
            let transport = kind.make()
            let clock = ContinuousClock()
            let start = clock.now
            let error = await #expect(throws: HTTPError.self) {
                try await transport.send(HTTPRequest(url: server.baseURL, timeout: .milliseconds(300)))
            }
            #expect(error?.code == .timeout)
            #expect(error?.isRetryable == true)
            // Far below the server's 90 s answer, with room for the suite's start, when every test
            // runs at once on two cores (stalls of 10 s have been seen there).
            #expect(clock.now - start < .seconds(30), "the deadline covers the whole exchange")
        }
    }

    @Test(arguments: TransportKind.allCases) func anOversizedResponseIsRefused(_ kind: TransportKind) async throws {
        try await withFakeOpenAIServer { server in
            server.enqueue(.status(200, body: String(repeating: "x", count: 10_000)))
            let transport = kind.make(maxResponseBytes: 1_000)
            let error = await #expect(throws: HTTPError.self) { try await transport.send(HTTPRequest(url: server.baseURL)) }
            #expect(error?.code == .responseTooLarge)
            #expect(error?.isRetryable == false)
        }
    }

    @Test(arguments: TransportKind.allCases) func aClosedPortIsARetryableConnectionFailure(_ kind: TransportKind) async throws {
        // A port bound but not listening refuses connections, and stays ours for the whole test.
        let port = try ClosedPort()
        let url = URL(string: "http://127.0.0.1:\(port.number)/v1")!
        let clock = ContinuousClock()
        let start = clock.now
        let error = await #expect(throws: HTTPError.self) {
            try await kind.make(timeout: .seconds(60)).send(HTTPRequest(url: url))
        }
        #expect(error?.code == .connectionFailed)
        // At once, not at the 60 s deadline: the caller's retry policy decides what comes next. The
        // bound, half the deadline, leaves room for the suite's start on two cores (10 s stalls).
        #expect(clock.now - start < .seconds(30), "took \(clock.now - start)")
        #expect(error?.isRetryable == true)
        withExtendedLifetime(port) {}
    }

    @Test(arguments: TransportKind.allCases) func anUnsupportedAddressIsAnInvalidRequest(_ kind: TransportKind) async throws {
        let error = await #expect(throws: HTTPError.self) {
            try await kind.make(timeout: .seconds(5)).send(HTTPRequest(url: URL(string: "ftp://127.0.0.1/v1")!))
        }
        #expect(error?.code == .invalidRequest, "\(String(describing: error))")
        #expect(error?.isRetryable == false)
    }

    @Test(arguments: TransportKind.allCases) func anEnormousTimeoutIsJustALongOne(_ kind: TransportKind) async throws {
        try await withFakeOpenAIServer(handler: { _ in .chat("ok") }) { server in
            let response = try await kind.make(timeout: .seconds(1 << 40)).send(HTTPRequest(url: server.baseURL))
            #expect(response.statusCode == 200)
        }
    }
}
