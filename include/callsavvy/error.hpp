// callsavvy/error.hpp — the one error model of every call: specific error codes (callsavvy::error_code)
// (callsavvy::error), the conditions users compare them with (callsavvy::condition), the details a failed call leaves
// behind (callsavvy::diagnostics), and the exception the default completion token throws (callsavvy::api_error).
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/http/error.hpp>

#include <algorithm>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE

/// Specific failures. Compare against callsavvy::condition for the class of a failure.
enum class error {
    // transport
    resolve_failed = 1, ///< the host name did not resolve to any address
    connect_failed,     ///< every resolved address refused or failed
    connection_closed,  ///< the peer closed the connection before a whole response arrived
    proxy_failed,       ///< the CONNECT proxy refused the tunnel (detail names its status)
    // timeouts
    attempt_timeout,   ///< one attempt (connect + write + read) took longer than options::attempt_timeout
    deadline_exceeded, ///< the call's overall deadline passed (waits and retries included)
    // TLS
    tls_certificate_untrusted, ///< the peer's certificate does not chain to a trusted CA
    tls_hostname_mismatch,     ///< the peer's certificate does not name the host
    tls_certificate_invalid,   ///< expired, not yet valid, revoked or otherwise rejected
    tls_handshake_failed,      ///< any other TLS handshake failure
    // envelope and content
    invalid_json,      ///< the response body is not JSON
    bad_envelope,      ///< the body lacks the documented envelope ("status", "data"/"message")
    resource_mismatch, ///< the envelope names another resource than the one called
    decode_failed,     ///< a typed response field holds a value of the wrong type (detail has the path)
    // HTTP status answered by the server
    bad_request,        ///< 400
    unauthorized,       ///< 401
    forbidden,          ///< 403
    not_found,          ///< 404
    method_not_allowed, ///< 405
    payload_too_large,  ///< 413
    too_many_requests,  ///< 429
    server_error,       ///< 5xx
    unexpected_status,  ///< any other non-200 status
    // client side
    validation_failed, ///< the request broke a rule of the endpoint catalog; nothing was sent
    outcome_unknown,   ///< a state-changing request was written and then its answer lost, broken or 5xx; never re-sent
    invalid_url,       ///< the base URL or proxy URL could not be used
    invalid_options,   ///< client options that cannot be used (diagnostics::detail names the field); nothing was sent
    client_closed,     ///< the client was closed
    queue_full,        ///< the rate limiter's queue of waiters is at its configured maximum
    rate_store_unavailable, ///< the shared rate-limit store did not answer (store_failure_policy::fail)
};

/// Classes of failure, for `if (ec == callsavvy::condition::rate_limited)`.
enum class condition {
    transport = 1,
    tls,
    timeout,
    protocol,
    envelope,
    validation,
    auth,
    forbidden,
    not_found,
    rate_limited,
    server,
    outcome_unknown,
};

