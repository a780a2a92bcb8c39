import Foundation
import Testing
import XeroML
import XeroMLHTTP
import XeroMLJudge
import XeroMLTesting

/// The judge-side errors read like errors: `localizedDescription` is their sentence (what failed, and
/// what to do), never Foundation's "The operation could not be completed".
@Suite(.timeLimit(.minutes(1))) struct JudgeErrorDescriptionTests {
    @Test func aRejectedRequestSaysWhatToCheck() async throws {
        try await withFakeOpenAIServer { server in
            server.enqueue(.status(401, body: #"{"error": {"message": "invalid API key"}}"#))
            let rejected = await #expect(throws: ChatError.self) { try await client(server).complete("hi") }
            let error = try #require(rejected)
            #expect(error.localizedDescription.hasSuffix(
                "answered HTTP 401: invalid API key (check the model name, the API key and the request's options)"),
                "\(error.localizedDescription)")
            // The description stored with a failed item stays the plain message.
            #expect(error.description == error.message)
            let http = try #require(error.underlying)
            #expect(http.localizedDescription == http.description)
            #expect(http.localizedDescription.hasPrefix("HTTP 401"))
        }
    }

    @Test func templateAndReplyErrorsHaveDescriptions() throws {
        var errors: [any Error] = []
        do { _ = try PromptTemplate("Question: {{input") } catch { errors.append(error) }
        do { _ = try JudgeTemplate.accuracy.messages(for: EvaluationInput(input: "q", output: "a"), context: nil) } catch {
            errors.append(error)
        }
        if case .failure(let failure) = JudgeReplyParser.parse("no verdict here", scale: .unitInterval) { errors.append(failure) }
        errors.append(HTTPError(.timeout, "no answer from http://127.0.0.1:9/v1 within 1 s"))
        #expect(errors.count == 4)
        for error in errors {
            let text = error.localizedDescription
            #expect(!text.contains("could not be completed"), "\(type(of: error)): \(text)")
            #expect(text == "\(error)", "\(type(of: error))")
        }
        #expect(errors[1].localizedDescription.contains("needs an expected output"))
    }
}
