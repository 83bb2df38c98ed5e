// The rate limiter in virtual time (spec §1 "Rate limits"): the scheduler (detail::limiter_core) driven
// event by event over randomized arrivals, and the Asio limiter on a manual clock for FIFO, fairness,
// cancellation (including the grant/cancel race of boostorg/mysql #509), 429 pauses, the queue bound, stats
// and the per-key registry. No test sleeps or measures real time.
#include <callsavvy/detail/limiter_manual_timer.hpp>
#include <callsavvy/limiter.hpp>
#include <callsavvy/redis_bucket_store.hpp>

#include "support/asio.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

// A failing check on an instant prints it in milliseconds of virtual time.
template <>
struct Catch::StringMaker<std::chrono::steady_clock::time_point> {
    static std::string convert(const std::chrono::steady_clock::time_point& t) {
        return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count()) +
               " ms";
    }
};

namespace {

namespace asio = callsavvy::asio;
using namespace std::chrono_literals;
using callsavvy::bucket_limits;
using callsavvy::rate_limit_options;
using callsavvy::detail::limiter_core;
using callsavvy::detail::limiter_waiter;
using callsavvy::detail::manual_clock;
using callsavvy::detail::manual_timer;
using time_point = std::chrono::steady_clock::time_point;
using vlimiter = callsavvy::basic_rate_limiter<manual_timer>;

time_point at(std::chrono::steady_clock::duration d) { return time_point{} + d; }

rate_limit_options limits(bucket_limits per_endpoint, bucket_limits global, std::chrono::milliseconds margin) {
    rate_limit_options o;
    o.per_endpoint = per_endpoint;
    o.global = global;
    o.safety_margin = margin;
    return o;
}

// `prefix` followed by `i`. Not `"e" + std::to_string(i)`: g++ 12 at -O3 reports that operator+(const char*,
// std::string&&) (an insert at 0) may memcpy 2^63 bytes, on the branch of basic_string::_M_replace for a
// source inside the string's own buffer, which a literal never is: a false positive (-Wstringop-overflow).
std::string numbered(std::string_view prefix, std::size_t i) {
    std::string s(prefix);
    s += std::to_string(i);
    return s;
}

// ---------------------------------------------------------------------------------------------------------
// The scheduler, event by event.

struct sim_waiter : limiter_waiter {
    int id = 0;
    std::string endpoint{};
    time_point arrival{};
    std::optional<time_point> granted{};
    bool cancelled = false;
};

// Counts grants of `log` (sorted) in the span (t - length, t].
std::size_t count_in_span(const std::vector<time_point>& log, time_point t, std::chrono::nanoseconds length) {
    return static_cast<std::size_t>(
        std::count_if(log.begin(), log.end(), [&](time_point g) { return g <= t && g > t - length; }));
}

// No window of length W (closed [t, t+W] when a margin separates windows, half-open otherwise) holds more
// than N grants. The fullest window starts at a grant, so checking every grant's window checks them all.
void check_window_invariant(const std::vector<time_point>& log, const bucket_limits& l,
                            std::chrono::milliseconds margin, const std::string& bucket) {
    for (std::size_t i = 0; i < log.size(); ++i) {
        std::size_t n = 0;
        for (std::size_t j = i; j < log.size(); ++j) {
            const auto gap = log[j] - log[i];
            if (margin.count() > 0 ? gap <= l.window : gap < l.window) ++n;
        }
        INFO("bucket " << bucket << ", window starting at grant " << i << " (t = "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(log[i].time_since_epoch()).count()
                       << " ms)");
        REQUIRE(n <= l.max_requests);
    }
}

struct scheduler_run {
    rate_limit_options o;
    std::vector<std::unique_ptr<sim_waiter>> waiters{};
    std::map<std::string, std::vector<time_point>> endpoint_log{};
    std::vector<time_point> global_log{};
    std::map<std::string, std::vector<int>> grant_order{};
};

// Drives a limiter_core through `arrivals` (waiters with endpoint + arrival set), cancelling a waiter with
// probability `cancel_p` while parked and giving back a grant at the moment it was made with probability
// `race_p`; after every step checks that no parked waiter could have gone (full use of the allowance).
void simulate(scheduler_run& run, std::mt19937_64& rng, double cancel_p, double race_p) {
    limiter_core core(run.o, nullptr);
    auto& ws = run.waiters;
    std::stable_sort(ws.begin(), ws.end(), [](const auto& a, const auto& b) { return a->arrival < b->arrival; });
    std::map<std::string, std::uint32_t> ids;
    for (auto& w : ws) ids[w->endpoint] = core.acquire(w->endpoint, time_point{});
    std::bernoulli_distribution cancel(cancel_p), race(race_p);
    const auto span = run.o.per_endpoint.window + run.o.safety_margin;
    const auto gspan = run.o.global.window + run.o.safety_margin;

    std::size_t next_arrival = 0;
    time_point next_wake = limiter_core::never;
    std::vector<sim_waiter*> parked;
    while (next_arrival < ws.size() || core.parked() > 0) {
        const time_point now =
            std::min(next_arrival < ws.size() ? ws[next_arrival]->arrival : limiter_core::never, next_wake);
        while (next_arrival < ws.size() && ws[next_arrival]->arrival == now) {
            auto& w = *ws[next_arrival++];
            REQUIRE(core.park(w, ids[w.endpoint], false));
            parked.push_back(&w);
        }
        // Some parked waiters are cancelled before their grant: they leave and cost nothing.
        for (sim_waiter* w : parked) {
            if (w->st == limiter_waiter::state::parked && w->arrival < now && cancel(rng)) {
                core.unpark(*w);
                w->cancelled = true;
            }
        }
        for (;;) {
            std::vector<sim_waiter*> granted;
            next_wake =
                core.grant_ready(now, [&](limiter_waiter& n) { granted.push_back(static_cast<sim_waiter*>(&n)); });
            bool gave_back = false;
            for (sim_waiter* w : granted) {
                REQUIRE(w->granted_at == now);
                if (race(rng)) { // cancelled at the very moment of its grant: the slot goes back
                    core.give_back(*w);
                    w->cancelled = true;
                    gave_back = true;
                    continue;
                }
                w->granted = now;
                run.endpoint_log[w->endpoint].push_back(now);
                run.global_log.push_back(now);
                run.grant_order[w->endpoint].push_back(w->id);
            }
            if (!gave_back) break; // a returned slot may go to the next waiter at once: ask again
        }
        std::erase_if(parked, [](sim_waiter* w) { return w->st != limiter_waiter::state::parked; });
        // Full use: no waiter still parked had room in both its endpoint bucket and the global bucket.
        const bool global_room = count_in_span(run.global_log, now, gspan) < run.o.global.max_requests;
        for (sim_waiter* w : parked) {
            const bool endpoint_room =
                count_in_span(run.endpoint_log[w->endpoint], now, span) < run.o.per_endpoint.max_requests;
            INFO("waiter " << w->id << " on " << w->endpoint << " left parked at t = "
                           << std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count()
                           << " ms although both buckets had room");
            REQUIRE_FALSE((global_room && endpoint_room));
        }
        if (next_arrival >= ws.size() && core.parked() == 0) break;
        if (core.parked() > 0) REQUIRE(next_wake > now); // a finite, later look: never a spin, never stuck
        if (core.parked() > 0) REQUIRE(next_wake != limiter_core::never);
    }
}

} // namespace

