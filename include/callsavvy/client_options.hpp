// callsavvy/client_options.hpp — everything a callsavvy::client is configured with: the key pair, the base
// URL, timeouts and the deadline, the pool, TLS, proxy, retries, rate limits and the observer that sees
// every attempt. Options are checked when the client is made; a call on a client whose options cannot be
// used completes at once with a specific error naming the field (nothing is sent).
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/error.hpp>
#include <callsavvy/http/message.hpp>
#include <callsavvy/net/proxy.hpp>
#include <callsavvy/net/tls.hpp>
#include <callsavvy/rate_limit_options.hpp>
#include <callsavvy/retry.hpp>
#include <callsavvy/version.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

CALLSAVVY_BEGIN_NAMESPACE

/// The account's API key pair, sent as the Public-Key and Private-Key headers. Never logged or reported.
struct credentials {
    std::string public_key{};
    std::string private_key{};
};

/// What the observer hook sees after every attempt: for logging and metrics. Holds no credentials.
struct call_event {
    std::string resource{};
    int attempt = 0;                               ///< 1 for the first attempt
    int http_status = 0;                           ///< 0 when no response arrived
    error_code ec{};                               ///< the attempt's outcome (the call's, for its last attempt)
    std::chrono::steady_clock::duration latency{}; ///< of this attempt
    std::uint64_t bytes_sent = 0;
    std::uint64_t bytes_received = 0;
    bool reused_connection = false;
    bool will_retry = false;
    std::chrono::steady_clock::duration limiter_wait{}; ///< time parked in the rate limiter before this attempt
};

struct client_options {
    /// Checked when the client is made: a key or user agent with a character that cannot be sent in an HTTP
    /// header (a trailing newline from a file, say) makes every call fail with error::invalid_options.
    credentials keys{};
    /// scheme://host[:port]/prefix/ — https by default; http only when given explicitly (tests, a local mock).
    std::string base_url = "https://api.callsavvy.com/v1/";
    /// One attempt: connect (resolve, TCP, proxy, TLS) + write + read.
    std::chrono::milliseconds attempt_timeout{30000};
    /// The whole call: waits for a connection, every attempt and every backoff. Zero: no deadline.
    std::chrono::milliseconds call_deadline{120000};
    std::size_t max_connections = 8;               ///< pooled keep-alive connections to the host
    std::chrono::milliseconds idle_timeout{30000}; ///< idle pooled connections older than this are closed
    http::limits response_limits{};                ///< bounds on each response's head and body
    tls_options tls{};
    proxy_options proxy{};
    retry_options retry{};
    std::string user_agent = "callsavvy-cpp/" CALLSAVVY_VERSION_STRING;
    /// Called after every attempt, on the client's executor. It must not throw: an exception it throws is
    /// caught and dropped, so that logging can never change a call's outcome.
    std::function<void(const call_event&)> observer{};
    std::uint64_t jitter_seed = 0; ///< seed of the backoff jitter; 0 picks a random one
    /// Callsavvy's rate limits (spec §1), applied before each request so the server never has a reason to
    /// answer 429. Shared by every client in the process that uses the same public key: the first client
    /// created for a key sets the limits while any client of that key lives.
    rate_limit_options rate_limits{};
    /// Retries (other than after 429) draw from this budget; when it is spent, failures are reported at once.
    retry_budget_options retry_budget{};
    /// After this many 401/403 answers in a row, calls fail at once until the cool-down passes.
    auth_breaker_options auth_breaker{};
    /// Check typed requests against the catalog's rules before sending. The real server may be more
    /// permissive than the spec says; switch this off to let it decide.
    bool validate_requests = true;
};

CALLSAVVY_END_NAMESPACE
