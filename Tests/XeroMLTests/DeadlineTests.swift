import Foundation
import Synchronization
import Testing
@testable import XeroML

@Suite("Deadlines", .timeLimit(.minutes(1)))
struct DeadlineTests {
    @Test("deadlines fire in deadline order, cancelled ones never")
    func order() async throws {
        let deadlines = Deadlines()
        let fired = Mutex<[Int]>([])
        var ids: [Int: UInt64] = [:]
        for n in [5, 1, 4, 2, 3, 6] {
            ids[n] = deadlines.schedule(after: .milliseconds(40 * n)) { fired.withLock { $0.append(n) } }
        }
        deadlines.cancel(ids[4]!)
        deadlines.cancel(ids[6]!)
        try await Task.sleep(for: .milliseconds(40 * 6 + 300))
        #expect(fired.withLock { $0 } == [1, 2, 3, 5])
    }

    @Test("many cancelled deadlines leave no actions behind and the live ones still fire")
    func churn() async throws {
        let deadlines = Deadlines()
        let fired = Atomic<Int>(0)
        for _ in 0..<10_000 {
            let id = deadlines.schedule(after: .seconds(60)) { fired.add(1, ordering: .relaxed) }
            deadlines.cancel(id)
        }
        _ = deadlines.schedule(after: .milliseconds(20)) { fired.add(1, ordering: .relaxed) }
        let deadline = ContinuousClock.now + .seconds(30)
        while fired.load(ordering: .relaxed) == 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        let count = fired.load(ordering: .relaxed)
        #expect(count == 1)
    }

    @Test("withTimeout returns the body's value, or throws TaskTimeoutError and cancels the body")
    func timeout() async throws {
        #expect(try await withTimeout(.seconds(5)) { 42 } == 42)
        let cancelled = Atomic<Bool>(false)
        let start = ContinuousClock.now
        await #expect(throws: TaskTimeoutError.self) {
            try await withTimeout(.milliseconds(100)) {
                do { try await Task.sleep(for: .seconds(90)) } catch { cancelled.store(true, ordering: .relaxed); throw error }
            }
        }
        // Far below the body's 90 s, with room for the suite's start on two cores.
        #expect(ContinuousClock.now - start < .seconds(30))
        let wasCancelled = cancelled.load(ordering: .relaxed)
        #expect(wasCancelled)
        struct Boom: Error {}
        await #expect(throws: Boom.self) { try await withTimeout(.seconds(5)) { throw Boom() } }
    }
}
