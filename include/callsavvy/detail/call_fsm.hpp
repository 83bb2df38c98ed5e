// callsavvy/detail/call_fsm.hpp — one call's rules as a state machine without I/O: events in (a limiter
// grant, a connection, the request about to be written, an attempt's outcome, a backoff that ended, a stop
// from outside), actions out (wait for a grant, get a connection, make an attempt, back off, complete). The
// client's driver (impl/client.ipp) only performs the actions; every retry-safety rule and every race
// between an answer, a timer, close() and a cancellation is decided here, and tested here without sockets.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/error.hpp>
#include <callsavvy/retry.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>

CALLSAVVY_BEGIN_NAMESPACE
namespace detail {

/// Why a whole call was stopped from outside. The first reason given wins.
enum class call_stop : std::uint8_t { none, deadline, closed, cancelled };

/// What the driver must interrupt when a call is stopped: whatever the call is waiting on right now.
enum class call_interrupt : std::uint8_t { none, limiter_wait, pool_wait, connection, backoff };

/// How an attempt ended, as the driver saw it.
struct attempt_report {
    error_code ec{};             ///< success: a 200 answer with a valid envelope
    int http_status = 0;         ///< the status of a whole answer; 0 when none arrived whole
    bool written = false;        ///< the whole request was written: the server may have processed it
    bool timed_out = false;      ///< the attempt's own deadline passed (a whole answer that came anyway wins)
    bool reused = false;         ///< made on a pooled connection
    bool answer_started = false; ///< at least one byte came back after the write
    std::optional<std::chrono::seconds> retry_after{};
};

/// What the driver does next.
struct call_action {
    enum class kind : std::uint8_t { wait_grant, acquire, attempt, backoff, complete };
    kind what = kind::complete;
    bool front = false; ///< wait_grant: a retry after 429 keeps its place
    /// wait_grant, complete: pause the endpoint's bucket this long first (a 429 answered the last attempt)
    std::optional<std::chrono::milliseconds> pause{};
    bool fresh = false;                 ///< acquire: a new connection, never a pooled one
    bool probe = true;                  ///< acquire: a pooled connection is first checked on its socket
    std::chrono::milliseconds delay{0}; ///< backoff
    error_code ec{};                    ///< complete: the call's result
};

/// The options of one call that its rules depend on.
struct call_rules {
    using time_point = std::chrono::steady_clock::time_point;
    bool read_only = false;
    bool limited = true; ///< a rate limiter is in front: a 429 pauses the endpoint's bucket and waits there
    retry_options retry{};
    /// The pause after a 429 without Retry-After (the limiter's backoff): full jitter, growing per 429.
    backoff_options rate_limited_backoff{std::chrono::seconds(1), std::chrono::seconds(60)};
    time_point deadline = time_point::max();   ///< of the whole call
    std::chrono::milliseconds call_deadline{}; ///< its length, for the texts
    std::chrono::milliseconds attempt_timeout{};
};

/// The state machine. It writes the reasons of a failure into `d.detail` (never a credential) and counts
/// `d.attempts`; the driver fills in what the server answered. The budget, the breaker and the random
/// generator are the client's, shared by its calls on one executor.
class call_fsm {
public:
    using time_point = std::chrono::steady_clock::time_point;
    enum class phase : std::uint8_t { idle, limiter, pool, connect, exchange, backoff, done };

    call_fsm(call_rules rules, retry_budget& budget, auth_breaker& breaker, std::minstd_rand& rng, diagnostics& d)
        : rules_(rules), budget_(budget), breaker_(breaker), rng_(rng), d_(d) {}

    call_action start(time_point now) { return next_send(now); }

    /// The limiter's answer (success: a grant the driver holds until the write or the end of the attempt).
    call_action on_grant(const error_code& ec, time_point now) {
        phase_ = phase::idle;
        if (stop_ != call_stop::none) return finish_stopped(false);
        if (ec == error::queue_full) return fail(ec, "the rate limiter's queue is full");
        if (ec == error::rate_store_unavailable) return fail(ec, "the shared rate-limit store did not answer");
        if (ec) return fail(ec, "");
        // The breaker may have opened while this call was parked (a batch parks all at once): look again
        // before anything is sent with credentials the server just refused.
        if (!breaker_.allow(now)) return breaker_open();
        return acquire_action();
    }

    /// The pool's answer: a connection (open or not) for the next attempt, or why there is none.
    call_action on_connection(const error_code& ec, time_point /*now*/) {
        phase_ = phase::idle;
        if (stop_ != call_stop::none) return finish_stopped(false);
        if (ec) return fail(ec, "");
        ++attempts_;
        d_.attempts = attempts_;
        d_.http_status = 0;
        d_.server_message.clear();
        d_.body.clear();
        d_.detail.clear();
        phase_ = phase::connect;
        return {.what = call_action::kind::attempt};
    }

    /// The request is about to be written. False: the call was stopped, and nothing may be written. The
    /// driver writes right after a true answer, without suspending in between.
    bool on_write() {
        if (stop_ != call_stop::none) return false;
        phase_ = phase::exchange;
        return true;
    }

