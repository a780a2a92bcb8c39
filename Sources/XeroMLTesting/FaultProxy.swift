public import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A TCP proxy on 127.0.0.1 in front of a real server, that misbehaves on demand: for tests of what
/// a client does when the server answers errors, resets connections or goes away and comes back.
///
/// Each accepted connection takes the next scripted ``Fault`` (none left: it is forwarded to the
/// upstream port byte for byte, both ways, until either side closes). The upstream port can change
/// while the proxy runs, so a server can be restarted on another port behind a stable address; when
/// nothing listens upstream, the client's connection is reset.
///
/// ```swift
/// let proxy = try FaultProxy(upstreamPort: serverPort)
/// proxy.script([.status(503), .status(503), .reset])  // the next three connections fail
/// // point the client at proxy.baseURL
/// ```
public final class FaultProxy: Sendable {
    /// What one connection gets instead of being forwarded.
    public enum Fault: Sendable, Hashable {
        /// Reads the request's head and answers this HTTP status (with a JSON error body and
        /// `Connection: close`).
        case status(Int)
        /// Resets the connection (TCP RST) as soon as it is accepted.
        case reset
    }

    /// The port the proxy listens on.
    public let port: UInt16
    /// Whether connections open with an HTTP `CONNECT` (as a client sends to an HTTP proxy).
    public let tunnels: Bool
    private let listener: Int32
    private struct State {
        var upstreamPort: UInt16
        var tunnelRequests: [String] = []
        var faults: [Fault] = []
        var connections = 0
        var faultsServed = 0
        var stopped = false
        var acceptLoopDone = false
        var open: Set<Int32> = []
    }
    private let state: Mutex<State>

    /// `http://127.0.0.1:PORT`.
    public var baseURL: URL { URL(string: "http://127.0.0.1:\(port)")! }

    /// Starts listening on a free port of 127.0.0.1, forwarding to `upstreamPort` there.
    ///
    /// With `tunnels`, the proxy acts as an HTTP proxy for clients that tunnel: each connection's
    /// `CONNECT` request is recorded (``tunnelRequests``) and answered 200, and the connection is then
    /// forwarded to `upstreamPort`, whatever address the request named.
    public init(upstreamPort: UInt16, tunnels: Bool = false) throws {
        self.tunnels = tunnels
        let (fd, port) = try listenOnLoopback()
        listener = fd
        self.port = port
        state = Mutex(State(upstreamPort: upstreamPort))
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "xeroml-fault-proxy"
        thread.start()
    }

    deinit { stop() }

    /// The head of each `CONNECT` request received so far (request line and headers), in order.
    public var tunnelRequests: [String] { state.withLock { $0.tunnelRequests } }

    /// Adds faults for the next connections, in order.
    public func script(_ faults: [Fault]) {
        state.withLock { $0.faults += faults }
    }

    /// Forwards from now on to `port` (a restarted server).
    public func setUpstream(port: UInt16) {
        state.withLock { $0.upstreamPort = port }
    }

    /// Connections accepted so far, and how many of them got a fault.
    public var counts: (connections: Int, faults: Int) { state.withLock { ($0.connections, $0.faultsServed) } }

    /// Resets every connection being forwarded now (as a server that dies would).
    public func dropOpenConnections() {
        let open = state.withLock { $0.open }
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    /// Stops listening and ends every forwarded connection.
    public func stop() {
        let first = state.withLock { s in
            defer { s.stopped = true }
            return !s.stopped
        }
        guard first else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        dropOpenConnections()
        let deadline = ContinuousClock.now + .seconds(5)
        while !state.withLock({ $0.acceptLoopDone }) && ContinuousClock.now < deadline { usleep(1_000) }
    }

    private func acceptLoop() {
        while !state.withLock({ $0.stopped }) {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                break
            }
            let (fault, upstreamPort) = state.withLock { s -> (Fault?, UInt16) in
                s.connections += 1
                guard !s.faults.isEmpty else { return (nil, s.upstreamPort) }
                s.faultsServed += 1
                return (s.faults.removeFirst(), s.upstreamPort)
            }
            let thread = Thread { [self] in handle(client, fault: fault, upstreamPort: upstreamPort) }
            thread.start()
        }
        close(listener)
        state.withLock { $0.acceptLoopDone = true }
    }

    private func handle(_ client: Int32, fault: Fault?, upstreamPort: UInt16) {
        switch fault {
        case .reset:
            resetAndClose(client)
        case .status(let code):
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            readHead(client)
            let body = #"{"error":{"status":\#(code),"code":"unavailable","message":"injected by FaultProxy"}}"#
            let response = "HTTP/1.1 \(code) Injected\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
                + "Connection: close\r\n\r\n" + body
            writeAll(client, Array(response.utf8))
            close(client)
        case nil:
            if tunnels {
                var timeout = timeval(tv_sec: 5, tv_usec: 0)
                setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                let head = readHead(client)
                guard head.hasPrefix("CONNECT ") else {
                    writeAll(client, Array("HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
                    close(client)
                    return
                }
                state.withLock { $0.tunnelRequests.append(head) }
                timeout = timeval(tv_sec: 0, tv_usec: 0)
                setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                guard writeAll(client, Array("HTTP/1.1 200 Connection established\r\n\r\n".utf8)) else {
                    close(client)
                    return
                }
            }
            forward(client, upstreamPort: upstreamPort)
        }
    }

    private func forward(_ client: Int32, upstreamPort: UInt16) {
        let upstream = socket(AF_INET, streamSocketType, 0)
        var address = loopbackAddress(port: upstreamPort)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard upstream >= 0, connected == 0 else {
            if upstream >= 0 { close(upstream) }
            resetAndClose(client)
            return
        }
        state.withLock { s in
            s.open.insert(client)
            s.open.insert(upstream)
        }
        let done = DispatchSemaphore(value: 0)
        let other = Thread { [self] in
            pump(from: upstream, to: client)
            done.signal()
        }
        other.start()
        pump(from: client, to: upstream)
        done.wait()
        state.withLock { s in
            s.open.remove(client)
            s.open.remove(upstream)
        }
        close(client)
        close(upstream)
    }

    /// Copies bytes until `source` ends or fails, then ends both directions.
    private func pump(from source: Int32, to destination: Int32) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(source, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0, writeAll(destination, Array(buffer[0..<count])) else { break }
        }
        shutdown(destination, Int32(SHUT_RDWR))
        shutdown(source, Int32(SHUT_RDWR))
    }

    /// Reads until the end of an HTTP request head (or the connection ends); answers the head read.
    @discardableResult
    private func readHead(_ fd: Int32) -> String {
        var seen: [UInt8] = []
        var byte: UInt8 = 0
        while recv(fd, &byte, 1, 0) == 1 {
            seen.append(byte)
            if seen.count >= 4 && seen.suffix(4) == [13, 10, 13, 10] { break }
        }
        return String(decoding: seen, as: UTF8.self)
    }

    @discardableResult
    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }

    private func resetAndClose(_ fd: Int32) {
        // SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        var option = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(fd)
    }
}
