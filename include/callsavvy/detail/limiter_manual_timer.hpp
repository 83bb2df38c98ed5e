// callsavvy/detail/limiter_manual_timer.hpp — a clock that moves only when told, and a timer on it, so the
// rate limiter (basic_rate_limiter<manual_timer>) runs its windows in virtual time: tests and benchmarks
// advance a minute in microseconds and see exactly when each grant happened.
//
// Single-threaded by design: the clock is one process-wide value; use it from one thread only.
#pragma once

#include <callsavvy/config.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE
namespace detail {

/// Steady-clock time points that advance only through manual_timer::advance_to(). Starts at the epoch.
struct manual_clock {
    using duration = std::chrono::steady_clock::duration;
    using rep = duration::rep;
    using period = duration::period;
    using time_point = std::chrono::steady_clock::time_point;
    static constexpr bool is_steady = true;

    static time_point now() noexcept { return current(); }
    static time_point& current() noexcept {
        static time_point t{};
        return t;
    }
};

/// The subset of asio::steady_timer that the limiter uses (expires_at, async_wait with a callback, cancel),
/// fired by advance_to() instead of the reactor. Handlers are posted to the timer's executor, as Asio would.
class manual_timer {
public:
    using clock_type = manual_clock;
    using time_point = manual_clock::time_point;
    using duration = manual_clock::duration;
    using executor_type = asio::any_io_executor;

    explicit manual_timer(executor_type ex) : ex_(std::move(ex)) { timers().push_back(this); }
    manual_timer(const manual_timer&) = delete;
    manual_timer& operator=(const manual_timer&) = delete;
    ~manual_timer() {
        cancel();
        auto& all = timers();
        all.erase(std::find(all.begin(), all.end(), this));
    }

    executor_type get_executor() const { return ex_; }
    time_point expiry() const noexcept { return expiry_; }

    std::size_t expires_at(time_point t) {
        const std::size_t n = cancel();
        expiry_ = t;
        return n;
    }

    template <class Handler>
    void async_wait(Handler&& h) {
        cancel();
        handler_ = std::forward<Handler>(h);
        if (expiry_ <= clock_type::now()) fire();
    }

    std::size_t cancel() {
        if (!handler_) return 0;
        asio::post(ex_, [h = std::exchange(handler_, nullptr)]() { h(asio::error::operation_aborted); });
        return 1;
    }

    /// Moves the clock to `t` (never backwards) and fires every timer whose expiry has come.
    static void advance_to(time_point t) {
        manual_clock::current() = std::max(manual_clock::current(), t);
        for (manual_timer* m : timers())
            if (m->handler_ && m->expiry_ <= t) m->fire();
    }
    /// The earliest expiry among timers with a pending wait.
    static std::optional<time_point> next_expiry() {
        std::optional<time_point> next;
        for (const manual_timer* m : timers())
            if (m->handler_ && (!next || m->expiry_ < *next)) next = m->expiry_;
        return next;
    }
    /// Puts the clock back to the epoch (between tests; no timer may be pending).
    static void reset() { manual_clock::current() = time_point{}; }

private:
    void fire() {
        asio::post(ex_, [h = std::exchange(handler_, nullptr)]() { h(error_code{}); });
    }
    static std::vector<manual_timer*>& timers() {
        static std::vector<manual_timer*> all;
        return all;
    }

    executor_type ex_;
    time_point expiry_{};
    std::function<void(error_code)> handler_{};
};

} // namespace detail
CALLSAVVY_END_NAMESPACE
