import Foundation
import Testing
import XeroMLHTTP
import XeroMLJudge
import XeroMLTesting

/// Where the tests find openssl (Debian's `openssl`, which `.ci/run` installs).
private let opensslPath = "/usr/bin/openssl"

/// A server whose certificate this machine does not trust (`openssl s_server` with a self-signed
/// certificate made for the test): the request fails at once, as a TLS failure that is not retried.
@Suite(.serialized, .timeLimit(.minutes(2)),
       .enabled(if: FileManager.default.isExecutableFile(atPath: opensslPath), "TLS tests skipped: /usr/bin/openssl is missing"))
struct TLSTests {
    static let openssl = opensslPath

    /// `openssl s_server` on a free port of 127.0.0.1 with a new self-signed certificate, for `body`.
    func withUntrustedServer(_ body: (Int) async throws -> Void) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xeroml-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = dir.appendingPathComponent("key.pem").path, certificate = dir.appendingPathComponent("cert.pem").path
        let made = try await RunningProcess(executable: URL(fileURLWithPath: Self.openssl), arguments: [
            // An EC key: made in milliseconds, where RSA keys cost the suite's start CPU.
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", certificate, "-days", "1", "-subj", "/CN=127.0.0.1",
        ]).wait(timeout: .seconds(60))
        try #require(made.status == 0, "openssl req: \(made.stderr)")
        let port = try PostgresCluster.freePort()
        let server = try RunningProcess(executable: URL(fileURLWithPath: Self.openssl), arguments: [
            "s_server", "-accept", "127.0.0.1:\(port)", "-cert", certificate, "-key", key, "-www",
        ])
        do {
            try await server.waitFor(.seconds(30), "openssl s_server to listen") { out, _ in out.contains("ACCEPT") }
            try await body(port)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    @Test(arguments: TransportKind.allCases)
    func anUntrustedCertificateFailsAtOnceAndIsNotRetryable(_ kind: TransportKind) async throws {
        try await withUntrustedServer { port in
            let clock = ContinuousClock()
            let start = clock.now
            let error = await #expect(throws: HTTPError.self) {
                try await kind.make(timeout: .seconds(60)).send(HTTPRequest(url: URL(string: "https://127.0.0.1:\(port)/v1")!))
            }
            #expect(error?.code == .tlsFailed, "\(String(describing: error))")
            #expect(error?.isRetryable == false)
            // At once, long before the 60 s deadline (room for the suite's start on two cores).
            #expect(clock.now - start < .seconds(30), "took \(clock.now - start)")
        }
    }

    @Test func aChatClientSaysWhatToDoAndDoesNotRetry() async throws {
        try await withUntrustedServer { port in
            let client = ChatClient(configuration: ChatConfiguration(baseURL: URL(string: "https://127.0.0.1:\(port)/v1")!,
                                                                     model: "m", timeout: .seconds(20)))
            let error = await #expect(throws: ChatError.self) { try await client.complete("hello") }
            #expect(error?.code == .tlsFailed)
            #expect(error?.isRetryable == false)
            #expect(error?.localizedDescription.contains("not trusted") == true, "\(String(describing: error?.localizedDescription))")
            #expect(error?.localizedDescription.contains("trust store") == true)
        }
    }
}
