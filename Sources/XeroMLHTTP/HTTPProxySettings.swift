public import Foundation

/// Which proxy, if any, a request goes through: read from the environment as curl reads it, so a
/// machine set up for `curl` (and for URLSession on Linux, which uses libcurl) works unchanged.
///
/// - `https_proxy` or `HTTPS_PROXY` for `https://` addresses; `http_proxy` for `http://` ones (only
///   the lower-case name, as curl: a CGI environment sets `HTTP_PROXY` from a request header);
///   `all_proxy` or `ALL_PROXY` for either when the specific one is not set.
/// - `no_proxy` or `NO_PROXY`: a comma-separated list of hosts reached directly. An entry matches
///   the host itself and its subdomains (`example.com` and `.example.com` both match
///   `api.example.com`); `*` matches every host; a port after the host is ignored. (CIDR ranges,
///   which newer curl reads, are not.)
/// - A proxy is `http://[user:password@]host[:port]` (port 1080 when none is given, as curl) or
///   `socks5://host[:port]`. An `https://` proxy, a SOCKS proxy with credentials, and a variable whose
///   value is not an address (``unreadable``) make every request fail with
///   ``HTTPError/Code/invalidRequest`` naming the problem, rather than going out directly.
///
/// ```swift
/// let transport = NIOTransport(proxies: .none)                    // never a proxy
/// let corporate = NIOTransport(proxies: HTTPProxySettings(httpsProxy: URL(string: "http://proxy:3128")!))
/// ```
public struct HTTPProxySettings: Sendable, Hashable {
    /// The proxy of `http://` addresses.
    public var httpProxy: URL?
    /// The proxy of `https://` addresses.
    public var httpsProxy: URL?
    /// Hosts reached directly.
    public var noProxy: [String]
    /// The environment variables whose value could not be read as an address.
    public var unreadable: [String] = []

    /// Settings given in code.
    public init(httpProxy: URL? = nil, httpsProxy: URL? = nil, noProxy: [String] = []) {
        self.httpProxy = httpProxy
        self.httpsProxy = httpsProxy
        self.noProxy = noProxy
    }

    /// No proxy for any address.
    public static let none = HTTPProxySettings()

    /// The settings of `environment` (by default, this process's), as described above.
    public static func environment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> HTTPProxySettings {
        var unreadable: [String] = []
        func value(_ names: String...) -> URL? {
            for name in names {
                if let text = environment[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty {
                    guard let url = URL(string: text.contains("://") ? text : "http://" + text), url.host != nil else {
                        unreadable.append(name)
                        return nil
                    }
                    return url
                }
            }
            return nil
        }
        let all = value("all_proxy", "ALL_PROXY")
        let noProxy = (environment["no_proxy"] ?? environment["NO_PROXY"] ?? "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var settings = HTTPProxySettings(httpProxy: value("http_proxy") ?? all, httpsProxy: value("https_proxy", "HTTPS_PROXY") ?? all,
                                         noProxy: noProxy)
        settings.unreadable = unreadable
        return settings
    }

    /// The proxy a request to `url` goes through, or nil to go directly.
    public func proxy(for url: URL) -> URL? {
        let proxy = url.scheme?.lowercased() == "https" ? httpsProxy : httpProxy
        guard let proxy, let host = url.host?.lowercased() else { return nil }
        return bypasses(host) ? nil : proxy
    }

    /// Whether `host` is in ``noProxy``.
    func bypasses(_ host: String) -> Bool {
        let host = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        for entry in noProxy {
            if entry == "*" { return true }
            var name = entry.lowercased()
            // "host:port" and "[v6]:port": the port is ignored.
            if name.hasPrefix("[") {
                name = String(name.dropFirst().prefix { $0 != "]" })
            } else if name.filter({ $0 == ":" }).count == 1 {
                name = String(name.prefix { $0 != ":" })
            }
            if name.hasPrefix(".") { name.removeFirst() }
            guard !name.isEmpty else { continue }
            if host == name || host.hasSuffix("." + name) { return true }
        }
        return false
    }
}
