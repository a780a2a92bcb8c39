import ArgumentParser
import Foundation
import XeroML
import XeroMLJudge

/// `xeroml eval`: runs a dataset through an OpenAI-compatible model with a prompt template, scores
/// the replies with evaluators (heuristics and LLM judges) and prints the run's summary.
struct Eval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a dataset through an OpenAI-compatible model and score the replies.",
        discussion: """
            Each item's prompt is rendered from --prompt (and --system) with placeholders: {{input}}, \
            {{input.key.sub}}, {{expected_output}}, {{metadata.key}}. The reply text is the item's output.

            The model endpoint is --base-url and --model, else $XEROML_JUDGE_BASE_URL and \
            $XEROML_JUDGE_MODEL. Judge evaluators (helpfulness, accuracy, correctness, relevance, \
            hallucination, toxicity, conciseness, faithfulness, context_relevance) use \
            --judge-base-url/--judge-model, else the XEROML_JUDGE_* variables, else the model under test.

            API keys stay with their hosts: --api-key-env names the model's key, --judge-api-key-env the \
            judge's. $XEROML_JUDGE_API_KEY goes only to $XEROML_JUDGE_BASE_URL when that is set (to any \
            endpoint without a key of its own when it is not), $OPENAI_API_KEY to any endpoint without a \
            key of its own, and the judge gets the model's key only when both use the same base URL.

            Exit status: 0 when the run finished with no more failed items than --max-errors (default 0); \
            3 when more items failed; 1 when the run could not be made (configuration, storage); 64 for \
            bad usage; 130, 143 or 129 after Ctrl-C, SIGTERM or SIGHUP (the run is then interrupted and \
            --resume continues it).

            Example, against a local Ollama:
              xeroml eval --dataset capitals --name llama-baseline
                --base-url http://127.0.0.1:11434/v1 --model llama3.1:8b
                --prompt "Answer with the city only: {{input.question}}"
                --evaluator exact_match --evaluator correctness
            """)

    @OptionGroup var store: StoreOptions

    @Option(help: "The dataset to run.")
    var dataset: String

    @Option(help: "The run name (unique within the dataset; see --resume).")
    var name: String

    @Option(help: "The user prompt template, e.g. \"Answer: {{input.question}}\".")
    var prompt: String

    @Option(help: "A system message template.")
    var system: String?

    @Option(help: "The model under test (default: $XEROML_JUDGE_MODEL).")
    var model: String?

    @Option(name: .customLong("base-url"), help: "The endpoint's API root, e.g. http://127.0.0.1:11434/v1 (default: $XEROML_JUDGE_BASE_URL).")
    var baseURL: String?

    @Option(name: .customLong("api-key-env"),
            help: "The environment variable holding the API key (default: XEROML_JUDGE_API_KEY, else OPENAI_API_KEY).")
    var apiKeyEnv: String?

    @Option(help: "The sampling temperature of the model under test (default: the server's).")
    var temperature: Double?

    @Option(name: .customLong("max-tokens"), help: "The most tokens per reply (default: the server's).")
    var maxTokens: Int?

    @Option(name: .customLong("evaluator"), help: "An evaluator by name; repeat for several (e.g. exact_match, helpfulness).")
    var evaluators: [String] = []

    @Option(name: .customLong("judge-model"), help: "The judge model (default: $XEROML_JUDGE_MODEL, else --model).")
    var judgeModel: String?

    @Option(name: .customLong("judge-base-url"), help: "The judge endpoint (default: $XEROML_JUDGE_BASE_URL, else --base-url).")
    var judgeBaseURL: String?

    @Option(name: .customLong("judge-api-key-env"),
            help: "The environment variable holding the judge's API key (sent only to the judge's endpoint).")
    var judgeAPIKeyEnv: String?

    @Option(name: .customLong("judge-cache"), help: "Judge answer cache: shared, per-repetition or off.")
    var judgeCache = "shared"

    @Option(name: .customLong("context-key"), help: "Where judges find the context: a key path such as metadata.context or input.documents.")
    var contextKey = "metadata.context"

    @OptionGroup var runOptions: RunOptions

    @Option(help: "Seconds one request may take.")
    var timeout: Double = 60

    @Option(name: .customLong("max-attempts"), help: "Attempts per item and per judge call (429, 5xx and timeouts are retried).")
    var maxAttempts = 3

    @Option(help: "Seed of the retry jitter, for reproducible waits.")
    var seed: UInt64?

    @Option(name: .customLong("max-retry-after"),
            help: "The longest Retry-After wait honoured, in seconds; a longer one fails the item instead of pausing the run.")
    var maxRetryAfter: Double = 120

    @Option(name: .customLong("max-errors"), help: "Failed items tolerated before the exit status says the run failed (3).")
    var maxErrors = 0

    @Flag(help: "Continue the run of the same name: only items without a result run.")
    var resume = false

    @Flag(name: .customLong("retry-errors"),
          help: "With --resume: also run again the items whose result is an error, even in a finished run (their results are replaced).")
    var retryErrors = false

    @Flag(name: .customLong("allow-changes"),
          help: "With --resume: continue even if the model, prompt, parameters or evaluators differ from the run's (recorded in the run).")
    var allowChanges = false

    /// `--verbose` (from the store options): also prints the full error text of every failed item at the end.
    var verbose: Bool { store.verbose }

    func validate() throws {
        guard maxAttempts >= 1 else { throw ValidationError("--max-attempts must be at least 1") }
        guard timeout > 0, timeout <= 86_400 else { throw ValidationError("--timeout must be more than 0 and at most 86400 seconds") }
        if let maxTokens, maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
        if let temperature, !(0...2).contains(temperature) { throw ValidationError("--temperature must be in 0…2") }
        guard maxRetryAfter >= 0, maxRetryAfter <= 86_400 else { throw ValidationError("--max-retry-after must be between 0 and 86400 seconds") }
        guard maxErrors >= 0 else { throw ValidationError("--max-errors must not be negative") }
        if allowChanges && !resume { throw ValidationError("--allow-changes goes with --resume") }
        if retryErrors && !resume { throw ValidationError("--retry-errors goes with --resume") }
        guard cachePolicy != nil else { throw ValidationError("--judge-cache must be shared, per-repetition or off") }
        do {
            _ = try PromptTemplate(prompt)
            if let system { _ = try PromptTemplate(system) }
        } catch {
            throw ValidationError("--prompt/--system: \(error)")
        }
        for (flag, value) in [("--base-url", baseURL), ("--judge-base-url", judgeBaseURL)] {
            if let value { _ = try Self.endpointURL(value, flag: flag) }
        }
    }

    var cachePolicy: JudgeCachePolicy? {
        switch judgeCache {
        case "shared": .shared
        case "per-repetition": .perRepetition
        case "off": .disabled
        default: nil
        }
    }

    static func endpointURL(_ text: String, flag: String) throws -> URL {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              url.host != nil
        else { throw ValidationError("\(flag) must be an http(s) URL such as http://127.0.0.1:11434/v1") }
        return url
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let promptTemplate = try PromptTemplate(prompt)
        let systemTemplate = try system.map { try PromptTemplate($0) }
        let (modelConfiguration, judgeConfiguration) = try configurations(environment)
        let dashboard = try XeroML.configuredDashboardBaseURL()

        let xeroml = try store.open()
        try await checkPlaceholders([promptTemplate] + (systemTemplate.map { [$0] } ?? []), in: xeroml)

        // One limiter for the model and the judges: a 429 from either slows both down. The task's
        // client has no limiter of its own (the runner holds a permit around each task) and no
        // retries (the runner retries the task); judges run after the task's permit is released.
        let limiter = AdaptiveLimiter(maximum: runOptions.concurrency)
        let retry = RetryPolicy(maxAttempts: maxAttempts, maxRetryAfter: .milliseconds(Int64(maxRetryAfter * 1000)))
        let modelClient = ChatClient(configuration: modelConfiguration, retry: .none)
        xeroml.registerJudges(client: ChatClient(configuration: judgeConfiguration, retry: retry, limiter: limiter),
                              cachePolicy: cachePolicy ?? .shared, contextKeyPath: contextKey)
        let selected: [any Evaluator]
        do {
            selected = try xeroml.evaluators.make(evaluators)
        } catch {
            throw CommandError("\(error)")
        }

        let runName = name
        let (events, continuation) = AsyncStream.makeStream(of: ExperimentProgress.self, bufferingPolicy: .bufferingNewest(1))
        let printer = Task { await ProgressPrinter(label: name).consume(events) }
        // The request has its own deadline; the task's is a backstop a little later.
        var options = ExperimentOptions(maxConcurrency: runOptions.concurrency, timeout: .milliseconds(Int64(timeout * 1000) + 5_000),
                                        retry: retry, repetitions: runOptions.repetitions, resume: resume,
                                        retryErrors: retryErrors, limiter: limiter,
                                        progress: continuation, seed: seed)
        options.allowConfigurationChange = allowChanges
        let experimentOptions = options
        // How the run is made, recorded with it: a --resume with anything different is refused.
        var metadata: [String: JSONValue] = [
            "model": .string(modelConfiguration.model), "base_url": .string(Self.recorded(modelConfiguration.baseURL)),
            "prompt": .string(prompt), "evaluators": .array(self.evaluators.map(JSONValue.string)),
        ]
        if let system { metadata["system"] = .string(system) }
        if let temperature { metadata["temperature"] = .double(temperature) }
        if let maxTokens { metadata["max_tokens"] = .int(Int64(maxTokens)) }
        if selected.contains(where: { $0.scoreSource == .judge }) {
            metadata["judge_model"] = .string(judgeConfiguration.model)
            metadata["judge_base_url"] = .string(Self.recorded(judgeConfiguration.baseURL))
        }
        let runMetadata = metadata
        let dataset = self.dataset
        // A finished run resumed without --retry-errors runs nothing; say so after its summary.
        var finishedAlready = false
        if resume && !retryErrors { finishedAlready = try await xeroml.findRun(name, datasetName: dataset)?.status == .finished }
        let report: ExperimentReport
        do {
            report = try await withInterruptHandling {
                try await xeroml.runExperiment(name: runName, datasetName: dataset, metadata: .object(runMetadata),
                                               evaluators: selected, options: experimentOptions) { run in
                    var messages: [ChatMessage] = []
                    if let systemTemplate {
                        messages.append(.system(try systemTemplate.render(
                            input: run.input, expectedOutput: run.expectedOutput, metadata: run.metadata)))
                    }
                    messages.append(.user(try promptTemplate.render(
                        input: run.input, expectedOutput: run.expectedOutput, metadata: run.metadata)))
                    let reply = try await modelClient.complete(messages: messages, options: ChatOptions(name: "model"))
                    run.setOutput(.string(reply.content))
                }
            }
        } catch is CancellationError {
            await printer.value
            print("Run \"\(name)\" interrupted; committed results are kept in \(xeroml.path). Continue with --resume.")
            throw interruptedExitCode
        } catch let error as XeroMLError where error.code == .alreadyExists {
            continuation.finish()
            await printer.value
            throw CommandError("\(error.message), or pass --resume to continue it")
        } catch {
            continuation.finish()
            await printer.value
            throw error
        }
        await printer.value
        if finishedAlready {
            let failed = report.run.errorCount
            print("Run \"\(name)\" was finished already: nothing ran. "
                  + (failed == 0 ? "" : "Its \(failed) failed item\(failed == 1 ? " is" : "s are") kept as they are; "
                     + "--retry-errors with --resume runs \(failed == 1 ? "it" : "them") again."))
        }
        print(report.format())
        print("  model: \(modelConfiguration.model) at \(modelConfiguration.baseURL.absoluteString)")
        let url = dashboard.appendingPathComponent("runs").appendingPathComponent(report.run.id)
        print("  url: \(url)")
        let failed = report.run.errorCount
        if failed > 0 {
            if verbose {
                print("")
                try await printErrors(of: report.run, in: xeroml)
            } else {
                print("  \(failed) failed item\(failed == 1 ? "" : "s"): `xeroml runs show \(report.run.id) --errors --db \(xeroml.path)` prints the errors in full")
            }
        }
        print("")
        print("Open it in the dashboard: `xeroml ui --db \(xeroml.path)`, then \(url)")
        if failed > maxErrors {
            FileHandle.standardError.write(Data(
                "xeroml eval: \(failed) of \(report.run.itemCount) items failed (--max-errors \(maxErrors)); exit status 3\n".utf8))
            throw ExitCode(3)
        }
    }

    /// The model under test and the judge: flags first, then the XEROML_JUDGE_* variables.
    func configurations(_ environment: [String: String]) throws -> (ChatConfiguration, ChatConfiguration) {
        func variable(_ name: String) -> String? {
            environment[name].flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
        }
        guard let baseText = baseURL ?? variable(ChatConfiguration.baseURLVariable),
              let modelName = model ?? variable(ChatConfiguration.modelVariable)
        else {
            throw CommandError("""
                no model endpoint: pass --base-url and --model (e.g. --base-url http://127.0.0.1:11434/v1 \
                --model llama3.1:8b), or set \(ChatConfiguration.baseURLVariable) and \(ChatConfiguration.modelVariable)
                """)
        }
        let environmentJudgeURL = variable(ChatConfiguration.baseURLVariable)
        /// The key of an endpoint without a key flag: XEROML_JUDGE_API_KEY belongs to
        /// XEROML_JUDGE_BASE_URL when that is set; OPENAI_API_KEY is everyone's default.
        func environmentKey(for url: URL) -> String? {
            if let environmentJudgeURL, !Self.sameEndpoint(environmentJudgeURL, url.absoluteString) {
                return variable(ChatConfiguration.fallbackAPIKeyVariable)
            }
            return variable(ChatConfiguration.apiKeyVariable) ?? variable(ChatConfiguration.fallbackAPIKeyVariable)
        }
        func flaggedKey(_ name: String?, flag: String) throws -> String? {
            guard let name else { return nil }
            guard let key = variable(name) else {
                throw CommandError("\(flag) \(name): the variable is \(environment[name] == nil ? "not set" : "empty")")
            }
            return key
        }
        let modelURL = try Self.endpointURL(baseText, flag: baseURL == nil ? ChatConfiguration.baseURLVariable : "--base-url")
        let apiKey = try flaggedKey(apiKeyEnv, flag: "--api-key-env") ?? environmentKey(for: modelURL)
        var modelConfiguration = ChatConfiguration(
            baseURL: modelURL, model: modelName, apiKey: apiKey, temperature: temperature, maxTokens: maxTokens,
            timeout: .milliseconds(Int64(timeout * 1000)))
        // The model under test answers in free text; judges ask for structured output.
        modelConfiguration.structuredOutput = false

        // The judge: each XEROML_JUDGE_* variable on its own (the endpoint, the model, the sampling
        // options), the model under test for what none of them names.
        var judge: ChatConfiguration
        do {
            var filled = environment
            if variable(ChatConfiguration.baseURLVariable) == nil { filled[ChatConfiguration.baseURLVariable] = modelURL.absoluteString }
            if variable(ChatConfiguration.modelVariable) == nil { filled[ChatConfiguration.modelVariable] = modelName }
            guard let configuration = try ChatConfiguration.fromEnvironment(filled) else {
                throw CommandError("the judge's endpoint could not be read from the environment")
            }
            judge = configuration
        } catch let error as ChatError {
            throw CommandError("\(error)")
        }
        if let judgeBaseURL { judge.baseURL = try Self.endpointURL(judgeBaseURL, flag: "--judge-base-url") }
        if let judgeModel { judge.model = judgeModel }
        // A key goes only where it was given: the judge's own, else the model's when they share an endpoint.
        judge.apiKey = try flaggedKey(judgeAPIKeyEnv, flag: "--judge-api-key-env")
            ?? (Self.sameEndpoint(judge.baseURL.absoluteString, modelURL.absoluteString) ? apiKey : environmentKey(for: judge.baseURL))
        judge.timeout = .milliseconds(Int64(timeout * 1000))
        return (modelConfiguration, judge)
    }

    /// A base URL as the run records it: without trailing slashes, so that `…/v1/` and `…/v1` resume
    /// each other's runs.
    static func recorded(_ url: URL) -> String {
        var text = url.absoluteString
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }

    /// Whether two base URLs name the same endpoint (scheme, host, port and path; a trailing slash
    /// and case of scheme and host aside).
    static func sameEndpoint(_ a: String, _ b: String) -> Bool {
        func normal(_ text: String) -> String? {
            guard let url = URLComponents(string: text) else { return nil }
            var path = url.path
            while path.hasSuffix("/") { path.removeLast() }
            let scheme = url.scheme?.lowercased() ?? ""
            let port = url.port ?? (scheme == "https" ? 443 : 80)
            return "\(scheme)://\(url.host?.lowercased() ?? ""):\(port)\(path)"
        }
        return normal(a) != nil && normal(a) == normal(b)
    }

    /// Fails before any request when a placeholder resolves in none of the first items.
    func checkPlaceholders(_ templates: [PromptTemplate], in xeroml: XeroML) async throws {
        var sample: [DatasetItem] = []
        do {
            for try await item in xeroml.datasetItems(datasetName: dataset, pageSize: 100) {
                sample.append(item)
                if sample.count >= 100 { break }
            }
        } catch let error as XeroMLError where error.code == .notFound {
            throw CommandError("\(error.message); `xeroml datasets list` shows the datasets")
        }
        guard !sample.isEmpty else { throw CommandError("dataset \"\(dataset)\" has no items") }
        for template in templates {
            var failure: PromptTemplateError?
            let renders = sample.contains { item in
                do {
                    _ = try template.render(input: item.input, expectedOutput: item.expectedOutput, metadata: item.metadata)
                    return true
                } catch {
                    failure = error as? PromptTemplateError
                    return false
                }
            }
            if !renders, let failure {
                throw CommandError("unknown placeholder: \(failure) (checked \(sample.count) item(s) of \"\(dataset)\"; "
                                   + "first input: \(sample[0].input.jsonString.prefix(120)))")
            }
        }
    }
}

/// `xeroml judge-cache`: the cache of judge answers kept in the store.
struct JudgeCacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "judge-cache",
        abstract: "Manage the cache of LLM judge answers.",
        subcommands: [Clear.self])

    struct Clear: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove every cached judge answer, so the next runs ask the judges again.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            // Clearing writes, but a mistyped path must not create a new, empty store.
            _ = try store.openReadOnly()
            let removed = try await store.open().clearJudgeCache()
            print("Cleared \(removed) cached judge answer\(removed == 1 ? "" : "s") from \(store.path).")
        }
    }
}