namespace detail {

inline const char* error_message(error e) noexcept {
    switch (e) {
    case error::resolve_failed: return "host name did not resolve";
    case error::connect_failed: return "could not connect to any resolved address";
    case error::connection_closed: return "connection closed before the whole response arrived";
    case error::proxy_failed: return "proxy refused the CONNECT tunnel";
    case error::attempt_timeout: return "attempt timed out";
    case error::deadline_exceeded: return "call deadline exceeded";
    case error::tls_certificate_untrusted: return "TLS: server certificate is not trusted";
    case error::tls_hostname_mismatch: return "TLS: server certificate does not match the host name";
    case error::tls_certificate_invalid: return "TLS: server certificate is invalid";
    case error::tls_handshake_failed: return "TLS handshake failed";
    case error::invalid_json: return "response body is not valid JSON";
    case error::bad_envelope: return "response body is not a valid envelope";
    case error::resource_mismatch: return "response envelope names a different resource";
    case error::decode_failed: return "response field has an invalid value";
    case error::bad_request: return "bad request (HTTP 400)";
    case error::unauthorized: return "invalid API credentials (HTTP 401)";
    case error::forbidden: return "forbidden (HTTP 403)";
    case error::not_found: return "not found (HTTP 404)";
    case error::method_not_allowed: return "method not allowed (HTTP 405)";
    case error::payload_too_large: return "payload too large (HTTP 413)";
    case error::too_many_requests: return "rate limited (HTTP 429)";
    case error::server_error: return "server error (HTTP 5xx)";
    case error::unexpected_status: return "unexpected HTTP status";
    case error::validation_failed: return "request failed validation";
    case error::outcome_unknown:
        return "outcome unknown: the request was sent, and whether it was processed is unknown";
    case error::invalid_url: return "invalid URL";
    case error::invalid_options: return "invalid client options";
    case error::client_closed: return "client closed";
    case error::queue_full: return "rate limiter queue is full";
    case error::rate_store_unavailable: return "shared rate-limit store unavailable";
    }
    return "unknown callsavvy error";
}

class error_category_impl final : public error_category_type {
public:
    const char* name() const noexcept override { return "callsavvy"; }
    std::string message(int ev) const override { return error_message(static_cast<error>(ev)); }
    error_condition default_error_condition(int ev) const noexcept override;
};

class condition_category_impl final : public error_category_type {
public:
    const char* name() const noexcept override { return "callsavvy.condition"; }
    std::string message(int ev) const override {
        switch (static_cast<condition>(ev)) {
        case condition::transport: return "transport failure";
        case condition::tls: return "TLS failure";
        case condition::timeout: return "timeout";
        case condition::protocol: return "protocol violation";
        case condition::envelope: return "invalid response content";
        case condition::validation: return "validation failure";
        case condition::auth: return "authentication failure";
        case condition::forbidden: return "forbidden";
        case condition::not_found: return "not found";
        case condition::rate_limited: return "rate limited";
        case condition::server: return "server failure";
        case condition::outcome_unknown: return "outcome unknown";
        }
        return "unknown condition";
    }
    bool equivalent(const error_code& code, int cond) const noexcept override;
};

} // namespace detail

inline const error_category_type& error_category() noexcept {
    static const detail::error_category_impl instance;
    return instance;
}

inline const error_category_type& condition_category() noexcept {
    static const detail::condition_category_impl instance;
    return instance;
}

inline error_code make_error_code(error e) noexcept { return {static_cast<int>(e), error_category()}; }
inline error_condition make_error_condition(condition c) noexcept {
    return {static_cast<int>(c), condition_category()};
}

/// The error a non-200 HTTP status maps to.
inline error error_from_status(int status) noexcept {
    switch (status) {
    case 400: return error::bad_request;
    case 401: return error::unauthorized;
    case 403: return error::forbidden;
    case 404: return error::not_found;
    case 405: return error::method_not_allowed;
    case 413: return error::payload_too_large;
    case 429: return error::too_many_requests;
    default: return status >= 500 && status <= 599 ? error::server_error : error::unexpected_status;
    }
}

CALLSAVVY_END_NAMESPACE

CALLSAVVY_ERROR_CODE_ENUM(callsavvy::error)
CALLSAVVY_ERROR_CONDITION_ENUM(callsavvy::condition)

CALLSAVVY_BEGIN_NAMESPACE

namespace detail {

inline condition condition_of(error e) noexcept {
    switch (e) {
    case error::resolve_failed:
    case error::connect_failed:
    case error::connection_closed:
    case error::proxy_failed:
    case error::client_closed: return condition::transport;
    case error::attempt_timeout:
    case error::deadline_exceeded: return condition::timeout;
    case error::tls_certificate_untrusted:
    case error::tls_hostname_mismatch:
    case error::tls_certificate_invalid:
    case error::tls_handshake_failed: return condition::tls;
    case error::invalid_json:
    case error::bad_envelope:
    case error::resource_mismatch:
    case error::decode_failed: return condition::envelope;
    case error::bad_request:
    case error::invalid_options:
    case error::validation_failed: return condition::validation;
    case error::unauthorized: return condition::auth;
    case error::forbidden: return condition::forbidden;
    case error::not_found: return condition::not_found;
    case error::too_many_requests:
    case error::queue_full:
    case error::rate_store_unavailable: return condition::rate_limited;
    case error::server_error: return condition::server;
    case error::outcome_unknown: return condition::outcome_unknown;
    case error::method_not_allowed:
    case error::payload_too_large:
    case error::unexpected_status:
    case error::invalid_url: return condition::protocol;
    }
    return condition::protocol;
}

inline error_condition error_category_impl::default_error_condition(int ev) const noexcept {
    return make_error_condition(condition_of(static_cast<error>(ev)));
}

inline bool condition_category_impl::equivalent(const error_code& code, int cond) const noexcept {
    const auto c = static_cast<condition>(cond);
    if (code.category() == callsavvy::error_category()) return condition_of(static_cast<error>(code.value())) == c;
    if (code.category() == http::error_category()) return c == condition::protocol;
    if (code.category() == asio::error::get_ssl_category() ||
        code.category() == asio::ssl::error::get_stream_category())
        return c == condition::tls;
    if (code == asio::error::timed_out) return c == condition::timeout;
    if (code == asio::error::operation_aborted) return false; // cancellation is not a failure class
    if (code.category() == asio::error::get_system_category() || code.category() == asio::error::get_netdb_category() ||
        code.category() == asio::error::get_addrinfo_category() || code.category() == asio::error::get_misc_category())
        return c == condition::transport;
    return false;
}

} // namespace detail

