// callsavvy/retry.hpp — the retry policy's pure pieces: which failures may be sent again (the retry-safety
// rules of spec §2), full-jitter exponential backoff, Retry-After, a retry budget that stops retry storms
// during an outage (as the AWS SDKs do), and a breaker that stops calling after repeated 401/403. No I/O, no
// clock of their own (time is passed in), so each is tested in virtual time; detail/call_fsm.hpp applies them.
//
// Thread safety: none of these is internally locked; each belongs to one client and is used from its executor.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/error.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string_view>

CALLSAVVY_BEGIN_NAMESPACE

/// Exponential backoff with full jitter (the AWS architecture blog's "Full Jitter"): attempt n waits a
/// uniformly random time in [0, min(cap, base * 2^(n-1))]. Full jitter spreads a crowd of clients that
/// failed together, which equal or decorrelated delays do not.
struct backoff_options {
    std::chrono::milliseconds base{200};  ///< the ceiling of the first retry's wait
    std::chrono::milliseconds cap{10000}; ///< no wait is longer than this
};

/// The largest wait of attempt `attempt` (1 = the first retry): min(cap, base * 2^(attempt-1)).
inline std::chrono::milliseconds backoff_ceiling(const backoff_options& o, int attempt) noexcept {
    if (attempt < 1) attempt = 1;
    const int shift = std::min(attempt - 1, 30); // base * 2^30 already exceeds any sensible cap
    const std::int64_t base = std::max<std::int64_t>(o.base.count(), 0);
    const std::int64_t cap = std::max<std::int64_t>(o.cap.count(), 0);
    if (base != 0 && base > cap >> shift) return std::chrono::milliseconds{cap}; // base << shift would pass cap
    return std::chrono::milliseconds{std::min(cap, base << shift)};
}

/// A full-jitter wait for `attempt`, drawn from `rng` (any UniformRandomBitGenerator).
template <class Rng>
std::chrono::milliseconds full_jitter_backoff(const backoff_options& o, int attempt, Rng& rng) {
    const auto ceiling = backoff_ceiling(o, attempt).count();
    if (ceiling <= 0) return std::chrono::milliseconds{0};
    std::uniform_int_distribution<std::int64_t> dist(0, ceiling);
    return std::chrono::milliseconds{dist(rng)};
}

/// How failed attempts are retried (which failures qualify is fixed by the retry-safety rules below, not here).
struct retry_options {
    int max_attempts = 3; ///< attempts per call, the first included; 429s not counted
    /// 429s are always retried (they prove the request was not processed), at most this many times per call
    /// and within its deadline; then the call fails with error::too_many_requests.
    int max_rate_limited_retries = 50;
    std::chrono::milliseconds backoff_base{200};  ///< exponential backoff with full jitter: base * 2^(n-1) ...
    std::chrono::milliseconds backoff_cap{10000}; ///< ... capped here
    /// A Retry-After longer than this is taken as this: one answer saying `Retry-After: 999999999` must not
    /// pause an endpoint (and perhaps the key) for years. Callsavvy's windows are 60 s.
    std::chrono::seconds max_retry_after{60};

    backoff_options backoff() const noexcept { return {backoff_base, backoff_cap}; }
};

/// Retry-After in whole seconds (spec §1; Callsavvy sends no HTTP dates), or nullopt when absent or not a
/// number. Values beyond 10^9 s are treated as absent (they are no plausible pause).
inline std::optional<std::chrono::seconds> parse_retry_after(std::optional<std::string_view> v) {
    if (!v || v->empty() || v->size() > 9) return std::nullopt;
    std::int64_t s = 0;
    for (char c : *v) {
        if (c < '0' || c > '9') return std::nullopt;
        s = s * 10 + (c - '0');
    }
    return std::chrono::seconds{s};
}

/// What the retry-safety rules decide after a failed attempt.
enum class retry_decision {
    fail,            ///< report the failure
    retry,           ///< send again after a backoff (or, after a 429, a pause of the endpoint)
    retry_now,       ///< send again at once on a fresh connection: a pooled one turned out to be closed
    outcome_unknown, ///< the request may have been processed and its answer is lost: never sent again
};

