#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import Foundation
import Synchronization
public import XeroMLJudge

/// A real OpenAI-compatible HTTP/1.1 server on `127.0.0.1` (an ephemeral port), for end-to-end
/// tests of chat clients and judges without any network.
///
/// It is scripted per test: queued replies are sent in order, then the ``handler`` (if any)
/// answers; without either, requests get HTTP 400 saying that no reply was scripted. Every
/// request is captured (method, path, headers, body) for assertions.
///
/// ```swift
/// try await withFakeOpenAIServer { server in
///     server.enqueue(.rateLimited(retryAfter: "1"), .judge(score: 0.9, reasoning: "Clear."))
///     let client = ChatClient(configuration: server.configuration())
///     let reply = try await client.complete("Capital of France?")
///     #expect(server.requests.count == 2)
///     #expect(server.requests[0].json?["model"] == "fake-model")
/// }
/// ```
///
/// Built on POSIX sockets with one thread per connection (no SwiftNIO); each connection serves one
/// request and is closed (`Connection: close`), unless the server was made with `keepAlive`. Delays
/// end early when the server stops.
///
/// ## Topics
/// ### Starting and stopping
/// - ``init(handler:keepAlive:)``
/// - ``withFakeOpenAIServer(_:)``
/// - ``stop()``
/// ### Addresses
/// - ``port``
/// - ``baseURL``
/// - ``configuration(model:)``
/// ### Scripting
/// - ``enqueue(_:)-(FakeReply...)``
/// - ``handler``
/// - ``FakeReply``
/// ### Inspecting requests
/// - ``requests``
/// - ``requestCount``
/// - ``peakConcurrency``
/// - ``resetPeakConcurrency()``
/// - ``FakeRequest``
public final class FakeOpenAIServer: Sendable {
    /// Answers requests when the queue is empty.
    public typealias Handler = @Sendable (FakeRequest) -> FakeReply

    /// The port the server listens on.
    public let port: UInt16
    // The threads hold the core, not the server, so dropping the server stops it (deinit).
    private let core: FakeServerCore

    /// Starts a server on `127.0.0.1` with an ephemeral port.
    /// - Parameter handler: answers requests when no queued reply is left.
    /// - Throws: `POSIXError` when the socket cannot be set up.
    /// - Parameter keepAlive: serve several requests per connection (HTTP/1.1 keep-alive), as real
    ///   model servers do, instead of closing each connection after its answer (the default, which
    ///   makes every request a connection of its own).
    public init(handler: Handler? = nil, keepAlive: Bool = false) throws {
        core = try FakeServerCore(handler: handler, keepAlive: keepAlive)
        port = core.port
        let core = self.core
        let thread = Thread { core.acceptLoop() }
        thread.name = "FakeOpenAIServer:\(port)"
        thread.start()
    }

    deinit {
        core.stop()
    }

    /// `http://127.0.0.1:<port>/v1`.
    public var baseURL: URL { URL(string: "http://127.0.0.1:\(port)/v1")! }

    /// A chat configuration pointing at this server, with a short timeout.
    public func configuration(model: String = "fake-model") -> ChatConfiguration {
        ChatConfiguration(baseURL: baseURL, model: model, timeout: .seconds(10))
    }

    /// Queues replies, sent in order to the next requests.
    public func enqueue(_ replies: FakeReply...) { enqueue(replies) }

    /// Queues replies, sent in order to the next requests.
    public func enqueue(_ replies: [FakeReply]) { core.state.withLock { $0.queue += replies } }

    /// Answers requests once the queue is empty.
    public var handler: Handler? {
        get { core.state.withLock { $0.handler } }
        set { core.state.withLock { $0.handler = newValue } }
    }

    /// Every request received so far, in arrival order.
    public var requests: [FakeRequest] { core.state.withLock { $0.requests } }

    /// How many requests were received.
    public var requestCount: Int { core.state.withLock { $0.requests.count } }

    /// The most requests that were being answered at the same moment (read but not yet answered)
    /// since the server started or ``resetPeakConcurrency()`` was called.
    public var peakConcurrency: Int { core.state.withLock { $0.peakInFlight } }