    call_action on_attempt(const attempt_report& r, time_point now) {
        phase_ = phase::idle;
        const bool answered = r.http_status != 0;
        if (answered) breaker_.on_answer(r.http_status == 401 || r.http_status == 403, now);
        // A whole successful answer is the truth whatever else happened meanwhile: the attempt's timer, the
        // deadline, close() or a cancellation that came in the same turn must not turn a done call into an
        // error (the caller might then send it again).
        if (!r.ec) {
            budget_.on_success(spent_);
            return complete({});
        }
        error_code ec = r.ec;
        if (!answered && r.timed_out) {
            ec = make_error_code(error::attempt_timeout);
            d_.detail = "attempt timed out after " + std::to_string(rules_.attempt_timeout.count()) + " ms";
        }
        if (!answered && stop_ != call_stop::none) return finish_stopped(r.written);
        const int counted = r.http_status == 429 ? 1 : attempts_ - rate_limited_;
        const retry_decision decision =
            decide_retry(ec, r.http_status, r.written, rules_.read_only, r.reused, fresh_retry_used_, counted,
                         rules_.retry.max_attempts, r.answer_started);
        switch (decision) {
        case retry_decision::fail: return fail(ec, {});
        case retry_decision::outcome_unknown: return outcome_unknown(ec, "after the request was written");
        case retry_decision::retry_now:
        case retry_decision::retry: break;
        }
        // A retry. A stop or a cancellation that came during the exchange (a partial one is not honoured on the
        // wire, but is remembered) ends the call instead; nothing more is sent.
        if (stop_ != call_stop::none) return finish_stopped(false);
        if (cancel_requested_) return fail(asio::error::operation_aborted, "cancelled; not sent again");
        if (decision == retry_decision::retry_now) {
            // A pooled connection turned out to be closed (before the write, or, read-only, before any byte of
            // an answer): once, at once, on a fresh connection, free.
            fresh_retry_used_ = true;
            fresh_next_ = true;
            return next_send(now);
        }
        if (r.http_status == 429) return after_rate_limited(ec, r, now);
        return after_failure(ec, r, now);
    }

    call_action on_backoff_done(time_point now) {
        phase_ = phase::idle;
        return next_send(now);
    }

    /// The call is stopped from outside (its deadline, close(), the caller's cancellation of `type`).
    /// Before the request is written any cancellation type stops it; once written only terminal does (a
    /// request cut in half would be lost work), while a weaker one is remembered and stops any retry.
    call_interrupt stop(call_stop why, asio::cancellation_type type = asio::cancellation_type::terminal) {
        if (phase_ == phase::done || why == call_stop::none) return call_interrupt::none;
        if (why == call_stop::cancelled) {
            if (type == asio::cancellation_type::none) return call_interrupt::none;
            if (phase_ == phase::exchange &&
                (type & asio::cancellation_type::terminal) == asio::cancellation_type::none) {
                cancel_requested_ = true;
                return call_interrupt::none;
            }
        }
        if (stop_ != call_stop::none) return call_interrupt::none; // already interrupted
        stop_ = why;
        switch (phase_) {
        case phase::limiter: return call_interrupt::limiter_wait;
        case phase::pool: return call_interrupt::pool_wait;
        case phase::connect:
        case phase::exchange: return call_interrupt::connection;
        case phase::backoff: return call_interrupt::backoff;
        case phase::idle:
        case phase::done: break;
        }
        return call_interrupt::none;
    }

    phase current() const noexcept { return phase_; }
    bool done() const noexcept { return phase_ == phase::done; }
    call_stop stopped() const noexcept { return stop_; }
    int attempts() const noexcept { return attempts_; }
    int rate_limited() const noexcept { return rate_limited_; }

private:
    using ms = std::chrono::milliseconds;

    /// Before every attempt: the stop, then the breaker, then the limiter (or straight to the pool).
    call_action next_send(time_point now) {
        if (stop_ != call_stop::none) return finish_stopped(false);
        if (!breaker_.allow(now)) return breaker_open();
        if (rules_.limited) {
            phase_ = phase::limiter;
            return {
                .what = call_action::kind::wait_grant, .front = front_, .pause = std::exchange(pause_, std::nullopt)};
        }
        return acquire_action();
    }

    /// A pooled connection is peeked at (one system call) only for a call that changes state: a read-only
    /// one that meets a closed socket is retried at once instead (see decide_retry).
    call_action acquire_action() {
        phase_ = phase::pool;
        return {
            .what = call_action::kind::acquire, .fresh = std::exchange(fresh_next_, false), .probe = !rules_.read_only};
    }

