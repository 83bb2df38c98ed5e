// callsavvy/net/proxy.hpp — which HTTP CONNECT proxy a call goes through: the configured one, or the one
// HTTPS_PROXY / HTTP_PROXY name unless NO_PROXY exempts the host, with optional Basic proxy credentials.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/detail/base64.hpp>
#include <callsavvy/http/url.hpp>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

CALLSAVVY_BEGIN_NAMESPACE

struct proxy_options {
    /// `http://[user:password@]host:port`. Empty: taken from the environment when `from_environment` is set.
    std::string url{};
    /// Read `https_proxy`/`HTTPS_PROXY` (for https base URLs), `http_proxy` (for http ones) and
    /// `no_proxy`/`NO_PROXY`, as curl does. Upper-case HTTP_PROXY is ignored: CGI servers set it from a
    /// request header ("httpoxy").
    bool from_environment = true;
};

namespace detail {

struct proxy_endpoint {
    std::string host{};
    std::uint16_t port = 0;
    std::string authorization{}; ///< the Proxy-Authorization value, empty without credentials; never logged
};

inline bool iequals_ascii(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

/// NO_PROXY: comma- or space-separated host names, domain suffixes (`example.com` and `.example.com` both
/// cover `api.example.com`), IP literals, or `*` for every host. Ports in entries are ignored.
inline bool no_proxy_matches(std::string_view list, std::string_view host) {
    while (!list.empty()) {
        const auto cut = list.find_first_of(", ");
        std::string_view entry = list.substr(0, cut);
        list = cut == std::string_view::npos ? std::string_view{} : list.substr(cut + 1);
        if (entry.empty()) continue;
        if (entry == "*") return true;
        if (!entry.empty() && entry.front() == '[') { // [::1]:port
            const auto close = entry.find(']');
            if (close != std::string_view::npos) entry = entry.substr(1, close - 1);
        } else if (const auto colon = entry.rfind(':'); colon != std::string_view::npos && entry.find(':') == colon) {
            entry = entry.substr(0, colon);
        }
        if (!entry.empty() && entry.front() == '.') entry.remove_prefix(1);
        if (iequals_ascii(entry, host)) return true;
        if (host.size() > entry.size() && host[host.size() - entry.size() - 1] == '.' &&
            iequals_ascii(host.substr(host.size() - entry.size()), entry))
            return true;
    }
    return false;
}

/// Turns a proxy URL into where to connect and what to send. Fails on anything but an http:// proxy.
inline std::optional<proxy_endpoint> make_proxy_endpoint(std::string_view proxy_url, error_code& ec) {
    auto u = http::parse_url(proxy_url, ec);
    if (ec || !u) return std::nullopt;
    if (u->is_https()) { // TLS to the proxy itself is not supported; a silent plain-text fallback would be worse
        ec = http::make_error_code(http::error::bad_url);
        return std::nullopt;
    }
    proxy_endpoint p;
    p.host = u->host;
    p.port = u->port;
    if (!u->userinfo.empty()) {
        const auto who = http::decode_userinfo(u->userinfo);
        if (!who) {
            ec = http::make_error_code(http::error::bad_url);
            return std::nullopt;
        }
        p.authorization = "Basic " + base64_encode(who->user + ":" + who->password);
    }
    return p;
}

using getenv_fn = std::function<const char*(const char*)>;

/// The proxy for a base URL, or nullopt for a direct connection.
inline std::optional<proxy_endpoint> select_proxy(
    const proxy_options& o, const http::url& target, error_code& ec,
    // NOLINTNEXTLINE(concurrency-mt-unsafe): read once per client construction; setenv racing it is the caller's bug
    const getenv_fn& env = [](const char* n) { return std::getenv(n); }) {
    ec.clear();
    std::string url = o.url;
    if (url.empty() && o.from_environment) {
        auto get = [&](const char* a, const char* b) -> std::string {
            if (const char* v = env(a); v != nullptr && *v != '\0') return v;
            if (b != nullptr) {
                if (const char* v = env(b); v != nullptr && *v != '\0') return v;
            }
            return {};
        };
        url = target.is_https() ? get("https_proxy", "HTTPS_PROXY") : get("http_proxy", nullptr);
        if (!url.empty()) {
            const std::string no_proxy = get("no_proxy", "NO_PROXY");
            if (no_proxy_matches(no_proxy, target.host)) return std::nullopt;
        }
    }
    if (url.empty()) return std::nullopt;
    return make_proxy_endpoint(url, ec);
}

/// The CONNECT request opening a tunnel to host:port.
inline std::string connect_request(const std::string& host, std::uint16_t port, const proxy_endpoint& px) {
    const bool v6 = host.find(':') != std::string::npos;
    std::string authority = v6 ? "[" + host + "]" : host;
    authority += ":" + std::to_string(port);
    std::string s = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
    if (!px.authorization.empty()) s += "Proxy-Authorization: " + px.authorization + "\r\n";
    s += "\r\n";
    return s;
}

} // namespace detail
CALLSAVVY_END_NAMESPACE
