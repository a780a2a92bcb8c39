import Foundation
import Testing
import XeroMLHTTP
import XeroMLJudge
import XeroMLTesting

/// Proxies are read from the environment as curl reads them, and requests really go through them.
@Suite(.timeLimit(.minutes(1))) struct ProxyTests {
    @Test func theEnvironmentIsReadAsCurlReadsIt() throws {
        let settings = HTTPProxySettings.environment([
            "https_proxy": "http://corp:3128", "http_proxy": "plain:8080",
            "no_proxy": "localhost, .internal.example,example.org:443,[::1]",
        ])
        #expect(settings.httpsProxy == URL(string: "http://corp:3128"))
        #expect(settings.httpProxy == URL(string: "http://plain:8080"))
        #expect(settings.proxy(for: URL(string: "https://api.openai.com/v1")!) == URL(string: "http://corp:3128"))
        #expect(settings.proxy(for: URL(string: "http://model.lan/v1")!) == URL(string: "http://plain:8080"))
        // no_proxy: the host, its subdomains, a port ignored; a suffix only at a dot.
        #expect(settings.proxy(for: URL(string: "http://localhost:11434/v1")!) == nil)
        #expect(settings.proxy(for: URL(string: "https://a.b.internal.example/v1")!) == nil)
        #expect(settings.proxy(for: URL(string: "https://internal.example/v1")!) == nil)
        #expect(settings.proxy(for: URL(string: "https://example.org/v1")!) == nil)
        #expect(settings.proxy(for: URL(string: "https://notexample.org/v1")!) == URL(string: "http://corp:3128"))
        #expect(settings.proxy(for: URL(string: "http://[::1]:8080/v1")!) == nil)

        // HTTP_PROXY (upper case) is not read for http://, as curl; ALL_PROXY stands in for either.
        let upper = HTTPProxySettings.environment(["HTTP_PROXY": "http://evil:1", "HTTPS_PROXY": "http://corp:3128"])
        #expect(upper.httpProxy == nil && upper.httpsProxy == URL(string: "http://corp:3128"))
        let all = HTTPProxySettings.environment(["ALL_PROXY": "socks5://tunnel:1080", "NO_PROXY": "*"])
        #expect(all.httpProxy == URL(string: "socks5://tunnel:1080") && all.httpsProxy == all.httpProxy)
        #expect(all.proxy(for: URL(string: "https://api.openai.com")!) == nil)
        #expect(HTTPProxySettings.environment([:]) == .none)
    }

    @Test func aRequestGoesThroughTheProxyWithItsCredentials() async throws {
        try await withFakeOpenAIServer(handler: { _ in .chat("ok") }) { server in
            let proxy = try FaultProxy(upstreamPort: UInt16(server.port), tunnels: true)
            defer { proxy.stop() }
            let transport = NIOTransport(timeout: .seconds(10), proxies: HTTPProxySettings(
                httpProxy: URL(string: "http://us%3Aer:s%40cret@127.0.0.1:\(proxy.port)")!))
            let response = try await transport.send(.post(server.baseURL.appendingPathComponent("chat/completions"),
                                                          json: Data(#"{"model":"m"}"#.utf8)))
            #expect(response.statusCode == 200)
            #expect(server.requestCount == 1)
            let tunnels = proxy.tunnelRequests
            #expect(tunnels.count == 1)
            #expect(tunnels.first?.hasPrefix("CONNECT 127.0.0.1:\(server.port) ") == true, "\(tunnels)")
            // us:er and s@cret, percent-decoded alike, in Basic.
            let credentials = Data("us:er:s@cret".utf8).base64EncodedString()
            #expect(tunnels.first?.lowercased().contains("proxy-authorization: basic \(credentials.lowercased())") == true, "\(tunnels)")
        }
    }

    @Test func aHostInNoProxyIsReachedDirectly() async throws {
        try await withFakeOpenAIServer(handler: { _ in .chat("ok") }) { server in
            let proxy = try FaultProxy(upstreamPort: UInt16(server.port), tunnels: true)
            defer { proxy.stop() }
            let transport = NIOTransport(timeout: .seconds(10), proxies: HTTPProxySettings(
                httpProxy: proxy.baseURL, noProxy: ["127.0.0.1"]))
            let response = try await transport.send(HTTPRequest(url: server.baseURL))
            #expect(response.statusCode == 200)
            #expect(server.requestCount == 1)
            #expect(proxy.tunnelRequests.isEmpty)
        }
    }

    @Test func anUnsupportedProxyIsAnInvalidRequestWithoutItsPassword() async throws {
        let transport = NIOTransport(timeout: .seconds(5), proxies: HTTPProxySettings(
            httpsProxy: URL(string: "https://user:topsecret@proxy.invalid:443")!))
        let error = await #expect(throws: HTTPError.self) {
            try await transport.send(HTTPRequest(url: URL(string: "https://api.example.com/v1")!))
        }
        #expect(error?.code == .invalidRequest)
        #expect(error?.message.contains("topsecret") == false, "\(String(describing: error))")
    }

    @Test func aProxyThatRefusesTheTunnelIsRetryableAndOneAskingForCredentialsIsNot() async throws {
        try await withFakeOpenAIServer(handler: { _ in .chat("ok") }) { server in
            let proxy = try FaultProxy(upstreamPort: UInt16(server.port), tunnels: true)
            defer { proxy.stop() }
            let transport = NIOTransport(timeout: .seconds(10), proxies: HTTPProxySettings(httpProxy: proxy.baseURL))
            proxy.script([.status(502)])
            let refused = await #expect(throws: HTTPError.self) { try await transport.send(HTTPRequest(url: server.baseURL)) }
            #expect(refused?.code == .connectionFailed && refused?.isRetryable == true, "\(String(describing: refused))")
            proxy.script([.status(407)])
            let credentials = await #expect(throws: HTTPError.self) { try await transport.send(HTTPRequest(url: server.baseURL)) }
            #expect(credentials?.code == .invalidRequest && credentials?.isRetryable == false, "\(String(describing: credentials))")
            #expect(credentials?.message.contains("407") == true)
            // Nothing scripted any more: the tunnel opens.
            #expect(try await transport.send(HTTPRequest(url: server.baseURL)).statusCode == 200)
        }
    }

    @Test func aProxyThatCannotBeReachedIsNamedWithoutItsPassword() async throws {
        try await withFakeOpenAIServer(handler: { _ in .chat("ok") }) { server in
            let port = try ClosedPort()
            let transport = NIOTransport(timeout: .seconds(60), proxies: HTTPProxySettings(
                httpProxy: URL(string: "http://user:topsecret@127.0.0.1:\(port.number)")!))
            let error = await #expect(throws: HTTPError.self) { try await transport.send(HTTPRequest(url: server.baseURL)) }
            #expect(error?.code == .connectionFailed && error?.isRetryable == true, "\(String(describing: error))")
            let text = error?.message ?? ""
            #expect(text.contains("through the proxy http://127.0.0.1:\(port.number)"), "\(text)")
            #expect(!text.contains("topsecret"))
            #expect(server.requestCount == 0)
            // In a chat error, the proxy is what to check, not the endpoint.
            let chat = await #expect(throws: ChatError.self) {
                _ = try await ChatClient(configuration: server.configuration(model: "m"), transport: transport, retry: .none).complete("hi")
            }
            let description = chat?.localizedDescription ?? ""
            #expect(description.contains("through the proxy") && !description.contains("check that the endpoint is running"), "\(description)")
            withExtendedLifetime(port) {}
        }
    }

    @Test func anUnreadableProxyVariableFailsEveryRequestNamingIt() async throws {
        let settings = HTTPProxySettings.environment(["https_proxy": "http://bad host:3128"])
        #expect(settings.unreadable == ["https_proxy"])
        let error = await #expect(throws: HTTPError.self) {
            try await NIOTransport(timeout: .seconds(5), proxies: settings).send(HTTPRequest(url: URL(string: "http://127.0.0.1:9/v1")!))
        }
        #expect(error?.code == .invalidRequest && error?.message.contains("https_proxy") == true, "\(String(describing: error))")
    }

    @Test func aHeaderValueWithALineBreakIsAnInvalidRequestThatDoesNotRepeatIt() async throws {
        try await withFakeOpenAIServer(handler: { _ in .chat("ok") }) { server in
            let error = await #expect(throws: HTTPError.self) {
                try await NIOTransport(timeout: .seconds(5), proxies: .none).send(
                    HTTPRequest(url: server.baseURL, headers: ["Authorization": "Bearer sk-secret-key\r"]))
            }
            #expect(error?.code == .invalidRequest && error?.isRetryable == false, "\(String(describing: error))")
            #expect(error?.message.contains("sk-secret-key") == false)
            #expect(server.requestCount == 0)
        }
    }

    @Test func aRedirectIsAnsweredAsItIsNotFollowed() async throws {
        try await withFakeOpenAIServer(handler: { _ in FakeReply(status: 302, headers: ["Location": "http://127.0.0.1:9/elsewhere"], body: Data()) }) { server in
            let response = try await NIOTransport(timeout: .seconds(5), proxies: .none).send(
                HTTPRequest(url: server.baseURL, headers: ["X-Api-Key": "secret"]))
            #expect(response.statusCode == 302)
            #expect(response.header("location") == "http://127.0.0.1:9/elsewhere")
            #expect(server.requestCount == 1)
        }
    }

    @Test func aRedirectedChatRequestSaysWhereToAndIsNotRetried() async throws {
        try await withFakeOpenAIServer(handler: { _ in .status(307, headers: ["Location": "https://elsewhere.example/v1/chat/completions"]) }) { server in
            let error = await #expect(throws: ChatError.self) {
                _ = try await ChatClient(configuration: server.configuration(model: "m")).complete("hi")
            }
            let text = error?.localizedDescription ?? ""
            #expect(text.contains("answered HTTP 307, a redirect to https://elsewhere.example/v1/chat/completions (not followed)"), "\(text)")
            #expect(text.contains("use the address it names as the base URL"), "\(text)")
            #expect(error?.isRetryable == false)
            #expect(server.requestCount == 1)
        }
    }
}