/// The retry-safety rules (spec §2): only what the server provably did not process, or what is read-only,
/// is sent again. `written`: the whole request was written, so the server may have processed it. `reused`:
/// on a pooled connection; `fresh_retry_used`: the one immediate retry on a fresh connection was taken;
/// `answer_started`: at least one byte came back (true when unknown: the safe side).
inline retry_decision decide_retry(const error_code& ec, int http_status, bool written, bool read_only, bool reused,
                                   bool fresh_retry_used, int attempt, int max_attempts, bool answer_started = true) {
    if (ec == asio::error::operation_aborted) return retry_decision::fail;
    const bool attempts_left = attempt < max_attempts;
    if (http_status != 0) {
        // An answer arrived. 429 proves the request was not processed (the caller bounds those retries
        // separately); a 5xx does not say whether the work was done, so a call that changes state reports
        // an unknown outcome and is never re-sent.
        if (http_status == 429) return retry_decision::retry;
        if (http_status >= 500) {
            if (!read_only) return retry_decision::outcome_unknown;
            return attempts_left ? retry_decision::retry : retry_decision::fail;
        }
        return retry_decision::fail;
    }
    if (ec.category() == callsavvy::error_category()) {
        switch (static_cast<error>(ec.value())) {
        case error::tls_certificate_untrusted:
        case error::tls_hostname_mismatch:
        case error::tls_certificate_invalid:
        case error::invalid_url:
        case error::invalid_options:
        case error::client_closed:
        case error::validation_failed: return retry_decision::fail; // the same again would fail the same way
        default: break;
        }
    }
    if (ec.category() == http::error_category()) {
        // A broken answer is not a lost one: never re-sent. The request did arrive, so for a call that
        // changes state whether it was done is unknown.
        return written && !read_only ? retry_decision::outcome_unknown : retry_decision::fail;
    }
    if (!written) {
        // Connect failures, or a reused connection that failed on write: nothing reached the server whole.
        if (reused && !fresh_retry_used) return retry_decision::retry_now;
        return attempts_left ? retry_decision::retry : retry_decision::fail;
    }
    if (!read_only) return retry_decision::outcome_unknown;
    // A read-only call on a pooled connection is written without first peeking at the idle socket (the
    // peek costs a system call per call). A connection the server had already closed then shows up as an
    // end or a reset before any byte of an answer: the same stale socket the peek finds, and retried the
    // same way, once and at once on a fresh connection. A call that changes state is always peeked first.
    // (The reader turns an end of the stream, TLS's truncation included, into connection_closed; a reset is
    // what a write to a socket the server had closed brings back.)
    const bool closed_under_us = ec == error::connection_closed || ec == asio::error::connection_reset;
    if (reused && !answer_started && !fresh_retry_used && closed_under_us) return retry_decision::retry_now;
    return attempts_left ? retry_decision::retry : retry_decision::fail;
}

/// The retry budget's sizes; the defaults are the AWS SDKs' "standard" retry mode.
struct retry_budget_options {
    std::size_t capacity = 500;          ///< tokens when full (and at start)
    std::size_t retry_cost = 5;          ///< taken by each retry
    std::size_t timeout_retry_cost = 10; ///< taken by a retry after a timeout (timeouts cost the server more)
    std::size_t success_refund = 1;      ///< given back by a call that succeeded without retrying
};

/// A token bucket that every retry draws from and every success refills. While the service is healthy the
/// budget stays full and retries are free; during an outage retries drain it within a few dozen calls,
/// after which failures are reported at once instead of multiplying the load on a server that is already
/// down. A call that succeeds after retrying gives back what its retries took, so the budget recovers as
/// fast as the service does.
class retry_budget {
public:
    explicit retry_budget(retry_budget_options o = {}) : opts_(o), tokens_(o.capacity) {}

    /// Takes the cost of one retry; 0 means the budget is spent and the call must not be retried. The
    /// returned amount is what on_success() refunds for this call.
    std::size_t try_spend(bool after_timeout = false) noexcept {
        const std::size_t cost = after_timeout ? opts_.timeout_retry_cost : opts_.retry_cost;
        if (cost == 0) return 0; // a zero cost would make "spent" and "denied" indistinguishable: refuse
        if (tokens_ < cost) return 0;
        tokens_ -= cost;
        return cost;
    }

    /// A call succeeded. `spent`: the sum of what try_spend() returned for this call (0 if it never retried).
    void on_success(std::size_t spent = 0) noexcept {
        const std::size_t refund = spent != 0 ? spent : opts_.success_refund;
        tokens_ = std::min(opts_.capacity, tokens_ + refund);
    }

    std::size_t available() const noexcept { return tokens_; }
    const retry_budget_options& options() const noexcept { return opts_; }

private:
    retry_budget_options opts_{};
    std::size_t tokens_ = 0;
};

struct auth_breaker_options {
    int threshold = 3;                          ///< consecutive 401/403 answers that open the breaker
    std::chrono::milliseconds cool_down{30000}; ///< how long an open breaker refuses calls
};

/// Stops calling after repeated 401/403: credentials that were rejected three times in a row will not start
/// working on the fourth, and hammering the API with them can get a key locked. After the cool-down the
/// breaker lets calls through again (half-open): one success closes it, one more auth failure opens it again
/// at once, so a fixed key (rotated secret, re-enabled account) is picked up without a restart.
class auth_breaker {
public:
    using clock = std::chrono::steady_clock;
    enum class state { closed, open, half_open };

    explicit auth_breaker(auth_breaker_options o = {}) : opts_(o) {}

    /// May a call be sent at `now`? False while open; the client then fails the call with the last auth error.
    bool allow(clock::time_point now) noexcept {
        if (state_ == state::open && now >= open_until_) state_ = state::half_open;
        return state_ != state::open;
    }

    /// The outcome of a call that got an answer: `auth_failure` for 401 and 403. Answers that say nothing
    /// about the credentials (a transport failure) should not be reported.
    void on_answer(bool auth_failure, clock::time_point now) noexcept {
        if (!auth_failure) {
            state_ = state::closed;
            failures_ = 0;
            return;
        }
        ++failures_;
        if (state_ == state::half_open || failures_ >= std::max(opts_.threshold, 1)) {
            state_ = state::open;
            open_until_ = now + opts_.cool_down;
        }
    }

    /// The state as of `now` (an open breaker whose cool-down has passed reads half_open).
    state current(clock::time_point now) const noexcept {
        return state_ == state::open && now >= open_until_ ? state::half_open : state_;
    }
    clock::time_point open_until() const noexcept { return open_until_; }
    int consecutive_failures() const noexcept { return failures_; }

private:
    auth_breaker_options opts_{};
    state state_ = state::closed;
    int failures_ = 0;
    clock::time_point open_until_{};
};

CALLSAVVY_END_NAMESPACE
