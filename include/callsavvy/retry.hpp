// callsavvy/retry.hpp — the pure pieces of the retry policy: full-jitter exponential backoff, a retry budget
// that stops retry storms during an outage (as the AWS SDKs do), and a breaker that stops calling after
// repeated 401/403. No I/O, no clock of their own (time is passed in), so each is tested in virtual time.
//
// Thread safety: none of these is internally locked; each belongs to one client and is used from its executor.
#pragma once

#include <callsavvy/config.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>

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