TEST_CASE("scheduler: no window of W ever holds more than N grants, in either bucket, and no allowance idles",
          "[limiter]") {
    for (std::uint64_t seed = 1; seed <= 12; ++seed) {
        std::mt19937_64 rng(seed);
        scheduler_run run;
        run.o.per_endpoint = {std::uniform_int_distribution<std::size_t>(1, 8)(rng),
                              std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 1000)(rng))};
        run.o.global = {std::uniform_int_distribution<std::size_t>(2, 12)(rng),
                        std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 1000)(rng))};
        const std::chrono::milliseconds margins[] = {0ms, 1ms, 25ms, 250ms};
        run.o.safety_margin = margins[seed % 4];
        const int endpoints = std::uniform_int_distribution<int>(1, 5)(rng);
        // Bursts and trickles: arrivals cluster on a few instants and spread over the rest.
        std::uniform_int_distribution<int> when(0, 5000), which(0, endpoints - 1);
        std::bernoulli_distribution burst(0.3);
        time_point last{};
        for (int i = 0; i < 400; ++i) {
            auto w = std::make_unique<sim_waiter>();
            w->id = i;
            w->endpoint = numbered("endpoint", static_cast<std::size_t>(which(rng)));
            w->arrival = burst(rng) ? last : at(std::chrono::milliseconds(when(rng)));
            last = w->arrival;
            run.waiters.push_back(std::move(w));
        }
        INFO("seed " << seed << ": per endpoint " << run.o.per_endpoint.max_requests << "/"
                     << run.o.per_endpoint.window.count() << " ms, global " << run.o.global.max_requests << "/"
                     << run.o.global.window.count() << " ms, margin " << run.o.safety_margin.count() << " ms");
        simulate(run, rng, 0.01, 0.02);

        check_window_invariant(run.global_log, run.o.global, run.o.safety_margin, "global");
        for (const auto& [name, log] : run.endpoint_log)
            check_window_invariant(log, run.o.per_endpoint, run.o.safety_margin, name);
        // Every waiter is accounted for: granted once, or cancelled.
        for (const auto& w : run.waiters) CHECK((w->granted.has_value() != w->cancelled));
        // FIFO within each endpoint: grants follow arrival order (ids were given in arrival order only
        // per instant, so compare arrival times, then ids for the same instant).
        std::map<int, const sim_waiter*> by_id;
        for (const auto& w : run.waiters) by_id[w->id] = w.get();
        for (const auto& [name, order] : run.grant_order) {
            for (std::size_t i = 1; i < order.size(); ++i) {
                const auto* a = by_id[order[i - 1]];
                const auto* b = by_id[order[i]];
                INFO(name << ": waiter " << b->id << " was granted before an earlier arrival");
                CHECK(a->arrival <= b->arrival);
            }
        }
    }
}

TEST_CASE("scheduler: a backlog on an exhausted endpoint does not hold up the others", "[limiter]") {
    auto o = limits({5, 1000ms}, {20, 1000ms}, 0ms);
    limiter_core core(o, nullptr);
    const auto a = core.acquire("listTickets", at(0ms));
    const auto b = core.acquire("getSummary", at(0ms));
    std::vector<limiter_waiter> backlog(50), other(3);
    for (auto& w : backlog) REQUIRE(core.park(w, a, false));
    std::vector<limiter_waiter*> granted;
    auto record = [&](limiter_waiter& w) { granted.push_back(&w); };
    auto next = core.grant_ready(at(0ms), record);
    CHECK(granted.size() == 5); // listTickets' bucket is full until t = 1000 ms
    CHECK(next == at(1000ms));
    for (auto& w : other) REQUIRE(core.park(w, b, false)); // arrive later than the whole backlog
    granted.clear();
    next = core.grant_ready(at(10ms), record);
    REQUIRE(granted.size() == 3);
    for (auto& w : other) CHECK(w.st == limiter_waiter::state::granted);
    CHECK(next == at(1000ms));
}

TEST_CASE("scheduler: grants go out exactly when the window allows, margin included", "[limiter]") {
    auto o = limits({50, 60s}, {100, 60s}, 250ms);
    limiter_core core(o, nullptr);
    std::vector<limiter_waiter> ws(300);
    const std::uint32_t ids[] = {core.acquire("a", at(0ms)), core.acquire("b", at(0ms)), core.acquire("c", at(0ms))};
    for (std::size_t i = 0; i < ws.size(); ++i) REQUIRE(core.park(ws[i], ids[i % 3], false));
    std::vector<time_point> grants;
    time_point now{};
    while (core.parked() > 0) {
        const auto next = core.grant_ready(now, [&](limiter_waiter& w) { grants.push_back(w.granted_at); });
        if (next == limiter_core::never) break;
        now = next;
    }
    REQUIRE(grants.size() == 300);
    // The global bucket binds (3 x 50 > 100): 100 at t = 0, 100 at 60.25 s, 100 at 120.5 s.
    CHECK(std::count(grants.begin(), grants.end(), at(0ms)) == 100);
    CHECK(std::count(grants.begin(), grants.end(), at(60250ms)) == 100);
    CHECK(std::count(grants.begin(), grants.end(), at(120500ms)) == 100);
}

