import XeroMLTeamServer

print("xeroml-server (sync protocol \(TeamServer.apiVersion))")