    /// Starts counting ``peakConcurrency`` afresh.
    public func resetPeakConcurrency() { core.state.withLock { $0.peakInFlight = $0.inFlight } }

    /// Stops accepting connections and waits for the accept loop to end. Idempotent.
    public func stop() { core.stop() }
}

/// The listening socket, the script and the captured requests, shared with the server's threads.
private final class FakeServerCore: Sendable {
    let port: UInt16
    private let listener: Int32
    struct State {
        var queue: [FakeReply] = []
        var handler: FakeOpenAIServer.Handler?
        var requests: [FakeRequest] = []
        var stopped = false
        var acceptLoopDone = false
        var inFlight = 0
        var peakInFlight = 0
    }
    let state: Mutex<State>

    let keepAlive: Bool

    init(handler: FakeOpenAIServer.Handler?, keepAlive: Bool) throws {
        self.keepAlive = keepAlive
        let (fd, port) = try listenOnLoopback()
        listener = fd
        self.port = port
        state = Mutex(State(handler: handler))
    }

    func stop() {
        let first = state.withLock { s in
            defer { s.stopped = true }
            return !s.stopped
        }
        guard first else { return }
        // shutdown wakes the blocked accept(); the accept loop then closes the socket.
        shutdown(listener, Int32(SHUT_RDWR))
        while !state.withLock({ $0.acceptLoopDone }) { usleep(1_000) }
    }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    // MARK: - Connections

    func acceptLoop() {
        while !isStopped {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR { continue }
                break
            }
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var one: Int32 = 1
            setsockopt(connection, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let thread = Thread { [self] in serve(connection) }
            thread.start()
        }
        close(listener)
        state.withLock { $0.acceptLoopDone = true }
    }

    /// Reads a request from `connection` and answers it; with keep-alive, the next ones too, until the
    /// client closes the connection or a reply misbehaves. Then closes the connection.
    private func serve(_ connection: Int32) {
        defer { close(connection) }
        while let request = readRequest(connection), !isStopped, answer(request, on: connection), keepAlive {}
    }

    /// Answers one request; `false` when the connection must be closed after it.
    private func answer(_ request: FakeRequest, on connection: Int32) -> Bool {
        let queued: FakeReply? = state.withLock { s in
            s.requests.append(request)
            s.inFlight += 1
            s.peakInFlight = max(s.peakInFlight, s.inFlight)
            if !s.queue.isEmpty { return s.queue.removeFirst() }
            return nil
        }
        // In flight until its answer starts on the wire: a client that sends its next request as soon as
        // it has an answer must not be counted twice (the peak would read one above the client's limit).
        var inFlight = true
        func answered() {
            if inFlight { state.withLock { $0.inFlight -= 1 } }
            inFlight = false
        }
        defer { answered() }
        let reply = queued ?? state.withLock({ $0.handler })?(request)
            ?? .status(400, body: #"{"error": {"message": "FakeOpenAIServer: no reply scripted for \#(request.method) \#(request.path)"}}"#)
        if reply.delay > .zero {
            guard pause(reply.delay) else { return false }
        }
        guard let misbehavior = reply.misbehavior else {
            let open = keepAlive && request.header("connection")?.lowercased() != "close"
            let bytes = encode(reply, keepAlive: open)
            answered()
            send(bytes, to: connection)
            return open
        }
        let bytes = encode(reply, keepAlive: false)
        switch misbehavior {
        case .neverAnswer:
            while !isStopped { usleep(5_000) }
        case .stallAfterHeaders:
            send(Array(bytes[..<(bytes.count - reply.body.count)]), to: connection)
            while !isStopped { usleep(5_000) }
        case .trickle(let interval):
            for byte in bytes {
                send([byte], to: connection)
                guard pause(interval) else { return false }
            }
        case .closeMidBody:
            send(Array(bytes[..<(bytes.count - reply.body.count / 2 - 1)]), to: connection)
        case .reset:
            // SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            var linger = SocketLinger(l_onoff: 1, l_linger: 0)
            setsockopt(connection, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<SocketLinger>.size))
        }
        return false
    }

