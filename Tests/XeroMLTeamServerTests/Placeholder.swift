import Testing
import XeroMLTeamServer

@Suite("Team server")
struct TeamServerVersionTests {
    @Test("speaks protocol v1")
    func version() { #expect(TeamServer.apiVersion == "v1") }
}
