import Foundation
import Testing
import XeroMLSyncAPI

@Suite("Gzip bodies")
struct GzipTests {
    @Test("compress then decompress gives the bytes back")
    func roundTrip() throws {
        let text = String(repeating: "{\"id\":\"0190\",\"name\":\"accuracy\",\"value\":0.5}", count: 5000)
        let data = Data(text.utf8)
        let packed = try Gzip.compress(data)
        #expect(packed.count < data.count / 10)
        #expect(packed.prefix(2) == Data([0x1f, 0x8b]))
        #expect(try Gzip.decompress(packed, limit: data.count) == data)
        #expect(try Gzip.decompress(try Gzip.compress(Data()), limit: 10) == Data())
    }

    @Test("a body that inflates past the limit is refused")
    func limit() throws {
        let packed = try Gzip.compress(Data(count: 1_000_000))
        #expect(throws: Gzip.Failure.tooLarge(limit: 999_999)) { try Gzip.decompress(packed, limit: 999_999) }
    }

    @Test("truncated and foreign bodies are malformed, not crashes")
    func malformed() throws {
        let packed = try Gzip.compress(Data(String(repeating: "abc", count: 1000).utf8))
        for bad in [packed.prefix(packed.count / 2), Data("not gzip".utf8), Data()] {
            #expect {
                try Gzip.decompress(Data(bad), limit: 1 << 20)
            } throws: { error in
                if case Gzip.Failure.malformed = error { return true }
                return false
            }
        }
    }
}