    /// Sleeps `duration` in small steps; `false` when the server stopped meanwhile.
    private func pause(_ duration: Duration) -> Bool {
        let clock = ContinuousClock()
        let end = clock.now + duration
        // Sleeps in slices of up to 20 ms, so a stop is noticed soon without waking every millisecond.
        while !isStopped {
            let left = end - clock.now
            guard left > .zero else { break }
            let slice = min(left, .milliseconds(20))
            usleep(useconds_t(max(1, slice.components.attoseconds / 1_000_000_000_000 + slice.components.seconds * 1_000_000)))
        }
        return !isStopped
    }

    private func readRequest(_ connection: Int32) -> FakeRequest? {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        func receive() -> Bool {
            let count = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return false }
            buffer.append(contentsOf: chunk[0..<count])
            return buffer.count <= 32 << 20
        }
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var headerEnd: Int?
        while headerEnd == nil {
            guard receive() else { return nil }
            headerEnd = Self.find(separator, in: buffer)
        }
        let head = String(decoding: buffer[..<headerEnd!], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count >= 2 else { return nil }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        if headers["expect"]?.lowercased() == "100-continue" {
            send(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8), to: connection)
        }
        let bodyStart = headerEnd! + separator.count
        var body: [UInt8]
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            while Self.find(Array("0\r\n\r\n".utf8), in: Array(buffer[bodyStart...])) == nil {
                guard receive() else { return nil }
            }
            body = Self.dechunk(Array(buffer[bodyStart...]))
        } else {
            let length = Int(headers["content-length"] ?? "0") ?? 0
            while buffer.count - bodyStart < length {
                guard receive() else { return nil }
            }
            body = Array(buffer[bodyStart..<(bodyStart + length)])
        }
        return FakeRequest(method: String(requestLine[0]), path: String(requestLine[1]), headers: headers,
                           body: Data(body), receivedAt: Date())
    }

    private func encode(_ reply: FakeReply, keepAlive: Bool) -> [UInt8] {
        var headers = reply.headers
        if !headers.keys.contains(where: { $0.lowercased() == "content-type" }) {
            headers["Content-Type"] = "application/json"
        }
        var head = "HTTP/1.1 \(reply.status) \(Self.reason(reply.status))\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(reply.body.count)\r\nConnection: \(keepAlive ? "keep-alive" : "close")\r\n\r\n"
        return Array(head.utf8) + Array(reply.body)
    }

    private func send(_ bytes: [UInt8], to connection: Int32) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes {
                sendBytes(connection, $0.baseAddress! + offset, bytes.count - offset)
            }
            if sent <= 0 { return }
            offset += sent
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if Array(haystack[i..<(i + needle.count)]) == needle { return i }
        }
        return nil
    }

    private static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var index = 0
        let crlf: [UInt8] = [13, 10]
        while index < bytes.count, let lineEnd = find(crlf, in: Array(bytes[index...])).map({ $0 + index }) {
            let sizeText = String(decoding: bytes[index..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size > 0 else { break }
            let start = lineEnd + 2
            guard start + size <= bytes.count else { break }
            out += bytes[start..<(start + size)]
            index = start + size + 2
        }
        return out
    }

    private static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 404: "Not Found"
        case 408: "Request Timeout"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: "Status"
        }
    }
}

#if canImport(Glibc)
private typealias SocketLinger = Glibc.linger
#else
private typealias SocketLinger = Darwin.linger
#endif

/// `send(2)` without SIGPIPE when the client has gone away.
private func sendBytes(_ socket: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.send(socket, bytes, count, Int32(MSG_NOSIGNAL))
    #else
    Darwin.send(socket, bytes, count, 0)
    #endif
}

/// Runs `body` with a new ``FakeOpenAIServer`` and stops the server afterwards, even when `body` throws.
public func withFakeOpenAIServer<T>(
    handler: FakeOpenAIServer.Handler? = nil, _ body: (FakeOpenAIServer) async throws -> T
) async throws -> T {
    let server = try FakeOpenAIServer(handler: handler)
    defer { server.stop() }
    return try await body(server)
}
