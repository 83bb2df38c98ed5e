// callsavvy/rate_limit_options.hpp — what the rate limiter enforces and how it behaves: the per-endpoint and
// global limits (bucket_limits), the safety margin, the queue bound, the 429 backoff and count_from_send.
// client_options::rate_limits is one of these; the limiter itself is in <callsavvy/limiter.hpp>.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/retry.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>

CALLSAVVY_BEGIN_NAMESPACE

/// At most `max_requests` grants in any span of `window`.
struct bucket_limits {
    std::size_t max_requests = 50;
    std::chrono::milliseconds window{60000};
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
};

CALLSAVVY_END_NAMESPACE
