import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import XeroMLDashboard
import XeroMLServer
import XeroMLSyncAPI
import XeroMLTesting
@testable import XeroMLTeamServer

@Suite("Team server: figures computed at commit", .enabled(if: postgresAvailable, PostgresCluster.skipReason),
       .timeLimit(.minutes(2)))
struct DashboardWarmingTests {
    @Test("a commit computes the run page's figures into the dashboard's cache, the same figures a first visit computes")
    func aCommitWarmsTheRunPage() async throws {
        let url = try await freshDatabase()
        try await withDatabase(url) { database in
            let key = try await makeProject(database)
            let cache = PostgresDashboardCache()
            let server = TeamServer(database: database)
            let router = Router()
            server.addAPIRoutes(to: router, warming: cache)
            let app = DashboardServer.application(router: router, host: "127.0.0.1", port: 0, logger: server.logger) { _ in }
            try await app.test(.live) { client in
                let endpoint = Endpoint(base: "http://127.0.0.1:\(try #require(client.port))")
                let run = SyntheticRun.make(items: 30, itemsPerChunk: 10)
                _ = try await endpoint.put(SyncAPI.runPath(run.runID), run.manifest, token: key.token)
                for (index, chunk) in run.chunks.enumerated() {
                    #expect(try await endpoint.put(SyncAPI.chunkPath(run.runID, index: index), chunk, token: key.token).status == 200)
                }
                let store = PostgresDashboardStore(client: database.client, projectID: key.id, cache: cache)
                // Nothing is computed before the commit.
                #expect(cache.details.withLock { $0[store.cacheKey(run.runID)] } == nil)
                let commit = try await endpoint.post(SyncAPI.commitPath(run.runID), run.commit, token: key.token)
                #expect(try commit.decode(RunState.self).committed)

                // In the background: bounded, a regression fails here.
                let deadline = ContinuousClock.now + .seconds(30)
                while cache.details.withLock({ $0[store.cacheKey(run.runID)] }) == nil, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                }
                let warmed = try #require(cache.details.withLock { $0[store.cacheKey(run.runID)] })
                #expect(warmed.run.itemCount == 30)
                let computed = try #require(try await PostgresDashboardStore(client: database.client, projectID: key.id).run(id: run.runID))
                let encoder = JSONEncoder()
                encoder.outputFormatting = .sortedKeys
                #expect(try encoder.encode(warmed) == encoder.encode(computed))
                #expect(cache.computations.load(ordering: .relaxed) == 1)
            }
        }
    }

    @Test("requests for a run's figures while they are being computed wait for that one computation")
    func oneComputationAtATime() async throws {
        let url = try await freshDatabase()
        try await withDatabase(url) { database in
            let key = try await makeProject(database)
            let run = SyntheticRun.make(items: 200, itemsPerChunk: 100)
            try await withServer(database) { server in
                _ = try await server.put(SyncAPI.runPath(run.runID), run.manifest, token: key.token)
                for (index, chunk) in run.chunks.enumerated() {
                    _ = try await server.put(SyncAPI.chunkPath(run.runID, index: index), chunk, token: key.token)
                }
                _ = try await server.post(SyncAPI.commitPath(run.runID), run.commit, token: key.token)
            }
            let cache = PostgresDashboardCache()
            let store = PostgresDashboardStore(client: database.client, projectID: key.id, cache: cache)
            let details = try await withThrowingTaskGroup(of: RunDetail?.self) { group in
                for _ in 0..<8 { group.addTask { try await store.run(id: run.runID) } }
                return try await group.reduce(into: [RunDetail?]()) { $0.append($1) }
            }
            #expect(details.count == 8 && details.allSatisfy { $0?.run.itemCount == 200 })
            #expect(cache.computations.load(ordering: .relaxed) == 1)
            // Kept: a later request computes nothing; an unknown run is computed each time, and kept nowhere.
            _ = try await store.run(id: run.runID)
            #expect(try await store.run(id: "no-such-run") == nil)
            #expect(cache.computations.load(ordering: .relaxed) == 2)
            #expect(cache.computing.withLock { $0.isEmpty })
        }
    }
}
