import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import XeroML
import XeroMLDashboard
import XeroMLServer

/// Every route through Hummingbird's in-process client, over a store full of hostile payloads.
@Suite(.timeLimit(.minutes(3))) struct RouteTests {
    static let unknownID = "01930000-0000-7000-8000-000000000000"

    func html(_ client: some TestClientProtocol, _ uri: String, status: HTTPResponse.Status = .ok,
              sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        try await client.execute(uri: uri, method: .get) { response in
            #expect(response.status == status, "\(uri)", sourceLocation: sourceLocation)
            #expect(response.headers[.contentType] == "text/html; charset=utf-8", "\(uri)", sourceLocation: sourceLocation)
            let policy = response.headers[.contentSecurityPolicy] ?? ""
            #expect(policy.contains("default-src 'none'") && policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"),
                    sourceLocation: sourceLocation)
            #expect(response.headers[.xContentTypeOptions] == "nosniff", sourceLocation: sourceLocation)
            let body = response.text
            #expect(body.hasPrefix("<!DOCTYPE html>"), sourceLocation: sourceLocation)
            Hostile.assertEscaped(body, uri, sourceLocation: sourceLocation)
            return body
        }
    }

    func api(_ client: some TestClientProtocol, _ uri: String, status: HTTPResponse.Status = .ok,
             sourceLocation: SourceLocation = #_sourceLocation) async throws -> Any {
        try await client.execute(uri: uri, method: .get) { response in
            #expect(response.status == status, "\(uri)", sourceLocation: sourceLocation)
            #expect(response.headers[.contentType] == "application/json; charset=utf-8", "\(uri)", sourceLocation: sourceLocation)
            #expect(response.headers[.contentSecurityPolicy] != nil, sourceLocation: sourceLocation)
            return try JSONSerialization.jsonObject(with: Data(buffer: response.body))
        }
    }

    @Test func everyPageServesHostileValuesAsText() async throws {
        let f = try await Fixture.make()
        defer { f.remove() }
        try await f.application().test(.router) { client in
            let home = try await html(client, "/")
            #expect(home.contains("capitals &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") || home.contains("capitals &lt;script&gt;alert('x')&lt;/script&gt;"))
            #expect(home.contains(f.baseline.id) && home.contains(f.candidate.id))

            let dataset = try await html(client, "/datasets/\(f.datasetID)")
            #expect(dataset.contains("Compare runs") && dataset.contains(#"name="run" value="\#(f.baseline.id)""#))
            #expect(dataset.contains("question 5"))
            #expect(dataset.contains("<svg"), "the mean-and-interval chart is drawn")

            let run = try await html(client, "/runs/\(f.candidate.id)")
            for section in ["Scores", "Run scores", "Errors", "Items"] { #expect(run.contains(">\(section)</h2>"), "\(section)") }
            #expect(run.contains("model failed: &lt;script&gt;"), "the full error text, escaped")
            #expect(run.contains("Histogram of quality"))
            #expect(run.contains("/items/\(f.candidateItems["i2"]!)"), "each row links to its trace")

            for (key, id) in f.candidateItems {
                let item = try await html(client, "/items/\(id)")
                #expect(item.contains("Task trace"), "\(key)")
                #expect(item.contains("gpt \"&gt;&lt;img") || item.contains("gpt &quot;&gt;&lt;img"), "model name of \(key), escaped")
            }
            let trace = try await f.xeroml.results(runID: f.candidate.id).items.first { $0.id == f.candidateItems["i0"] }!.traceID!
            let tracePage = try await html(client, "/traces/\(trace)")
            #expect(tracePage.contains("judged &lt;script&gt;"), "score comments are shown, escaped")

            let compare = try await html(client, "/compare?run=\(f.baseline.id)&run=\(f.candidate.id)")
            #expect(compare.contains("Baseline mean") && compare.contains("<svg"))
            #expect(compare.contains("wrong"), "the candidate's output on i2")
            _ = try await html(client, "/compare?run=\(f.baseline.id)&run=\(f.candidate.id)&diff=expected&sort=change")
            _ = try await html(client, "/runs/\(f.candidate.id)?diff=expected&q=\(Link.encode(Hostile.script))")
        }
    }

    @Test func assetsAreServedWithTheirTypes() async throws {
        let f = try await Fixture.make()
        defer { f.remove() }
        try await f.application().test(.router) { client in
            try await client.execute(uri: "/assets/dashboard.css", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/css; charset=utf-8")
                #expect(response.text.contains("prefers-color-scheme: dark"))
            }
            try await client.execute(uri: "/assets/dashboard.js", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/javascript; charset=utf-8")
                #expect(response.text.contains("/progress"))
            }
        }
    }

    @Test func runItemsFilterSortAndPage() async throws {
        let f = try await Fixture.make()
        defer { f.remove() }
        try await f.application().test(.router) { client in
            func ids(_ query: String) async throws -> [String] {
                let page = try await api(client, "/api/runs/\(f.candidate.id)/items?\(query)") as! [String: Any]
                return (page["items"] as! [[String: Any]]).map { $0["id"] as! String }
            }
            let byKey = Dictionary(uniqueKeysWithValues: f.candidateItems.map { ($1, $0) })
            #expect(try await ids("filter=errors").map { byKey[$0] } == ["i3"])
            #expect(try await ids("score=quality&op=below&value=0.5").map { byKey[$0] } == ["i2"])
            #expect(try await ids("score=quality&op=above&value=0.5").count == 4)
            #expect(try await ids("sort=score:quality&order=asc").map { byKey[$0] }.first == "i2")
            #expect(try await ids("sort=latency&order=desc").count == 6)
            #expect(try await ids("q=question+4").map { byKey[$0] } == ["i4"])
            // A filter and a sort on one score, on two scores, and with another sort.
            #expect(Set(try await ids("score=quality&op=above&value=0.5&sort=score:quality&order=desc").map { byKey[$0] }) == ["i0", "i1", "i4", "i5"])
            #expect(try await ids("score=quality&op=below&value=0.5&sort=score:correct").map { byKey[$0] } == ["i2"])
            #expect(try await ids("score=quality&op=above&value=0.5&sort=latency&filter=all&q=question+5").map { byKey[$0] } == ["i5"])
            #expect(try await ids("score=quality&op=above&value=0.5&filter=errors").isEmpty)
            // Pages of two: three pages, the last without a next page.
            let first = try await api(client, "/api/runs/\(f.candidate.id)/items?limit=2") as! [String: Any]
            #expect(first["hasNextPage"] as? Bool == true)
            let last = try await api(client, "/api/runs/\(f.candidate.id)/items?limit=2&page=3") as! [String: Any]
            #expect(last["hasNextPage"] as? Bool == false && (last["items"] as! [Any]).count == 2)
            let all = try await ids("limit=2") + ids("limit=2&page=2") + ids("limit=2&page=3")
            #expect(Set(all) == Set(f.candidateItems.values))
            // The page keeps the query in its links.
            let page = try await html(client, "/runs/\(f.candidate.id)?limit=2&filter=all&sort=latency")
            #expect(page.contains("sort=latency") && page.contains("page=2"))
            // Dataset items: search and versions.
            let dataset = try await api(client, "/api/datasets/\(f.datasetID)?q=question+3") as! [String: Any]
            #expect((dataset["items"] as! [[String: Any]]).map { $0["externalID"] as? String } == ["i3"])
            let old = try await api(client, "/api/datasets/\(f.datasetID)?version=2") as! [String: Any]
            #expect((old["items"] as! [Any]).count == 2)
        }
    }

    @Test func compareRunsFiltersToTheRegressedItem() async throws {
        let f = try await Fixture.make()
        defer { f.remove() }
        try await f.application().test(.router) { client in
            let base = "/api/compare?run=\(f.candidate.id)&run=\(f.baseline.id)"
            func labels(_ filter: String) async throws -> [String: String] {
                let page = try await api(client, base + "&filter=" + filter) as! [String: Any]
                let runs = page["runs"] as! [[String: Any]]
                #expect(runs[0]["id"] as? String == f.baseline.id, "the oldest run is the baseline")
                var labels: [String: String] = [:]
                for item in page["items"] as! [[String: Any]] {
                    let input = (item["input"] as! [String: Any])["question"] as! String
                    labels[input] = item["label"] as? String
                }
                return labels
            }
            #expect(try await labels("regressions") == ["question 2": "regressed", "question 3": "new error"])
            #expect(try await labels("improvements").isEmpty)
            #expect(try await labels("errors") == ["question 3": "new error"])
            #expect(try await labels("all").count == 6)
            let page = try await api(client, base) as! [String: Any]
            let scores = page["scores"] as! [[String: Any]]
            #expect(Set(scores.map { $0["name"] as! String }) == ["correct", "quality"])
            for score in scores { #expect(["significant regression", "significant improvement", "within noise"].contains(score["verdict"] as! String)) }
            // Sorted by the largest change: the new error, then the regression.
            let sorted = try await api(client, base + "&sort=change") as! [String: Any]
            let first = (sorted["items"] as! [[String: Any]]).prefix(2).map { $0["label"] as! String }
            #expect(Set(first) == ["new error", "regressed"])
            // The candidate as baseline: the same items improve.
            let reversed = try await api(client, base + "&baseline=\(f.candidate.id)&filter=improvements") as! [String: Any]
            #expect((reversed["items"] as! [Any]).count == 2)
            // The page round-trips the selection.
            let html = try await html(client, "/compare?run=\(f.baseline.id)&run=\(f.candidate.id)&filter=regressions")
            #expect(html.contains(#"<option value="regressions" selected>"#))
            #expect(html.contains("question 2") && !html.contains("question 4"))
        }
    }

    @Test func apiAnswersWithJSON() async throws {
        let f = try await Fixture.make()
        defer { f.remove() }
        try await f.application().test(.router) { client in
            let runs = try await api(client, "/api/runs") as! [[String: Any]]
            #expect(runs.count == 2 && runs.allSatisfy { $0["status"] as? String == "finished" })
            let detail = try await api(client, "/api/runs/\(f.candidate.id)") as! [String: Any]
            #expect((detail["run"] as! [String: Any])["errorCount"] as? Int == 1)
            let message = try #require((detail["errors"] as? [[String: Any]])?.first?["message"] as? String)
            #expect(message.hasSuffix("model failed: " + Hostile.all), "the whole error text")
            let quality = (detail["scores"] as! [[String: Any]]).first { $0["name"] as? String == "quality" }!
            #expect(abs((quality["mean"] as! Double) - (0.9 * 4 + 0.1) / 5) < 1e-9)
            let progress = try await api(client, "/api/runs/\(f.candidate.id)/progress") as! [String: Any]
            #expect(progress["itemCount"] as? Int == 6 && progress["expectedItems"] as? Int == 6)
            let item = try await api(client, "/api/items/\(f.candidateItems["i0"]!)") as! [String: Any]
            let trace = item["trace"] as! [String: Any]
            #expect((trace["observations"] as! [Any]).count == 3, "the root span, the retrieval and the generation")
            let traceID = trace["id"] as! String
            let byTrace = try await api(client, "/api/traces/\(traceID)") as! [String: Any]
            #expect((byTrace["item"] as! [String: Any])["id"] as? String == f.candidateItems["i0"])
            let datasets = try await api(client, "/api/datasets") as! [[String: Any]]
            #expect(datasets.first?["name"] as? String == Fixture.datasetName)
        }
    }

    @Test func unknownThingsAre404AndMalformedInputIs400() async throws {
        let f = try await Fixture.make()
        defer { f.remove() }
        try await f.application().test(.router) { client in
            for path in ["/runs/", "/datasets/", "/items/", "/traces/"] {
                let body = try await html(client, path + Self.unknownID, status: .notFound)
                #expect(body.contains("Not found"))
                let error = try await api(client, "/api" + path + Self.unknownID, status: .notFound) as! [String: Any]
                #expect((error["error"] as! [String: Any])["status"] as? Int == 404)
            }
            _ = try await html(client, "/no/such/page", status: .notFound)
            _ = try await api(client, "/api/no/such", status: .notFound)
            _ = try await html(client, "/compare?run=\(f.baseline.id)&run=\(Self.unknownID)", status: .notFound)

            let cases: [(String, String)] = [
                ("/runs/not-an-id", "id"), ("/runs/\(f.candidate.id)?page=0", "page"), ("/runs/\(f.candidate.id)?page=abc", "page"),
                ("/runs/\(f.candidate.id)?filter=bogus", "filter"), ("/runs/\(f.candidate.id)?sort=bogus", "sort"),
                ("/runs/\(f.candidate.id)?order=up", "order"), ("/runs/\(f.candidate.id)?score=quality", "value"),
                ("/runs/\(f.candidate.id)?score=quality&value=x", "value"), ("/runs/\(f.candidate.id)?score=quality&value=1&op=near", "op"),
                ("/datasets/\(f.datasetID)?version=99", "version"), ("/compare?run=\(f.baseline.id)", "run"),
                ("/compare?run=bad", "run"), ("/compare?run=\(f.baseline.id)&run=\(f.candidate.id)&filter=x", "filter"),
                ("/items/\(Link.encode(Hostile.script))", "id"),
            ]
            for (uri, parameter) in cases {
                let body = try await html(client, uri, status: .badRequest)
                #expect(body.contains(parameter + ":"), "\(uri) names \(parameter)")
                // The same question of the API: a run's items are under /api/runs/ID/items.
                let apiURI = "/api" + (uri.hasPrefix("/runs/\(f.candidate.id)?")
                    ? uri.replacingOccurrences(of: "\(f.candidate.id)?", with: "\(f.candidate.id)/items?") : uri)
                let error = try await api(client, apiURI, status: .badRequest) as? [String: Any]
                #expect((error?["error"] as? [String: Any])?["parameter"] as? String == parameter, "\(apiURI)")
            }
        }
    }
}

/// The builder escapes by construction.
@Suite struct HTMLTests {
    @Test func textAndAttributesAreEscaped() {
        let html = HTML.element("a", [.href(Link(["runs", Hostile.image], query: [("q", Hostile.all)])), .named("title", Hostile.all)],
                                text: Hostile.all)
        Hostile.assertEscaped(html.rendered, "builder")
        #expect(html.rendered.hasPrefix(#"<a href="/runs/%22%3E%3Cimg"#))
        #expect(html.rendered.contains("title=\"&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&gt;&lt;img"))
        #expect(html.rendered.contains(">&lt;script&gt;alert('x')&lt;/script&gt;"))
    }

    @Test func linksStayOnThisSite() {
        for hostile in [Hostile.javascript, "//evil.example/x", "https://evil.example"] {
            let link = Link([hostile])
            #expect(link.rendered.hasPrefix("/") && !link.rendered.hasPrefix("//") && !link.rendered.contains(":"))
        }
    }

    @Test func wordDiffMarksChanges() {
        #expect(WordDiff.parts(from: "the capital is Bern", to: "the capital is Zurich") ==
                [.same("the capital is "), .removed("Bern"), .added("Zurich")])
        #expect(WordDiff.parts(from: "a b", to: "a b") == [.same("a b")])
        let diff = WordDiff.html(from: Hostile.script, to: Hostile.image)
        Hostile.assertEscaped(diff.rendered, "diff")
    }

    @Test func queryStringsDecodeLikeForms() throws {
        let query = QueryParameters(queryString: "q=a+b%20c&run=1&run=2&empty=&flag")
        #expect(query["q"] == "a b c")
        #expect(query.all("run") == ["1", "2"])
        #expect(query["empty"] == nil && query["flag"] == nil)
        #expect(throws: DashboardError.self) { try QueryParameters(queryString: "page=-1").itemsQuery() }
    }
}