TEST_CASE("scheduler with count_from_send: no window of W holds more than N sends, however long a grant "
          "waits for its write",
          "[limiter]") {
    // The server counts arrivals. Between grant and write a call may wait for a pooled connection or a TLS
    // handshake far longer than the margin; with count_from_send the windows hold over the send times.
    for (std::uint64_t seed = 1; seed <= 10; ++seed) {
        std::mt19937_64 rng(seed);
        rate_limit_options o;
        o.count_from_send = true;
        o.per_endpoint = {std::uniform_int_distribution<std::size_t>(1, 6)(rng), 200ms};
        o.global = {std::uniform_int_distribution<std::size_t>(2, 10)(rng), 300ms};
        o.safety_margin = seed % 2 == 0 ? 0ms : 5ms;
        limiter_core core(o, nullptr);
        constexpr int endpoints = 3;
        std::map<std::string, std::uint32_t> ids;
        for (std::size_t e = 0; e < static_cast<std::size_t>(endpoints); ++e)
            ids[numbered("endpoint", e)] = core.acquire(numbered("endpoint", e), at(0ms));

        std::vector<std::unique_ptr<sim_waiter>> ws;
        std::uniform_int_distribution<int> when(0, 3000), which(0, endpoints - 1);
        for (int i = 0; i < 300; ++i) {
            auto w = std::make_unique<sim_waiter>();
            w->id = i;
            w->endpoint = numbered("endpoint", static_cast<std::size_t>(which(rng)));
            w->arrival = at(std::chrono::milliseconds(when(rng)));
            ws.push_back(std::move(w));
        }
        std::stable_sort(ws.begin(), ws.end(), [](const auto& a, const auto& b) { return a->arrival < b->arrival; });

        struct send_event {
            std::uint32_t bucket;
            std::string endpoint;
            bool unused;
        };
        std::multimap<time_point, send_event> sends; // granted, not written yet
        std::map<std::string, std::vector<time_point>> endpoint_log;
        std::vector<time_point> global_log;
        std::bernoulli_distribution instant(0.5), unused(0.1);
        std::uniform_int_distribution<int> delay(0, 700); // up to more than two windows between grant and write
        std::size_t next_arrival = 0, granted = 0, given_back = 0;
        time_point next_wake = limiter_core::never;
        while (next_arrival < ws.size() || core.parked() > 0 || !sends.empty()) {
            time_point now = next_wake;
            if (next_arrival < ws.size()) now = std::min(now, ws[next_arrival]->arrival);
            if (!sends.empty()) now = std::min(now, sends.begin()->first);
            INFO("seed " << seed << ": waiters parked with nothing to wake them");
            REQUIRE(now != limiter_core::never);
            while (!sends.empty() && sends.begin()->first == now) {
                const auto ev = sends.begin()->second;
                sends.erase(sends.begin());
                if (ev.unused) {
                    core.unused(ev.bucket);
                    ++given_back;
                } else {
                    core.sent(ev.bucket, now);
                    endpoint_log[ev.endpoint].push_back(now);
                    global_log.push_back(now);
                }
            }
            while (next_arrival < ws.size() && ws[next_arrival]->arrival == now) {
                auto& w = *ws[next_arrival++];
                REQUIRE(core.park(w, ids[w.endpoint], false));
            }
            next_wake = core.grant_ready(now, [&](limiter_waiter& n) {
                auto& w = static_cast<sim_waiter&>(n);
                ++granted;
                const auto d = instant(rng) ? 0ms : std::chrono::milliseconds(delay(rng));
                sends.emplace(now + d, send_event{w.bucket, w.endpoint, unused(rng)});
            });
            if (next_wake != limiter_core::never) REQUIRE(next_wake > now);
        }
        INFO("seed " << seed << ": per endpoint " << o.per_endpoint.max_requests << "/200 ms, global "
                     << o.global.max_requests << "/300 ms, margin " << o.safety_margin.count() << " ms");
        CHECK(granted == ws.size());
        CHECK(global_log.size() + given_back == ws.size());
        std::sort(global_log.begin(), global_log.end());
        check_window_invariant(global_log, o.global, o.safety_margin, "global");
        for (auto& [name, log] : endpoint_log) {
            std::sort(log.begin(), log.end());
            check_window_invariant(log, o.per_endpoint, o.safety_margin, name);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// The Asio limiter on the manual clock.

namespace {

// Runs `io` in virtual time up to `until`: ready handlers, then the next timer expiry, and so on.
void run_virtual(asio::io_context& io, time_point until) {
    for (;;) {
        io.restart();
        io.poll();
        const auto next = manual_timer::next_expiry();
        if (!next || *next > until) break;
        manual_timer::advance_to(*next);
    }
    manual_timer::advance_to(until);
    io.restart();
    io.poll();
}

struct outcome {
    std::optional<callsavvy::error_code> ec{};
    time_point when{};
    int order = 0;
    callsavvy::rate_grant grant{}; ///< kept: with count_from_send, dropping it gives the slot back
};

struct recorder {
    int completed = 0;
    auto handler(outcome& o) {
        return [this, &o](callsavvy::error_code ec, callsavvy::rate_grant g) {
            o.ec = ec;
            o.when = manual_clock::now();
            o.order = ++completed;
            o.grant = std::move(g);
        };
    }
};

struct virtual_time {
    virtual_time() { manual_timer::reset(); }
    ~virtual_time() { manual_timer::reset(); }
};

rate_limit_options small_limits() { return limits({2, 1000ms}, {3, 1000ms}, 10ms); }

} // namespace

TEST_CASE("limiter: acquires complete in FIFO order per endpoint, never inline", "[limiter]") {
    virtual_time vt;
    asio::io_context io;
    vlimiter lim(io.get_executor(), small_limits());
    recorder rec;
    std::vector<outcome> out(5);
    for (auto& o : out) lim.async_acquire("listTickets", rec.handler(o));
    CHECK(rec.completed == 0); // completions are posted, never run inside async_acquire
    run_virtual(io, at(0ms));
    CHECK(rec.completed == 2);
    run_virtual(io, at(5000ms));
    REQUIRE(rec.completed == 5);
    for (std::size_t i = 0; i < out.size(); ++i) {
        CHECK(out[i].ec == callsavvy::error_code{});
        CHECK(out[i].order == static_cast<int>(i) + 1);
    }
    CHECK(out[1].when == at(0ms));
    CHECK(out[2].when == at(1010ms)); // oldest of the last 2 (t = 0) + 1000 ms + 10 ms margin
    CHECK(out[3].when == at(1010ms));
    CHECK(out[4].when == at(2020ms));
}

TEST_CASE("limiter: coroutines co_await the acquire with the default token", "[limiter]") {
    virtual_time vt;
    asio::io_context io;
    vlimiter lim(io.get_executor(), small_limits());
    std::vector<time_point> grants;
    auto worker = [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 3; ++i) {
            auto grant = co_await lim.async_acquire("getSummary");
            static_assert(std::is_same_v<decltype(grant), callsavvy::rate_grant>);
            CHECK_FALSE(grant.pending()); // without count_from_send the grant counted when it was made
            grants.push_back(manual_clock::now());
        }
    };
    asio::co_spawn(io, worker(), asio::detached);
    run_virtual(io, at(10s));
    REQUIRE(grants.size() == 3);
    CHECK(grants[0] == at(0ms));
    CHECK(grants[1] == at(0ms));
    CHECK(grants[2] == at(1010ms));
}

TEST_CASE("limiter: a waiter cancelled while parked leaves the queue and costs no slot", "[limiter]") {
    virtual_time vt;
    asio::io_context io;
    auto o = small_limits();
    o.per_endpoint = {1, 1000ms};
    vlimiter lim(io.get_executor(), o);
    recorder rec;
    outcome first, cancelled, next;
    asio::cancellation_signal sig;
    lim.async_acquire("createTicket", rec.handler(first));
    lim.async_acquire("createTicket", asio::bind_cancellation_slot(sig.slot(), rec.handler(cancelled)));
    lim.async_acquire("createTicket", rec.handler(next));
    run_virtual(io, at(500ms));
    CHECK(lim.stats("createTicket").queued == 2);
    sig.emit(asio::cancellation_type::total); // any type is honoured while parked
    run_virtual(io, at(5000ms));
    CHECK(cancelled.ec == asio::error::operation_aborted);
    CHECK(cancelled.when == at(500ms));
    CHECK(next.ec == callsavvy::error_code{});
    CHECK(next.when == at(1010ms)); // the slot the cancelled waiter would have had
    CHECK(lim.stats("createTicket").queued == 0);
}

TEST_CASE("limiter: a grant racing its waiter's cancellation passes to the next waiter (boostorg/mysql #509)",
          "[limiter]") {
    virtual_time vt;
    asio::io_context io;
    auto o = small_limits();
    o.per_endpoint = {1, 1000ms};
    vlimiter lim(io.get_executor(), o);
    recorder rec;
    outcome first, raced, next, later;
    asio::cancellation_signal sig;
    lim.async_acquire("createTicket", rec.handler(first));
    run_virtual(io, at(0ms));
    lim.async_acquire("createTicket", asio::bind_cancellation_slot(sig.slot(), rec.handler(raced)));
    lim.async_acquire("createTicket", rec.handler(next));
    lim.async_acquire("createTicket", rec.handler(later));
    run_virtual(io, at(1009ms));
    REQUIRE(rec.completed == 1);

    // The window opens: the timer's handler grants `raced` and posts its completion...
    manual_timer::advance_to(at(1010ms));
    io.restart();
    REQUIRE(io.poll_one() == 1);
    CHECK(rec.completed == 1);
    CHECK(lim.stats("createTicket").in_window == 1); // the slot is taken by `raced`
    // ... and before that completion runs, `raced` is cancelled.
    sig.emit(asio::cancellation_type::terminal);
    run_virtual(io, at(1010ms));

    CHECK(raced.ec == asio::error::operation_aborted);
    CHECK(next.ec == callsavvy::error_code{});
    CHECK(next.when == at(1010ms)); // same instant: the slot was handed on, not lost
    CHECK(raced.order < next.order);
    CHECK(!later.ec.has_value());
    run_virtual(io, at(5000ms));
    CHECK(later.ec == callsavvy::error_code{});
    CHECK(later.when == at(2020ms));
}

TEST_CASE("limiter: the race through a coroutine's cancellation slot, partial cancellation too", "[limiter]") {
    virtual_time vt;
    asio::io_context io;
    auto o = small_limits();
    o.per_endpoint = {1, 1000ms};
    vlimiter lim(io.get_executor(), o);
    asio::co_spawn(io, lim.async_acquire("createTicket"), asio::detached); // takes the first slot
    run_virtual(io, at(0ms));

    std::optional<callsavvy::error_code> raced, next;
    auto waiter = [&](std::optional<callsavvy::error_code>& out) -> asio::awaitable<void> {
        co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
        auto [ec, grant] =
            co_await lim.async_acquire("createTicket", asio::experimental::as_tuple(asio::use_awaitable));
        out = ec;
    };
    asio::cancellation_signal sig;
    asio::co_spawn(io, waiter(raced), asio::bind_cancellation_slot(sig.slot(), asio::detached));
    asio::co_spawn(io, waiter(next), asio::detached);
    run_virtual(io, at(1009ms));
    manual_timer::advance_to(at(1010ms));
    io.restart();
    // The signal is emitted from the io_context's thread, queued right behind the timer's handler: co_spawn
    // in Boost.Asio 1.81 dispatches a cancellation to the coroutine's executor, so an emit from outside would
    // arrive after the grant's completion, too late to race it.
    asio::post(io, [&sig] { sig.emit(asio::cancellation_type::partial); });
    REQUIRE(io.poll_one() == 1); // the grant to the first waiter is decided and posted
    REQUIRE(io.poll_one() == 1); // the cancellation reaches the waiter before that completion runs
    run_virtual(io, at(1010ms));
    CHECK(raced == callsavvy::error_code(asio::error::operation_aborted));
    CHECK(next == callsavvy::error_code{});
}

TEST_CASE("limiter: front of the queue for a retry after a 429", "[limiter]") {
    virtual_time vt;
    asio::io_context io;
    auto o = small_limits();
    o.per_endpoint = {1, 1000ms};
    vlimiter lim(io.get_executor(), o);
    recorder rec;
    outcome a, b, c, retry;
    lim.async_acquire("listCalls", rec.handler(a));
    lim.async_acquire("listCalls", rec.handler(b));
    lim.async_acquire("listCalls", rec.handler(c));
    lim.async_acquire("listCalls", callsavvy::acquire_position::front, rec.handler(retry));
    run_virtual(io, at(5000ms));
    CHECK(a.order == 1);
    CHECK(retry.order == 2);
    CHECK(retry.when == at(1010ms));
    CHECK(b.order == 3);
    CHECK(c.order == 4);
}

TEST_CASE("limiter: a 429 pauses its endpoint; the global bucket pauses only by the documented rule", "[limiter]") {
    virtual_time vt;
    asio::io_context io;
    auto o = limits({10, 1000ms}, {20, 1000ms}, 0ms);
    vlimiter lim(io.get_executor(), o);
    recorder rec;

    SECTION("one endpoint limited: only its bucket waits") {
        CHECK_FALSE(lim.pause("listTickets", 5s));
        outcome paused, other;
        lim.async_acquire("listTickets", rec.handler(paused));
        lim.async_acquire("getSummary", rec.handler(other));
        run_virtual(io, at(10s));
        CHECK(other.when == at(0ms));
        CHECK(paused.when == at(5s));
        CHECK(lim.stats("listTickets").paused_until == at(5s));
    }
    SECTION("429s from two endpoints within one global window: the global bucket waits too") {
        CHECK_FALSE(lim.pause("listTickets", 5s));
        run_virtual(io, at(600ms));
        CHECK(lim.pause("listCalls", 3s)); // 600 ms after the first: within the 1000 ms global window
        outcome third;
        lim.async_acquire("getSummary", rec.handler(third));
        run_virtual(io, at(10s));
        CHECK(third.when == at(3600ms));
    }
    SECTION("429s from two endpoints further apart than the global window: no global pause") {
        CHECK_FALSE(lim.pause("listTickets", 5s));
        run_virtual(io, at(1001ms));
        CHECK_FALSE(lim.pause("listCalls", 3s));
    }
    SECTION("a 429 while the global bucket is full: the global bucket waits too") {
        std::vector<outcome> fill(20);
        for (std::size_t i = 0; i < fill.size(); ++i) lim.async_acquire(numbered("e", i % 4), rec.handler(fill[i]));
        run_virtual(io, at(100ms));
        CHECK(lim.global_stats().in_window == 20);
        CHECK(lim.pause("e0", 4s));
        outcome next;
        lim.async_acquire("e3", rec.handler(next));
        run_virtual(io, at(10s));
        CHECK(next.when == at(4100ms)); // not at 1000 ms when the window frees
    }
}

TEST_CASE("limiter: 429 backoff is Retry-After when given, full-jitter exponential otherwise", "[limiter]") {
    virtual_time vt;
    asio::io_context io;
    rate_limit_options o;
    o.backoff = {1000ms, 8000ms};
    o.jitter_seed = 42;
    vlimiter lim(io.get_executor(), o);

    const auto p = lim.on_rate_limited("listTickets", 7000ms, 1);
    CHECK(p.duration == 7000ms);
    CHECK(lim.stats("listTickets").paused_until == at(7000ms));

    // Without Retry-After: uniform in [0, min(cap, base * 2^(attempt-1))], and the bucket waits exactly that.
    std::map<int, std::vector<std::int64_t>> drawn;
    for (int attempt = 1; attempt <= 5; ++attempt) {
        for (int i = 0; i < 200; ++i) {
            const std::string endpoint =
                numbered(numbered("e", static_cast<std::size_t>(attempt)) + "_", static_cast<std::size_t>(i));
            const auto q = lim.on_rate_limited(endpoint, std::nullopt, attempt);
            CHECK(lim.stats(endpoint).paused_until == manual_clock::now() + q.duration);
            drawn[attempt].push_back(q.duration.count());
        }
    }
    const std::int64_t ceilings[] = {0, 1000, 2000, 4000, 8000, 8000};
    for (const auto& [attempt, v] : drawn) {
        INFO("attempt " << attempt);
        const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
        CHECK(*lo >= 0);
        CHECK(*hi <= ceilings[attempt]);
        CHECK(*lo < ceilings[attempt] / 4); // full jitter: spread over the whole range
        CHECK(*hi > ceilings[attempt] * 3 / 4);
    }
    // So many endpoints limited at once is the global limit's signature: the global bucket paused as well,
    // until the longest of those pauses.
    std::int64_t longest = 7000;
    for (const auto& [attempt, v] : drawn) longest = std::max(longest, *std::max_element(v.begin(), v.end()));
    CHECK(lim.global_stats().paused_until == at(std::chrono::milliseconds(longest)));

    // A lone 429 without Retry-After: the endpoint waits exactly the drawn backoff.
    vlimiter fresh(io.get_executor(), o);
    const auto q = fresh.on_rate_limited("listCalls", std::nullopt, 3);
    CHECK_FALSE(q.global);
    CHECK(q.duration <= 4000ms);
    outcome waited, other;
    recorder rec;
    fresh.async_acquire("listCalls", rec.handler(waited));
    fresh.async_acquire("getSummary", rec.handler(other));
    run_virtual(io, at(60s));
    CHECK(waited.when == at(q.duration));
    CHECK(other.when == at(0ms));
}

TEST_CASE("limiter: the queue bound fails fast with queue_full, or waits when configured", "[limiter]") {
    virtual_time vt;
    asio::io_context io;
    auto o = small_limits();
    o.per_endpoint = {1, 1000ms};
    o.max_waiters = 2;
    recorder rec;

    SECTION("fail fast") {
        vlimiter lim(io.get_executor(), o);
        std::vector<outcome> out(4);
        for (auto& x : out) lim.async_acquire("listUsers", rec.handler(x)); // 1 granted, 2 parked, 1 refused
        run_virtual(io, at(0ms));
        CHECK(out[0].ec == callsavvy::error_code{});
        CHECK(out[3].ec == callsavvy::make_error_code(callsavvy::error::queue_full));
        CHECK(out[3].ec == callsavvy::condition::rate_limited);
        CHECK(out[3].when == at(0ms));
        CHECK(lim.global_stats().queued == 2);
        run_virtual(io, at(5s));
        CHECK(out[1].ec == callsavvy::error_code{});
        CHECK(out[2].ec == callsavvy::error_code{});
    }
    SECTION("a retry after a 429 (at the front) is never refused, even with the queue full") {
        vlimiter lim(io.get_executor(), o);
        std::vector<outcome> out(3);
        for (auto& x : out) lim.async_acquire("listUsers", rec.handler(x)); // 1 granted, 2 parked: full
        outcome retry;
        lim.async_acquire("listUsers", callsavvy::acquire_position::front, rec.handler(retry));
        run_virtual(io, at(0ms));
        CHECK(lim.global_stats().queued == 3);
        run_virtual(io, at(1010ms));
        REQUIRE(retry.ec.has_value());
        CHECK(*retry.ec == callsavvy::error_code{}); // first in line at the next slot
        CHECK(retry.when == at(1010ms));
        CHECK_FALSE(out[1].ec.has_value());
    }
    SECTION("wait when full") {
        o.wait_when_full = true;
        vlimiter lim(io.get_executor(), o);
        std::vector<outcome> out(4);
        for (auto& x : out) lim.async_acquire("listUsers", rec.handler(x));
        run_virtual(io, at(0ms));
        CHECK(lim.overflow() == 1);
        run_virtual(io, at(5s));
        CHECK(out[3].ec == callsavvy::error_code{});
        CHECK(out[3].when == at(3030ms));
    }
}

TEST_CASE("limiter: stats report queue length and next grant time per bucket", "[limiter]") {
    virtual_time vt;
    asio::io_context io;
    vlimiter lim(io.get_executor(), small_limits()); // 2 per endpoint, 3 global, per 1000 ms + 10 ms
    recorder rec;
    std::vector<outcome> out(5);
    for (auto& x : out) lim.async_acquire("listTickets", rec.handler(x));
    run_virtual(io, at(100ms));
    const auto s = lim.stats("listTickets");
    CHECK(s.queued == 3);
    CHECK(s.in_window == 2);
    CHECK(s.next_grant == at(1010ms));
    const auto g = lim.global_stats();
    CHECK(g.queued == 3);
    CHECK(g.in_window == 2);
    CHECK(g.next_grant == at(100ms)); // the global bucket itself has room
    const auto idle = lim.stats("getSummary");
    CHECK(idle.queued == 0);
    CHECK(idle.next_grant == at(100ms));
}

TEST_CASE("limiter: close ends parked acquires and refuses new ones", "[limiter]") {
    virtual_time vt;
    asio::io_context io;
    auto o = small_limits();
    o.per_endpoint = {1, 1000ms};
    vlimiter lim(io.get_executor(), o);
    recorder rec;
    outcome a, b, c;
    lim.async_acquire("x", rec.handler(a));
    lim.async_acquire("x", rec.handler(b));
    run_virtual(io, at(0ms));
    lim.close();
    lim.async_acquire("x", rec.handler(c));
    run_virtual(io, at(0ms));
    CHECK(a.ec == callsavvy::error_code{});
    CHECK(b.ec == asio::error::operation_aborted);
    CHECK(c.ec == asio::error::operation_aborted);
    CHECK(manual_timer::next_expiry() == std::nullopt); // nothing left armed
}

TEST_CASE("limiter: disabled, every acquire completes at once", "[limiter]") {
    virtual_time vt;
    asio::io_context io;
    auto o = small_limits();
    o.enabled = false;
    vlimiter lim(io.get_executor(), o);
    recorder rec;
    std::vector<outcome> out(100);
    for (auto& x : out) lim.async_acquire("x", rec.handler(x));
    run_virtual(io, at(0ms));
    CHECK(rec.completed == 100);
}

TEST_CASE("limiter: completions run on the handler's executor, which is kept busy while parked", "[limiter]") {
    virtual_time vt;
    asio::io_context io, other;
    auto o = small_limits();
    o.per_endpoint = {1, 1000ms};
    vlimiter lim(io.get_executor(), o);
    auto strand = asio::make_strand(other);
    bool on_strand = false;
    int done = 0;
    lim.async_acquire("x", [&](callsavvy::error_code, callsavvy::rate_grant) { ++done; });
    lim.async_acquire("x", asio::bind_executor(strand, [&](callsavvy::error_code, callsavvy::rate_grant) {
                          on_strand = strand.running_in_this_thread();
                          ++done;
                      }));
    run_virtual(io, at(0ms));
    CHECK(done == 1);
    other.poll();
    CHECK_FALSE(other.stopped()); // outstanding work on the handler's executor while it waits
    run_virtual(io, at(2s));
    other.poll();
    CHECK(done == 2);
    CHECK(on_strand);
    CHECK(other.stopped()); // and released once it completed
}

TEST_CASE("limiter: an idle limiter holds no timer, so io_context::run returns", "[limiter]") {
    virtual_time vt;
    asio::io_context io;
    auto o = small_limits();
    o.per_endpoint = {1, 1000ms};
    vlimiter lim(io.get_executor(), o);
    recorder rec;
    outcome a, b;
    asio::cancellation_signal sig;
    lim.async_acquire("x", rec.handler(a));
    lim.async_acquire("x", asio::bind_cancellation_slot(sig.slot(), rec.handler(b)));
    run_virtual(io, at(0ms));
    CHECK(manual_timer::next_expiry() == at(1010ms));
    sig.emit(asio::cancellation_type::terminal);
    run_virtual(io, at(0ms));
    CHECK(manual_timer::next_expiry() == std::nullopt);
}

TEST_CASE("limiter: one limiter per API key and executor, kept by digest, released with its last user", "[limiter]") {
    asio::io_context io, io2;
    rate_limit_options o;
    o.per_endpoint = {7, 60s};
    auto a1 = callsavvy::limiter_for_key(io.get_executor(), "pk_live_alpha", o);
    auto a2 = callsavvy::limiter_for_key(io.get_executor(), "pk_live_alpha", o);
    auto b = callsavvy::limiter_for_key(io.get_executor(), "pk_live_beta", o);
    CHECK(a1 == a2);
    CHECK(a1 != b);
    // Another executor: another limiter, with its timer there, over the same buckets and the first's options.
    rate_limit_options other = o;
    other.per_endpoint = {1, 1s};
    auto elsewhere = callsavvy::limiter_for_key(io2.get_executor(), "pk_live_alpha", other);
    REQUIRE(elsewhere != a1);
    CHECK(elsewhere->get_executor() == io2.get_executor());
    CHECK(elsewhere->options().per_endpoint.max_requests == 7);
    CHECK(callsavvy::limiter_for_key(io2.get_executor(), "pk_live_alpha", o) == elsewhere);
    int granted = 0;
    a1->async_acquire("listCalls", [&](callsavvy::error_code ec, callsavvy::rate_grant) { granted += ec ? 0 : 1; });
    io.poll();
    REQUIRE(granted == 1);
    CHECK(elsewhere->stats("listCalls").in_window == 1);
    CHECK(b->stats("listCalls").in_window == 0);

    const std::string digest = callsavvy::detail::limiter_key_digest("pk_live_alpha");
    CHECK(digest.size() == 64);
    CHECK(digest.find("alpha") == std::string::npos);
    CHECK(digest != callsavvy::detail::limiter_key_digest("pk_live_beta"));
    const auto names =
        callsavvy::detail::limiter_registry<callsavvy::rate_limiter, callsavvy::detail::limiter_group>::instance()
            .names();
    CHECK(std::find(names.begin(), names.end(), digest) != names.end());
    for (const auto& name : names) CHECK(name.find("pk_live") == std::string::npos);
    a1.reset();
    a2.reset();
    CHECK(elsewhere->stats("listCalls").in_window == 1); // the key's buckets live on with its other limiter
    elsewhere.reset();
    auto a3 = callsavvy::limiter_for_key(io.get_executor(), "pk_live_alpha", other);
    REQUIRE(a3 != nullptr);
    CHECK(a3->global_stats().in_window == 0); // a fresh limiter, not a dangling one
    CHECK(a3->options().per_endpoint.max_requests == 1);
}

TEST_CASE("limiter with count_from_send: a full window waits for its oldest grant's send, and a grant dropped "
          "unsent frees the slot",
          "[limiter]") {
    virtual_time vt;
    asio::io_context io;
    auto o = small_limits(); // 2 per endpoint, 3 global per 1000 ms, margin 10 ms
    o.count_from_send = true;
    vlimiter lim(io.get_executor(), o);
    recorder rec;
    std::vector<outcome> out(4);
    for (auto& x : out) lim.async_acquire("listTickets", rec.handler(x));
    run_virtual(io, at(0ms));
    REQUIRE(rec.completed == 2);
    CHECK(out[0].grant.pending());
    out[0].grant.sent(); // the first request leaves at once...
    CHECK_FALSE(out[0].grant.pending());
    run_virtual(io, at(500ms));
    out[1].grant.sent(); // ... the second only at 500 ms (say, after a slow handshake)
    run_virtual(io, at(1009ms));
    CHECK(rec.completed == 2);
    run_virtual(io, at(1010ms));
    REQUIRE(rec.completed == 3); // 1000 ms + margin after the first send
    CHECK(out[2].when == at(1010ms));
    out[2].grant = {}; // out[2]'s connection failed before writing: its slot is free again
    run_virtual(io, at(1010ms));
    REQUIRE(rec.completed == 4);
    CHECK(out[3].when == at(1010ms)); // the window (510 ms, 1510 ms] holds only the send at 500 ms

    // out[3] and the next grant (at 1510 ms) do not report their sends: a full window whose oldest grant is
    // still pending admits nobody, however long it waits.
    outcome next, last;
    lim.async_acquire("listTickets", rec.handler(next));
    lim.async_acquire("listTickets", rec.handler(last));
    run_virtual(io, at(10s));
    REQUIRE(next.ec.has_value());
    CHECK(next.when == at(1510ms));
    CHECK_FALSE(last.ec.has_value());
    CHECK(lim.stats("listTickets").queued == 1);
    out[3].grant.sent();
    next.grant.sent(); // both leave at 10 s
    run_virtual(io, at(12s));
    REQUIRE(last.ec.has_value());
    CHECK(*last.ec == callsavvy::error_code{});
    CHECK(last.when == at(11010ms)); // 1000 ms + margin after those sends
}

TEST_CASE("rate_grant: move-only; moved-from, default and count_from_send-less grants are empty; a grant may "
          "outlive its limiter",
          "[limiter]") {
    static_assert(!std::is_copy_constructible_v<callsavvy::rate_grant>);
    static_assert(std::is_nothrow_move_constructible_v<callsavvy::rate_grant>);
    virtual_time vt;
    asio::io_context io;
    auto o = small_limits();
    o.per_endpoint = {1, 1000ms};
    recorder rec;

    SECTION("default-constructed") {
        callsavvy::rate_grant g;
        CHECK_FALSE(g.pending());
        g.sent(); // nothing to report
        CHECK_FALSE(g.pending());
    }
    SECTION("without count_from_send the slot is spent at the grant: dropping the grant gives nothing back") {
        vlimiter lim(io.get_executor(), o);
        outcome a, b;
        lim.async_acquire("x", rec.handler(a));
        lim.async_acquire("x", rec.handler(b));
        run_virtual(io, at(0ms));
        REQUIRE(a.ec == callsavvy::error_code{});
        CHECK_FALSE(a.grant.pending());
        a.grant = {};
        run_virtual(io, at(5s));
        CHECK(b.when == at(1010ms));
    }
    SECTION("with count_from_send: moving carries the slot, assigning over a grant gives that one back") {
        o.count_from_send = true;
        vlimiter lim(io.get_executor(), o);
        outcome a, b, c;
        lim.async_acquire("x", rec.handler(a));
        lim.async_acquire("y", rec.handler(b));
        lim.async_acquire("x", rec.handler(c));
        run_virtual(io, at(100ms));
        REQUIRE(rec.completed == 2);
        callsavvy::rate_grant moved(std::move(a.grant));
        CHECK_FALSE(a.grant.pending()); // NOLINT(bugprone-use-after-move): moved-from is specified as empty
        CHECK(moved.pending());
        a.grant = {}; // an empty grant gives nothing back
        run_virtual(io, at(200ms));
        CHECK(rec.completed == 2);
        moved = std::move(b.grant); // x's unsent grant is given back: c gets its slot at once
        run_virtual(io, at(200ms));
        REQUIRE(rec.completed == 3);
        CHECK(c.when == at(200ms));
        CHECK(lim.stats("y").in_window == 1); // y's slot now travels with `moved`
        moved.sent();
        CHECK_FALSE(moved.pending());
        moved.sent(); // once only
        CHECK(lim.stats("y").in_window == 1);
    }
    SECTION("a grant outlives its limiter: sent() and the destructor still reach the buckets' owner safely") {
        o.count_from_send = true;
        outcome a, b;
        {
            vlimiter lim(io.get_executor(), o);
            lim.async_acquire("x", rec.handler(a));
            lim.async_acquire("x", rec.handler(b));
            run_virtual(io, at(0ms));
        }
        run_virtual(io, at(0ms));
        REQUIRE(a.grant.pending());
        CHECK(b.ec == asio::error::operation_aborted); // the limiter's destruction ended the wait
        a.grant.sent();
        CHECK(manual_timer::next_expiry() == std::nullopt);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Limiters on several executors over one store, in virtual time.

namespace {

void run_virtual(std::initializer_list<asio::io_context*> ios, time_point until) {
    auto poll_all = [&] {
        std::size_t n = 0;
        for (auto* io : ios) {
            io->restart();
            n += io->poll();
        }
        return n;
    };
    for (;;) {
        while (poll_all() > 0) {} // a wake-up posted to one may make work for another
        const auto next = manual_timer::next_expiry();
        if (!next || *next > until) break;
        manual_timer::advance_to(*next);
    }
    manual_timer::advance_to(until);
    while (poll_all() > 0) {}
}

// The most grants of `times` (sorted) within any span of `w` (each span starting at a grant).
std::size_t most_in_window(std::vector<time_point> times, std::chrono::milliseconds w) {
    std::sort(times.begin(), times.end());
    std::size_t best = 0;
    for (std::size_t i = 0; i < times.size(); ++i) {
        std::size_t n = 0;
        for (std::size_t j = i; j < times.size() && times[j] < times[i] + w; ++j) ++n;
        best = std::max(best, n);
    }
    return best;
}

} // namespace

TEST_CASE("limiters sharing a store: together within the limits, each on its own executor", "[limiter]") {
    virtual_time vt;
    asio::io_context io1, io2;
    auto o = small_limits(); // 2 per endpoint, 3 global per 1000 ms, margin 10 ms
    vlimiter a(io1.get_executor(), o);
    vlimiter b(io2.get_executor(), a);
    CHECK(b.options().per_endpoint.max_requests == 2);
    recorder rec;
    std::vector<outcome> from_a(9), from_b(9);
    for (std::size_t i = 0; i < from_a.size(); ++i) {
        a.async_acquire(numbered("e", i % 2), rec.handler(from_a[i]));
        b.async_acquire(numbered("e", i % 2), rec.handler(from_b[i]));
    }
    run_virtual({&io1, &io2}, at(60s));
    REQUIRE(rec.completed == 18);
    std::vector<time_point> all, e0;
    for (const auto* side : {&from_a, &from_b}) {
        for (std::size_t i = 0; i < side->size(); ++i) {
            CHECK((*side)[i].ec == callsavvy::error_code{});
            all.push_back((*side)[i].when);
            if (i % 2 == 0) e0.push_back((*side)[i].when);
        }
    }
    CHECK(most_in_window(all, 1010ms) == 3); // the global limit, reached and never exceeded
    CHECK(most_in_window(e0, 1010ms) <= 2);
    std::sort(all.begin(), all.end());
    CHECK(all.back() == at(5050ms)); // 18 grants, 3 per 1010 ms: no slot idled
}

TEST_CASE("limiters sharing a store: a send or a give-back in one wakes the other's waiters", "[limiter]") {
    virtual_time vt;
    asio::io_context io1, io2;
    auto o = limits({2, 1000ms}, {10, 1000ms}, 10ms);
    o.count_from_send = true;
    auto a = std::make_unique<vlimiter>(io1.get_executor(), o);
    vlimiter b(io2.get_executor(), *a);
    recorder rec;
    outcome ax1, ax2, ay1, ay2, bx, by, bx2;
    a->async_acquire("x", rec.handler(ax1));
    a->async_acquire("x", rec.handler(ax2));
    a->async_acquire("y", rec.handler(ay1));
    a->async_acquire("y", rec.handler(ay2));
    run_virtual({&io1, &io2}, at(0ms));
    REQUIRE(rec.completed == 4);
    b.async_acquire("x", rec.handler(bx));
    b.async_acquire("y", rec.handler(by));
    run_virtual({&io1, &io2}, at(5s));
    // Both windows are full of a's pending grants: b has no time to wait for, and holds no timer.
    CHECK(rec.completed == 4);
    CHECK(manual_timer::next_expiry() == std::nullopt);

    ax1.grant.sent(); // x's oldest is still pending ...
    run_virtual({&io1, &io2}, at(6s));
    CHECK_FALSE(bx.ec.has_value());
    ax2.grant.sent(); // ... until now: sent at 5 s and 6 s, the window has room at 5 s + 1010 ms
    run_virtual({&io1, &io2}, at(7s));
    REQUIRE(bx.ec.has_value());
    CHECK(*bx.ec == callsavvy::error_code{});
    CHECK(bx.when == at(6010ms));

    CHECK_FALSE(by.ec.has_value());
    ay2.grant = {}; // never sent, given back on a's side: b's waiter goes at once
    run_virtual({&io1, &io2}, at(7s));
    REQUIRE(by.ec.has_value());
    CHECK(by.when == at(7s));

    // Destroying a leaves b as it was; a's grant still pending outlives a and holds its slot.
    a.reset();
    b.async_acquire("x", rec.handler(bx2));
    run_virtual({&io1, &io2}, at(10s));
    REQUIRE(bx2.ec.has_value());
    CHECK(bx2.when == at(7010ms)); // x: sent at 6 s, bx pending since 6010 ms
    outcome by2;
    b.async_acquire("y", rec.handler(by2));
    run_virtual({&io1, &io2}, at(10s));
    CHECK_FALSE(by2.ec.has_value()); // y holds ay1 and by, both pending
    ay1.grant = {};                  // the grant outlived a: its slot still goes back, and b hears of it
    run_virtual({&io1, &io2}, at(10s));
    REQUIRE(by2.ec.has_value());
    CHECK(by2.when == at(10s));
}

TEST_CASE("buckets for ever new resource names are reclaimed once idle; limits still hold for names used again",
          "[limiter]") {
    virtual_time vt;
    asio::io_context io;
    auto o = limits({2, 1000ms}, {50, 1000ms}, 10ms);
    auto store = std::make_shared<callsavvy::local_bucket_store>(o);
    vlimiter lim(io.get_executor(), o, store);
    recorder rec;

    // 10,000 names one after another (a raw call may name anything), with a hot name every tenth call.
    std::vector<time_point> hot;
    std::size_t most_buckets = 0;
    for (std::size_t i = 0; i < 10'000; ++i) {
        outcome x;
        const bool is_hot = i % 10 == 0;
        lim.async_acquire(is_hot ? std::string("hot") : numbered("resource-", i), rec.handler(x));
        run_virtual(io, manual_clock::now());
        while (!x.ec) {
            const auto next = manual_timer::next_expiry();
            REQUIRE(next.has_value());
            run_virtual(io, *next);
        }
        REQUIRE(*x.ec == callsavvy::error_code{});
        if (is_hot) hot.push_back(x.when);
        most_buckets = std::max(most_buckets, store->buckets());
    }
    INFO("most endpoint buckets held at once: " << most_buckets);
    CHECK(most_buckets <= callsavvy::local_bucket_store::default_keep);
    CHECK(most_in_window(hot, 1010ms) == 2); // the hot name kept its bucket, and its limit, throughout
    // A reclaimed name used again gets a bucket of its own, with its limit.
    std::vector<outcome> again(3);
    for (auto& x : again) lim.async_acquire("resource-1", rec.handler(x));
    const auto now = manual_clock::now();
    run_virtual(io, now + 5s);
    CHECK(again[1].when == now);
    CHECK(again[2].when == now + 1010ms);
}

TEST_CASE("bucket reclaiming never takes a bucket that is in use", "[limiter]") {
    virtual_time vt;
    asio::io_context io;
    auto o = limits({1, 1000ms}, {100, 1000ms}, 10ms);
    o.count_from_send = true;
    auto store = std::make_shared<callsavvy::local_bucket_store>(o, 8);
    vlimiter lim(io.get_executor(), o, store);
    recorder rec;
    auto flood = [&] { // many names that are idle as soon as looked at
        for (std::size_t i = 0; i < 100; ++i) (void)lim.stats(numbered("flood-", i));
    };

    outcome windowed, pending, parked, paused;
    lim.async_acquire("windowed", rec.handler(windowed)); // a grant within the window
    lim.async_acquire("pending", rec.handler(pending));   // a grant not sent yet
    run_virtual(io, at(0ms));
    windowed.grant.sent();
    REQUIRE(pending.grant.pending());
    lim.pause("paused", 30s);
    lim.async_acquire("paused", rec.handler(paused)); // parked behind the pause
    // An acquire resolved to its bucket but not started yet (a deferred token starts it later).
    auto deferred = lim.async_acquire("deferred", asio::experimental::deferred);
    flood();
    CHECK(store->buckets() <= 8);

    // Each bucket kept its state: a reclaimed one would admit at once.
    outcome w2, p2, d;
    lim.async_acquire("windowed", rec.handler(w2));
    lim.async_acquire("pending", rec.handler(p2));
    std::move(deferred)(rec.handler(d));
    run_virtual(io, at(500ms));
    REQUIRE(d.ec.has_value());
    CHECK(d.when == at(0ms));
    CHECK(lim.stats("deferred").in_window == 1); // its bucket is still the one named "deferred"
    CHECK_FALSE(w2.ec.has_value());
    CHECK_FALSE(p2.ec.has_value());
    CHECK(lim.stats("paused").queued == 1);
    CHECK(lim.stats("paused").paused_until > at(29s));
    flood();
    run_virtual(io, at(1010ms));
    REQUIRE(w2.ec.has_value());
    CHECK(w2.when == at(1010ms));
    CHECK_FALSE(p2.ec.has_value()); // `pending`'s window waits for its send
    pending.grant.sent();
    run_virtual(io, at(3000ms));
    REQUIRE(p2.ec.has_value());
    CHECK(p2.when == at(2020ms));
    flood();
    CHECK(store->buckets() <= 8);
    lim.close();
    run_virtual(io, at(3000ms));
    CHECK(paused.ec == asio::error::operation_aborted);
}

// ---------------------------------------------------------------------------------------------------------
// Per-endpoint overrides and waiter bounds, and a shared store (the seam of redis_bucket_store) in front of
// which the local buckets still decide first.

TEST_CASE("limiter: an endpoint override has its own limits and waiter bound", "[limiter]") {
    virtual_time vt;
    asio::io_context io;
    auto o = small_limits(); // 2 per endpoint, 3 global, per 1000 ms, 10 ms margin
    o.global = {10, 1000ms};
    o.endpoint_overrides["exportCsv"] = {bucket_limits{1, 2000ms}, std::size_t{1}};
    vlimiter lim(io.get_executor(), o);
    recorder rec;
    std::vector<outcome> slow(3), fast(3);
    for (auto& x : slow) lim.async_acquire("exportCsv", rec.handler(x)); // 1 granted, 1 parked, 1 refused
    for (auto& x : fast) lim.async_acquire("listTickets", rec.handler(x));
    run_virtual(io, at(0ms));
    CHECK(slow[0].ec == callsavvy::error_code{});
    CHECK_FALSE(slow[1].ec.has_value());
    CHECK(slow[2].ec == callsavvy::make_error_code(callsavvy::error::queue_full));
    CHECK(fast[0].ec == callsavvy::error_code{}); // the other endpoints keep the default limits
    CHECK(fast[1].ec == callsavvy::error_code{});
    CHECK_FALSE(fast[2].ec.has_value());
    run_virtual(io, at(1500ms));
    CHECK(fast[2].when == at(1010ms));
    CHECK_FALSE(slow[1].ec.has_value()); // its own window: 2000 ms
    run_virtual(io, at(3000ms));
    CHECK(slow[1].ec == callsavvy::error_code{});
    CHECK(slow[1].when == at(2010ms));
}

TEST_CASE("limiter: max_waiters_per_endpoint bounds each endpoint's queue on its own", "[limiter]") {
    virtual_time vt;
    asio::io_context io;
    auto o = small_limits();
    o.global = {10, 1000ms};
    o.max_waiters_per_endpoint = 1;
    vlimiter lim(io.get_executor(), o);
    recorder rec;
    std::vector<outcome> a(4), b(3);
    for (auto& x : a) lim.async_acquire("listTickets", rec.handler(x)); // 2 granted, 1 parked, 1 refused
    for (auto& x : b) lim.async_acquire("listUsers", rec.handler(x));   // 2 granted, 1 parked
    run_virtual(io, at(0ms));
    CHECK(a[3].ec == callsavvy::make_error_code(callsavvy::error::queue_full));
    CHECK_FALSE(a[2].ec.has_value());
    CHECK_FALSE(b[2].ec.has_value());
    CHECK(lim.global_stats().queued == 2);
    run_virtual(io, at(2s));
    CHECK(a[2].ec == callsavvy::error_code{});
    CHECK(b[2].ec == callsavvy::error_code{});
}

namespace {

// A shared store whose answers the test gives: at once (`ready`) or later, by answer().
struct fake_shared_store final : callsavvy::shared_bucket_store {
    struct asked {
        std::string scope, endpoint;
        bucket_limits endpoint_limits, global_limits;
        time_point at;
        completion done;
    };
    std::optional<callsavvy::shared_decision> ready{};
    std::vector<asked> pending{};
    std::size_t asked_total = 0;
    bool closed = false;

    std::optional<callsavvy::shared_decision> reserve(const callsavvy::shared_reserve& r, completion done) override {
        ++asked_total;
        if (closed) return callsavvy::shared_decision{asio::error::operation_aborted};
        if (ready) return ready;
        pending.push_back({std::string(r.scope), std::string(r.endpoint), r.endpoint_limits, r.global_limits,
                           manual_clock::now(), std::move(done)});
        return std::nullopt;
    }
    void close() noexcept override {
        closed = true;
        auto p = std::move(pending);
        pending.clear();
        for (auto& a : p) a.done(callsavvy::shared_decision{asio::error::operation_aborted});
    }
    void answer(const callsavvy::shared_decision& d) {
        REQUIRE_FALSE(pending.empty());
        auto a = std::move(pending.front());
        pending.erase(pending.begin());
        a.done(d);
    }
};

struct with_fake_store {
    std::shared_ptr<fake_shared_store> store = std::make_shared<fake_shared_store>();
    rate_limit_options options(callsavvy::store_failure_policy policy) const {
        auto o = small_limits();
        o.on_store_failure = policy;
        o.shared_store = [s = store](const asio::any_io_executor&) { return s; };
        return o;
    }
};

} // namespace

TEST_CASE("limiter with a shared store: each local grant waits for the store; a refusal waits as it says",
          "[limiter][shared_store]") {
    virtual_time vt;
    asio::io_context io;
    with_fake_store f;
    vlimiter lim(io.get_executor(), f.options(callsavvy::store_failure_policy::fail));
    recorder rec;
    std::vector<outcome> out(2);
    for (auto& x : out) lim.async_acquire("listTickets", rec.handler(x));
    run_virtual(io, at(0ms));
    REQUIRE(f.store->pending.size() == 2); // both fit the local buckets: both asked, in order
    CHECK(f.store->pending[0].scope == "default");
    CHECK(f.store->pending[0].endpoint == "listTickets");
    CHECK(f.store->pending[0].endpoint_limits.max_requests == 2);
    CHECK(f.store->pending[0].global_limits.max_requests == 3);
    CHECK(rec.completed == 0);         // nothing goes before the store said so
    f.store->answer({});               // granted
    f.store->answer({{}, 300ms, 0ms}); // the fleet's endpoint bucket is full for 300 ms more
    run_virtual(io, at(0ms));
    CHECK(out[0].ec == callsavvy::error_code{});
    CHECK_FALSE(out[1].ec.has_value());
    CHECK(lim.stats("listTickets").queued == 1); // back in its place
    CHECK(f.store->pending.empty());
    run_virtual(io, at(299ms));
    CHECK(f.store->pending.empty()); // nobody asks again before the store's bucket has room
    run_virtual(io, at(300ms));
    REQUIRE(f.store->pending.size() == 1);
    CHECK(f.store->pending[0].at == at(300ms));
    f.store->answer({});
    run_virtual(io, at(300ms));
    CHECK(out[1].ec == callsavvy::error_code{});
    CHECK(out[1].when == at(300ms));
    CHECK(lim.store_fallbacks() == 0);
}

TEST_CASE("limiter with a shared store: a store failure falls back to the local buckets, or fails the acquire",
          "[limiter][shared_store]") {
    virtual_time vt;
    asio::io_context io;
    with_fake_store f;
    recorder rec;
    const callsavvy::shared_decision down{callsavvy::make_error_code(callsavvy::error::rate_store_unavailable)};
    SECTION("fall_back_local: the local limits still hold") {
        vlimiter lim(io.get_executor(), f.options(callsavvy::store_failure_policy::fall_back_local));
        f.store->ready = down; // answered at once, as a store that knows its server is down does
        std::vector<outcome> out(3);
        for (auto& x : out) lim.async_acquire("listTickets", rec.handler(x));
        run_virtual(io, at(0ms));
        CHECK(out[0].ec == callsavvy::error_code{});
        CHECK(out[1].ec == callsavvy::error_code{});
        CHECK_FALSE(out[2].ec.has_value()); // the endpoint's 2 per window, held locally
        CHECK(lim.store_fallbacks() == 2);
        f.store->ready.reset();
        run_virtual(io, at(1010ms));
        REQUIRE(f.store->pending.size() == 1); // the store is asked again once it may answer
        f.store->answer({});
        run_virtual(io, at(1010ms));
        CHECK(out[2].ec == callsavvy::error_code{});
        CHECK(lim.store_fallbacks() == 2);
    }
    SECTION("fail: the acquire ends with rate_store_unavailable and frees its local slot") {
        vlimiter lim(io.get_executor(), f.options(callsavvy::store_failure_policy::fail));
        std::vector<outcome> out(3);
        for (auto& x : out) lim.async_acquire("listTickets", rec.handler(x));
        run_virtual(io, at(0ms));
        REQUIRE(f.store->pending.size() == 2);
        f.store->answer(down);
        run_virtual(io, at(0ms));
        CHECK(out[0].ec == callsavvy::make_error_code(callsavvy::error::rate_store_unavailable));
        CHECK(out[0].ec == callsavvy::condition::rate_limited);
        REQUIRE(f.store->pending.size() == 2); // the slot it gave back went to the third at once
        f.store->answer({});
        f.store->answer({});
        run_virtual(io, at(0ms));
        CHECK(out[1].ec == callsavvy::error_code{});
        CHECK(out[2].ec == callsavvy::error_code{});
        CHECK(lim.store_fallbacks() == 0);
    }
}

TEST_CASE("limiter with a shared store: close ends acquires waiting for the store; cancellation waits for it",
          "[limiter][shared_store]") {
    virtual_time vt;
    asio::io_context io;
    with_fake_store f;
    recorder rec;
    auto lim = std::make_unique<vlimiter>(io.get_executor(), f.options(callsavvy::store_failure_policy::fail));
    outcome first, cancelled;
    asio::cancellation_signal sig;
    lim->async_acquire("listTickets", rec.handler(first));
    lim->async_acquire("listTickets", asio::bind_cancellation_slot(sig.slot(), rec.handler(cancelled)));
    run_virtual(io, at(0ms));
    REQUIRE(f.store->pending.size() == 2);
    sig.emit(asio::cancellation_type::terminal);
    f.store->answer({}); // first
    f.store->answer({}); // the cancelled one's grant: given back, reported as cancelled
    run_virtual(io, at(0ms));
    CHECK(first.ec == callsavvy::error_code{});
    CHECK(cancelled.ec == asio::error::operation_aborted);
    outcome waiting;
    lim->async_acquire("listTickets", rec.handler(waiting)); // the slot given back is its own
    run_virtual(io, at(0ms));
    REQUIRE(f.store->pending.size() == 1);
    lim.reset(); // close: the store completes what it still had, the acquire ends
    run_virtual(io, at(0ms));
    CHECK(waiting.ec == asio::error::operation_aborted);
    CHECK(f.store->closed);
}

// ---------------------------------------------------------------------------------------------------------
// RESP2 framing of the Redis store.

TEST_CASE("resp: commands are arrays of bulk strings; replies parse as they arrive", "[redis][resp]") {
    using callsavvy::detail::resp;
    using callsavvy::detail::resp_value;
    std::string cmd;
    resp::append_command(cmd, {"SET", "k", std::string_view("a\r\nb", 4)});
    CHECK(cmd == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n");

    const std::string replies = "+OK\r\n-ERR wrong\r\n:-42\r\n$5\r\nhe\r\nl\r\n$-1\r\n*2\r\n:0\r\n*1\r\n$0\r\n\r\n";
    std::size_t pos = 0;
    std::vector<resp_value> got;
    // Fed a byte at a time, every reply is incomplete until its last byte arrives.
    for (std::size_t n = 0; n <= replies.size(); ++n) {
        resp_value v;
        while (resp::parse(std::string_view(replies).substr(0, n), pos, v) == resp::result::complete) {
            got.push_back(std::move(v));
            v = {};
        }
    }
    CHECK(pos == replies.size());
    REQUIRE(got.size() == 6);
    CHECK((got[0].type == resp_value::kind::simple && got[0].text == "OK"));
    CHECK((got[1].type == resp_value::kind::error && got[1].text == "ERR wrong"));
    CHECK((got[2].type == resp_value::kind::integer && got[2].integer == -42));
    CHECK((got[3].type == resp_value::kind::bulk && got[3].text == "he\r\nl"));
    CHECK(got[4].type == resp_value::kind::nil);
    REQUIRE(got[5].type == resp_value::kind::array);
    REQUIRE(got[5].items.size() == 2);
    CHECK(got[5].items[0].integer == 0);
    REQUIRE(got[5].items[1].items.size() == 1);
    CHECK((got[5].items[1].items[0].type == resp_value::kind::bulk && got[5].items[1].items[0].text.empty()));
}

TEST_CASE("resp: malformed or oversized replies are refused, not guessed at", "[redis][resp]") {
    using callsavvy::detail::resp;
    for (const std::string_view bad : {"?x\r\n", ":12a\r\n", ":\r\n", "$3\r\nabcd\r\n", "$-2\r\n", "*-5\r\n",
                                       "$99999999\r\n", "*99999\r\n", "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"}) {
        INFO(bad);
        std::size_t pos = 0;
        callsavvy::detail::resp_value v;
        CHECK(resp::parse(bad, pos, v) == resp::result::malformed);
        CHECK(pos == 0);
    }
    std::size_t pos = 0;
    callsavvy::detail::resp_value v;
    CHECK(resp::parse("*2\r\n:1\r\n", pos, v) == resp::result::incomplete);
    CHECK(pos == 0);
}
