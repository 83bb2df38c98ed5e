// callsavvy/rate_limit_options.hpp — what the rate limiter enforces and how it behaves: the per-endpoint and
// global limits (bucket_limits), per-endpoint overrides, the safety margin, the queue bounds, the 429 backoff,
// count_from_send and the store shared with other processes (and what to do when it fails).
// client_options::rate_limits is one of these; the limiter itself is in <callsavvy/limiter.hpp>.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/retry.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>

CALLSAVVY_BEGIN_NAMESPACE

/// At most `max_requests` grants in any span of `window`.
struct bucket_limits {
    std::size_t max_requests = 50;
    std::chrono::milliseconds window{60000};
};

/// One endpoint's own rules, instead of rate_limit_options::per_endpoint and max_waiters_per_endpoint.
struct endpoint_override {
    std::optional<bucket_limits> limits{};    ///< its own N per window
    std::optional<std::size_t> max_waiters{}; ///< its own bound on parked waiters (per limiter)
};

class shared_bucket_store;

/// What an acquire does when the shared store (rate_limit_options::shared_store) cannot answer: it is
/// unreachable, it timed out, it answered with an error.
enum class store_failure_policy {
    /// The call goes ahead on this process's own buckets (which still hold every limit within the process);
    /// the fleet may overrun the key's limits meanwhile, and then the server's 429s are retried as usual.
    fall_back_local,
    /// The acquire fails with error::rate_store_unavailable (condition::rate_limited); nothing is sent.
    fail,
};

struct rate_limit_options {
    bool enabled = true; ///< false: every acquire completes at once (a server without limits, a test)
    bucket_limits per_endpoint{50, std::chrono::seconds(60)}; ///< each resource URI's own bucket
    bucket_limits global{100, std::chrono::seconds(60)};      ///< every request of the key
    /// Added to every window: requests leave a little later than the window strictly allows, to absorb the
    /// latency between our grant and the server's count, and clock skew.
    std::chrono::milliseconds safety_margin{250};
    /// Parked waiters (in one limiter) beyond which an acquire fails at once with error::queue_full ...
    std::size_t max_waiters = 1'000'000;
    /// ... unless this is set: then the bound is advisory (stats().overflow counts acquires beyond it).
    bool wait_when_full = false;
    /// Parked waiters of one endpoint (in one limiter) beyond which its acquires fail with error::queue_full
    /// (or overflow, with wait_when_full): one slow endpoint cannot fill the whole queue.
    std::size_t max_waiters_per_endpoint = std::numeric_limits<std::size_t>::max();
    /// Endpoints (by the name given to async_acquire: the resource URI) with their own limits or waiter bound.
    std::map<std::string, endpoint_override, std::less<>> endpoint_overrides{};
    /// The pause after a 429 without Retry-After: full jitter, growing with the attempt.
    backoff_options backoff{std::chrono::milliseconds(1000), std::chrono::milliseconds(60000)};
    std::uint64_t jitter_seed = 0; ///< seed of the 429 backoff's jitter; 0 picks a random one
    /// The server counts a request when it arrives, not when the limiter granted it, and between the two a
    /// call may wait for a pooled connection or a TLS handshake for longer than the safety margin. With this
    /// on, a grant holds its place in both buckets as "pending" until the caller says when the request
    /// actually left (rate_grant::sent()) or the grant is destroyed unsent (its slot is given back): the window
    /// is then kept over send times, and a full window whose oldest grant is still pending admits nobody until
    /// that grant is sent. The client turns it on for the limiters it uses; a caller who never reports sends
    /// leaves it off (then a grant counts from the moment it was made, and dropping it gives nothing back).
    bool count_from_send = false;
    /// A store shared by every process that uses the key (<callsavvy/redis_bucket_store.hpp>): called once per
    /// limiter, with the limiter's executor, for that limiter's own connection. Empty: the limits are held
    /// within this process only. Each grant first passes this process's buckets (no I/O), then the shared
    /// store's check-and-record, so the fleet as a whole stays within the limits.
    std::function<std::shared_ptr<shared_bucket_store>(const asio::any_io_executor&)> shared_store{};
    store_failure_policy on_store_failure = store_failure_policy::fall_back_local;
};

CALLSAVVY_END_NAMESPACE
