// callsavvy/http/url.hpp — the http(s) URLs the client is configured with (base URL, proxy URL): parsed
// into scheme, userinfo, host, port and path, with the helpers a Host header, a CONNECT line and Basic
// proxy credentials need.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/http/error.hpp>
#include <callsavvy/http/grammar.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

CALLSAVVY_BEGIN_NAMESPACE
namespace http {

struct url {
    std::string scheme{};   ///< "http" or "https", lower case
    std::string userinfo{}; ///< as written, percent-encoding kept (see decode_userinfo)
    std::string host{};     ///< lower case; an IPv6 literal without its brackets
    std::uint16_t port = 0; ///< the explicit port, or 80/443
    std::string path{};     ///< path and query, "/" at least

    bool is_https() const noexcept { return scheme == "https"; }
    bool is_ipv6() const noexcept { return host.find(':') != std::string::npos; }

    /// host:port, an IPv6 host in brackets; the port is always written, so this serves a CONNECT
    /// request line as well as a Host header.
    std::string authority() const {
        std::string out = bracketed_host();
        out.append(":").append(std::to_string(port));
        return out;
    }

    /// host, and :port only when it is not the scheme's default: the Host header a browser would send.
    std::string host_header() const {
        std::string out = bracketed_host();
        if (port != (is_https() ? 443 : 80)) out.append(":").append(std::to_string(port));
        return out;
    }

    friend bool operator==(const url&, const url&) = default;

private:
    std::string bracketed_host() const { return is_ipv6() ? "[" + host + "]" : host; }
};

/// Decodes %XX escapes; nullopt when a '%' is not followed by two hex digits.
inline std::optional<std::string> percent_decode(std::string_view s) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        if (i + 2 >= s.size()) return std::nullopt;
        const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

/// A user name and password, decoded.
struct credentials {
    std::string user{};
    std::string password{};
};

/// Splits userinfo ("user:pass", percent-encoded) at its first colon and decodes both halves, e.g. for a
/// Proxy-Authorization: Basic header. nullopt on a bad escape.
inline std::optional<credentials> decode_userinfo(std::string_view userinfo) {
    const auto colon = userinfo.find(':');
    auto user = percent_decode(userinfo.substr(0, colon));
    auto password = percent_decode(colon == std::string_view::npos ? std::string_view() : userinfo.substr(colon + 1));
    if (!user || !password) return std::nullopt;
    return credentials{std::move(*user), std::move(*password)};
}

namespace detail {

inline bool is_alnum(char c) noexcept {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
inline bool is_hex(char c) noexcept {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// unreserved / pct-encoded / sub-delims (RFC 3986): what userinfo (with ':') and a reg-name may hold.
inline bool is_uri_char(char c) noexcept {
    return is_alnum(c) || std::string_view("-._~%!$&'()*+,;=").find(c) != std::string_view::npos;
}

inline bool is_ipv6_literal(std::string_view s) noexcept {
    // Hex groups, colons and an optional trailing dotted IPv4; zone identifiers are not supported.
    // Checks the alphabet and the shape loosely; the resolver has the last word.
    if (s.size() < 2 || s.find(':') == std::string_view::npos) return false;
    for (char c : s)
        if (!is_hex(c) && c != ':' && c != '.') return false;
    return true;
}

} // namespace detail

/// Parses an absolute http or https URL: scheme (any case) "://" [userinfo "@"] host [":" port] [path-abempty
/// ["?" query]]. The host may be a name, an IPv4 address or an IPv6 literal in brackets; the port defaults
/// to 80/443; the path to "/". Fragments, other schemes, empty hosts, port 0 or > 65535, spaces and control
/// characters are refused with http::error::bad_url (nullopt).
inline std::optional<url> parse_url(std::string_view s, error_code& ec) {
    ec = error::bad_url;
    url u;
    const auto sep = s.find("://");
    if (sep == std::string_view::npos) return std::nullopt;
    const auto scheme = s.substr(0, sep);
    if (detail::iequals(scheme, "http")) u.scheme = "http";
    else if (detail::iequals(scheme, "https"))
        u.scheme = "https";
    else
        return std::nullopt;
    auto rest = s.substr(sep + 3);
    if (!detail::all_of_class(rest, detail::cc_target)) return std::nullopt; // no spaces, controls, non-ASCII
    if (rest.find('#') != std::string_view::npos) return std::nullopt;

    const auto authority_end = rest.find_first_of("/?");
    auto authority = rest.substr(0, authority_end);
    const auto path = authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);

    if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
        const auto userinfo = authority.substr(0, at);
        for (char c : userinfo)
            if (!detail::is_uri_char(c) && c != ':') return std::nullopt;
        if (!percent_decode(userinfo)) return std::nullopt;
        u.userinfo.assign(userinfo);
        authority.remove_prefix(at + 1);
    }

    std::string_view host, port;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        host = authority.substr(1, close - 1);
        if (!detail::is_ipv6_literal(host)) return std::nullopt;
        const auto after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return std::nullopt;
            port = after.substr(1);
        }
    } else {
        const auto colon = authority.find(':');
        host = authority.substr(0, colon);
        if (colon != std::string_view::npos) port = authority.substr(colon + 1);
        for (char c : host)
            if (!detail::is_alnum(c) && c != '-' && c != '.' && c != '_' && c != '~') return std::nullopt;
    }
    if (host.empty()) return std::nullopt;
    u.host.reserve(host.size());
    for (char c : host) u.host.push_back(detail::to_lower(c));

    if (port.empty()) {
        u.port = u.is_https() ? 443 : 80; // "host:" is allowed by RFC 3986 and means the default
    } else {
        if (port.size() > 5) return std::nullopt;
        unsigned value = 0;
        for (char c : port) {
            if (c < '0' || c > '9') return std::nullopt;
            value = value * 10 + static_cast<unsigned>(c - '0');
        }
        if (value == 0 || value > 65535) return std::nullopt;
        u.port = static_cast<std::uint16_t>(value);
    }

    if (path.empty()) u.path.assign(1, '/'); // not = "/": g++ 12 -O3 warns falsely (stringop-overflow) on that
    else if (path.front() == '?')
        u.path.append("/").append(path);
    else
        u.path.assign(path);
    ec = {};
    return u;
}

} // namespace http
CALLSAVVY_END_NAMESPACE