/// What a failed (or successful) call leaves behind beyond its error code. Never holds credentials.
struct diagnostics {
    std::string resource{};       ///< the resource URI called
    int http_status = 0;          ///< the HTTP status answered, 0 when none arrived
    std::string server_message{}; ///< the error envelope's "message", when the server sent one
    std::string body{};           ///< the raw response body, when one arrived
    std::string detail{};         ///< what the library found (a field path, a TLS verify reason, a limit)
    int attempts = 0;             ///< how many times the request was sent or tried

    void clear() { *this = diagnostics{}; }
};

namespace detail {
/// Keys shorter than this are not redacted: replacing every "a" in a text would do more harm than good, and
/// real keys are far longer.
inline constexpr std::size_t min_redacted_secret_length = 8;

/// Replaces every occurrence of `secret` in `text` with "[redacted]": a server or proxy may echo the
/// request's headers back (an error page, a misbehaving gateway), and credentials must never reach an
/// error text, a log or a test's output.
inline void redact(std::string& text, std::string_view secret) {
    if (secret.size() < min_redacted_secret_length) return;
    constexpr std::string_view mark = "[redacted]";
    for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + mark.size()))
        text.replace(pos, secret.size(), mark);
}

/// Redacts every secret of a set, the longest first: when one key is a prefix of another (a public key that
/// begins the private one), redacting the shorter first would leave the longer one's tail in the text.
inline void redact_all(std::string& text, std::vector<std::string_view> secrets) {
    std::sort(secrets.begin(), secrets.end(),
              [](std::string_view a, std::string_view b) { return a.size() > b.size(); });
    for (const auto secret : secrets) redact(text, secret);
}

/// Runs a destructor's clean-up (cancelling timers, closing sockets, giving a slot back). Those throw only when
/// the reactor or a mutex itself failed, and a destructor must not let that escape into std::terminate.
template <class F>
void in_destructor(F&& cleanup) noexcept {
    try {
        std::forward<F>(cleanup)();
    } catch (...) {}
}

inline std::string describe(const error_code& ec, const diagnostics& d) {
    std::string s = "callsavvy";
    if (!d.resource.empty()) s.append(": ").append(d.resource);
    s.append(": ").append(ec.message());
    if (d.http_status != 0 && ec.category() == callsavvy::error_category() &&
        error_from_status(d.http_status) != error::unexpected_status &&
        static_cast<error>(ec.value()) == error_from_status(d.http_status)) {
        // the message already names the status
    } else if (d.http_status != 0) {
        s.append(" (HTTP ").append(std::to_string(d.http_status)).append(")");
    }
    if (!d.server_message.empty()) s.append(": ").append(d.server_message);
    if (!d.detail.empty()) s.append(": ").append(d.detail);
    return s;
}
} // namespace detail

/// Thrown by calls made with the default completion token (use_awaitable) when they fail.
class api_error : public system_error {
public:
    api_error(error_code ec, diagnostics diag)
        : system_error(ec), what_(detail::describe(ec, diag)), diag_(std::move(diag)) {}

    // system_error would append ec.message() a second time; describe() already placed it.
    const char* what() const noexcept override { return what_.c_str(); }

    const diagnostics& diag() const noexcept { return diag_; }
    const std::string& resource() const noexcept { return diag_.resource; }
    int http_status() const noexcept { return diag_.http_status; }
    const std::string& server_message() const noexcept { return diag_.server_message; }
    const std::string& body() const noexcept { return diag_.body; }

private:
    std::string what_{};
    diagnostics diag_;
};

CALLSAVVY_END_NAMESPACE
