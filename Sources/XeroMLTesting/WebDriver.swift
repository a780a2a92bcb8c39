package import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small client of the W3C WebDriver protocol, for driving a headless Chromium through chromedriver:
/// the package's browser tests of the local dashboard and of the team server's.
package struct WebDriver: Sendable {
    /// Where the browser and its driver are: Debian's `chromium` and `chromium-driver` packages, or
    /// `XEROML_CHROMIUM` and `XEROML_CHROMEDRIVER`.
    package static let chromium = ProcessInfo.processInfo.environment["XEROML_CHROMIUM"] ?? "/usr/bin/chromium"
    package static let chromedriver = ProcessInfo.processInfo.environment["XEROML_CHROMEDRIVER"] ?? "/usr/bin/chromedriver"
    package static var available: Bool {
        FileManager.default.isExecutableFile(atPath: chromium) && FileManager.default.isExecutableFile(atPath: chromedriver)
    }

    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    package let base: String
    package let session: String

    /// Starts a headless browser session through the driver at `driverBase`.
    package static func start(driverBase: String, width: Int = 1280, height: Int = 900) async throws -> WebDriver {
        let capabilities: [String: Any] = ["capabilities": ["alwaysMatch": [
            "browserName": "chrome",
            "goog:chromeOptions": [
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                         "--window-size=\(width),\(height)", "--no-first-run", "--disable-extensions"],
            ],
        ]]]
        let value = try await call(driverBase + "/session", method: "POST", body: capabilities, timeout: 60)
        guard let session = (value as? [String: Any])?["sessionId"] as? String else {
            throw Failure(description: "no session in \(String(describing: value))")
        }
        return WebDriver(base: driverBase, session: session)
    }

    @discardableResult
    package static func call(_ url: String, method: String, body: [String: Any]? = nil, timeout: TimeInterval = 30) async throws -> Any? {
        let data = try body.map { try JSONSerialization.data(withJSONObject: $0) }
        let (status, reply) = try await LoopbackHTTP.request(url, method: method, body: data, timeout: timeout)
        let object = try JSONSerialization.jsonObject(with: reply.isEmpty ? Data("{}".utf8) : reply)
        let value = (object as? [String: Any])?["value"]
        guard status == 200 else {
            throw Failure(description: "\(method) \(url): \(String(describing: value))")
        }
        return value
    }

    @discardableResult
    package func command(_ path: String, method: String = "POST", _ body: [String: Any]? = nil) async throws -> Any? {
        try await Self.call("\(base)/session/\(session)\(path)", method: method, body: body ?? (method == "POST" ? [:] : nil))
    }

    package func open(_ url: String) async throws { try await command("/url", ["url": url]) }

    package var currentURL: String { get async throws { try await command("/url", method: "GET") as? String ?? "" } }

    /// The element matching `css`, waiting up to `timeout` for it to appear.
    package func element(_ css: String, timeout: Duration = .seconds(10)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let found = try? await command("/element", ["using": "css selector", "value": css]) as? [String: Any],
               let id = found.values.first as? String {
                return id
            }
            if ContinuousClock.now > deadline { throw Failure(description: "no element matches \(css)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    package func elements(_ css: String) async throws -> [String] {
        let found = try await command("/elements", ["using": "css selector", "value": css]) as? [[String: Any]] ?? []
        return found.compactMap { $0.values.first as? String }
    }

    package func click(_ element: String) async throws { try await command("/element/\(element)/click") }

    /// Types `text` into `element` (an input).
    package func type(_ text: String, into element: String) async throws {
        try await command("/element/\(element)/value", ["text": text])
    }

    package func text(_ element: String) async throws -> String {
        try await command("/element/\(element)/text", method: "GET") as? String ?? ""
    }

    package func attribute(_ element: String, _ name: String) async throws -> String? {
        try await command("/element/\(element)/attribute/\(name)", method: "GET") as? String
    }

    /// Waits until the current URL satisfies `predicate`.
    package func waitForURL(_ what: String, timeout: Duration = .seconds(10), _ predicate: (String) -> Bool) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while true {
            let url = try await currentURL
            if predicate(url) { return url }
            if ContinuousClock.now > deadline { throw Failure(description: "the page did not go to \(what); it is at \(url)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Writes a PNG of the whole page to `directory/name.png`, when a directory is given.
    package func screenshot(_ name: String, to directory: String?) async throws {
        guard let directory else { return }
        // The window's height is the page's plus the browser's own frame, so the PNG holds the whole page.
        let sizes = try await command("/execute/sync", [
            "script": "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight];", "args": [],
        ]) as? [Int] ?? [900, 0]
        try await command("/window/rect", ["width": 1280, "height": min(max(sizes[0], 600), 4000) + sizes[1]])
        guard let encoded = try await command("/screenshot", method: "GET") as? String, let data = Data(base64Encoded: encoded) else {
            throw Failure(description: "no screenshot")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: directory).appendingPathComponent(name + ".png"))
        try await command("/window/rect", ["width": 1280, "height": 900])
    }

    /// The text of an open dialog (`alert`), or `nil` when none is open.
    package func alertText() async throws -> String? {
        try? await command("/alert/text", method: "GET") as? String
    }

    package func quit() async { _ = try? await Self.call("\(base)/session/\(session)", method: "DELETE", timeout: 10) }
}

/// A minimal HTTP/1.1 client over a loopback TCP socket, for chromedriver: its replies write headers
/// as `Content-Length:917` (no space), which URLSession on Linux rejects ("Failed writing header").
/// Each request opens a connection, sends `Connection: close` and reads to the end, on a dispatch
/// thread (never on the cooperative pool), with a receive timeout.
package enum LoopbackHTTP {
    package static func request(_ url: String, method: String, body: Data?, timeout: TimeInterval) async throws -> (Int, Data) {
        guard let parsed = URLComponents(string: url), let port = parsed.port else { throw WebDriver.Failure(description: "bad URL \(url)") }
        let path = parsed.percentEncodedPath + (parsed.percentEncodedQuery.map { "?" + $0 } ?? "")
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try send(port: UInt16(port), method: method, path: path, body: body, timeout: timeout) })
            }
        }
    }

    static func send(port: UInt16, method: String, path: String, body: Data?, timeout: TimeInterval) throws -> (Int, Data) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw WebDriver.Failure(description: "socket() failed") }
        defer { close(fd) }
        var time = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw WebDriver.Failure(description: "cannot connect to port \(port)") }
        var request = Data("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n".utf8)
        if let body {
            request += Data("Content-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
        } else {
            request += Data("Content-Length: 0\r\n\r\n".utf8)
        }
        try request.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let sent = Glibc.send(fd, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                guard sent > 0 else { throw WebDriver.Failure(description: "send failed") }
                offset += sent
            }
        }
        var reply = Data()
        var chunk = [UInt8](repeating: 0, count: 65_536)
        // Read to the end of the body: Content-Length when given (the driver may keep the connection
        // open), else to the end of the stream.
        while true {
            if let split = reply.range(of: Data("\r\n\r\n".utf8)) {
                let head = String(decoding: reply[..<split.lowerBound], as: UTF8.self).lowercased()
                if let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
                   let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)),
                   reply.count - split.upperBound >= length {
                    break
                }
            }
            let count = recv(fd, &chunk, chunk.count, 0)
            if count == 0 { break }
            guard count > 0 else { throw WebDriver.Failure(description: "no reply from port \(port) within \(timeout) s") }
            reply.append(contentsOf: chunk[0..<count])
        }
        guard let split = reply.range(of: Data("\r\n\r\n".utf8)) else { throw WebDriver.Failure(description: "malformed reply") }
        let head = String(decoding: reply[..<split.lowerBound], as: UTF8.self)
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        var payload = Data(reply[split.upperBound...])
        if head.lowercased().contains("transfer-encoding: chunked") || head.lowercased().contains("transfer-encoding:chunked") {
            payload = dechunk(payload)
        }
        return (status, payload)
    }

    static func dechunk(_ data: Data) -> Data {
        var out = Data()
        var rest = data[...]
        while let line = rest.range(of: Data("\r\n".utf8)) {
            let size = Int(String(decoding: rest[..<line.lowerBound], as: UTF8.self).split(separator: ";")[0], radix: 16) ?? 0
            if size == 0 { break }
            let start = line.upperBound
            out.append(rest[start..<(start + size)])
            rest = rest[(start + size + 2)...]
        }
        return out
    }
}