    /// A 429 proves the request was not processed: always retried, bounded by max_rate_limited_retries and
    /// the deadline, never counted as an attempt, at the front of the endpoint's queue. The endpoint's bucket
    /// is paused even when this call gives up: the other calls to it must wait too.
    call_action after_rate_limited(const error_code& ec, const attempt_report& r, time_point now) {
        ++rate_limited_;
        // The limiter's backoff when a limiter pauses the endpoint; without one, the call's own.
        const backoff_options& b = rules_.limited ? rules_.rate_limited_backoff : rules_.retry.backoff();
        const ms pause = r.retry_after ? capped(*r.retry_after) : full_jitter_backoff(b, rate_limited_, rng_);
        call_action a;
        if (rate_limited_ > rules_.retry.max_rate_limited_retries)
            a = fail(ec, "still rate limited after " + std::to_string(rate_limited_ - 1) + " retries");
        else if (passes_deadline(pause, now))
            a = fail(ec, pause_text(r, pause) + " is longer than what is left of the call deadline");
        else if (rules_.limited) {
            front_ = true;
            pause_ = pause;
            return next_send(now);
        } else {
            return back_off(pause);
        }
        if (rules_.limited) a.pause = pause;
        return a;
    }

    /// Any other retry: drawn from the retry budget, after a full-jitter backoff (or the server's Retry-After).
    call_action after_failure(const error_code& ec, const attempt_report& r, time_point now) {
        const std::size_t cost = budget_.try_spend(r.timed_out && r.http_status == 0);
        if (cost == 0) return fail(ec, d_.detail.empty() ? "retry budget spent" : d_.detail + " (retry budget spent)");
        spent_ += cost;
        const ms delay = r.retry_after ? capped(*r.retry_after)
                                       : full_jitter_backoff(rules_.retry.backoff(), attempts_ - rate_limited_, rng_);
        if (passes_deadline(delay, now)) {
            const std::string why = pause_text(r, delay) + " would pass the call deadline";
            return fail(ec, d_.detail.empty() ? why : d_.detail + " (" + why + ")");
        }
        return back_off(delay);
    }

    call_action back_off(ms delay) {
        phase_ = phase::backoff;
        return {.what = call_action::kind::backoff, .delay = delay};
    }

    ms capped(std::chrono::seconds retry_after) const {
        return std::chrono::duration_cast<ms>(std::min(retry_after, rules_.retry.max_retry_after));
    }
    bool passes_deadline(ms wait, time_point now) const {
        return rules_.deadline != time_point::max() && (rules_.deadline <= now || wait >= rules_.deadline - now);
    }
    std::string pause_text(const attempt_report& r, ms wait) const {
        if (!r.retry_after) return "the next retry in " + std::to_string(wait.count()) + " ms";
        std::string t = "Retry-After " + std::to_string(r.retry_after->count()) + " s";
        if (*r.retry_after > rules_.retry.max_retry_after)
            t += " (capped at " + std::to_string(rules_.retry.max_retry_after.count()) + " s)";
        return t;
    }

    call_action breaker_open() {
        return fail(make_error_code(error::unauthorized),
                    "not sent: the last " + std::to_string(breaker_.consecutive_failures()) +
                        " answers were 401/403; calls resume after the cool-down");
    }

    call_action outcome_unknown(const error_code& ec, std::string_view when) {
        const std::string what = ec.message();
        std::string detail = what;
        if (!d_.detail.empty()) detail += " (" + d_.detail + ")";
        detail.append(" ").append(when);
        return fail(make_error_code(error::outcome_unknown), std::move(detail));
    }

    /// The call ends because it was stopped. `written`: the attempt the stop cut short had written its whole
    /// request and got no answer, so for a call that changes state nobody knows whether it was done.
    call_action finish_stopped(bool written) {
        const char* who = stop_ == call_stop::deadline ? "call deadline passed"
                          : stop_ == call_stop::closed ? "client closed"
                                                       : "cancelled";
        if (written && !rules_.read_only) {
            d_.detail = std::string(who) + " after the request was written";
            return complete(make_error_code(error::outcome_unknown));
        }
        if (stop_ == call_stop::deadline) {
            d_.detail = "no result within " + std::to_string(rules_.call_deadline.count()) + " ms";
            return complete(make_error_code(error::deadline_exceeded));
        }
        d_.detail = who;
        return complete(asio::error::operation_aborted);
    }

    call_action fail(const error_code& ec, std::string detail) {
        if (!detail.empty()) d_.detail = std::move(detail);
        return complete(ec);
    }

    call_action complete(const error_code& ec) {
        phase_ = phase::done;
        return {.what = call_action::kind::complete, .ec = ec};
    }

    call_rules rules_;
    retry_budget& budget_;
    auth_breaker& breaker_;
    std::minstd_rand& rng_;
    diagnostics& d_;
    phase phase_ = phase::idle;
    call_stop stop_ = call_stop::none;
    bool cancel_requested_ = false; ///< a cancellation that came while the request was on the wire
    bool fresh_retry_used_ = false;
    bool fresh_next_ = false; ///< the next attempt must not use a pooled connection
    bool front_ = false;      ///< once rate limited, the call waits at the front of its endpoint's queue
    std::optional<ms> pause_{};
    int attempts_ = 0;
    int rate_limited_ = 0;  ///< 429 answers so far
    std::size_t spent_ = 0; ///< what this call's retries took from the retry budget
};

} // namespace detail
CALLSAVVY_END_NAMESPACE