/// Starts chromedriver on a free port and a headless browser session, runs `body`, then closes the
/// browser and stops the driver (also when `body` throws). Needs ``WebDriver/available``.
package func withHeadlessBrowser(_ body: (WebDriver) async throws -> Void) async throws {
    let driver = try RunningProcess(executable: URL(fileURLWithPath: WebDriver.chromedriver), arguments: ["--port=0"])
    var driverBase: String?
    do {
        try await driver.waitFor(.seconds(30), "chromedriver to start") { out, _ in out.contains("started successfully on port") }
        let out = driver.output.stdout
        guard let range = out.range(of: #"successfully on port [0-9]+"#, options: .regularExpression),
              let port = out[range].split(separator: " ").last else {
            throw WebDriver.Failure(description: "chromedriver printed no port: \(out)")
        }
        driverBase = "http://127.0.0.1:\(port)"
        let browser = try await WebDriver.start(driverBase: driverBase!)
        do {
            try await body(browser)
        } catch {
            await browser.quit()
            throw error
        }
        await browser.quit()
    } catch {
        await stopDriver(driver, base: driverBase)
        throw error
    }
    await stopDriver(driver, base: driverBase)
}

/// Asks chromedriver to close every browser it started (`/shutdown`), then ends it: a browser whose
/// session never started is not left running.
private func stopDriver(_ driver: RunningProcess, base: String?) async {
    if let base { _ = try? await LoopbackHTTP.request(base + "/shutdown", method: "GET", body: nil, timeout: 10) }
    await driver.stop()
}
