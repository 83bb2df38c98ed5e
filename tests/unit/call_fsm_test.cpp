// The call's state machine (detail/call_fsm.hpp) without sockets: every retry-safety rule of spec §2 and
// every race between an answer, the attempt's timer, the deadline, close() and a cancellation, written as the
// sequence of events the driver would feed it. Each rule names what must never happen: a request written
// after the call was stopped, a done call reported as failed, a state-changing request sent twice.
#include <callsavvy/detail/call_fsm.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <random>
#include <string>

using namespace std::chrono_literals;
using callsavvy::error;
using callsavvy::detail::attempt_report;
using callsavvy::detail::call_action;
using callsavvy::detail::call_fsm;
using callsavvy::detail::call_interrupt;
using callsavvy::detail::call_rules;
using callsavvy::detail::call_stop;
using kind = call_action::kind;
using ctype = asio::cancellation_type;

namespace {

constexpr auto t0 = std::chrono::steady_clock::time_point{} + 1000s;

// One call and the client-wide pieces its machine shares (budget, breaker, jitter).
struct harness {
    explicit harness(bool read_only, bool limited = true, std::chrono::milliseconds deadline = 120s) {
        rules.read_only = read_only;
        rules.limited = limited;
        rules.retry.backoff_base = 10ms;
        rules.retry.backoff_cap = 100ms;
        rules.deadline = t0 + deadline;
        rules.call_deadline = deadline;
        rules.attempt_timeout = 30s;
    }
    call_fsm& fsm() {
        if (!machine) machine.emplace(rules, budget, breaker, rng, d);
        return *machine;
    }
    // Start -> grant -> connection: the machine asks for an attempt.
    call_action to_attempt(bool reused_ok = true) {
        call_action a = fsm().start(now);
        if (a.what == kind::wait_grant) a = fsm().on_grant({}, now);
        REQUIRE(a.what == kind::acquire);
        (void)reused_ok;
        a = fsm().on_connection({}, now);
        REQUIRE(a.what == kind::attempt);
        return a;
    }
    // From a retry action (wait_grant / acquire / backoff) to the next attempt.
    call_action next_attempt(call_action a) {
        if (a.what == kind::backoff) a = fsm().on_backoff_done(now);
        if (a.what == kind::wait_grant) a = fsm().on_grant({}, now);
        REQUIRE(a.what == kind::acquire);
        a = fsm().on_connection({}, now);
        REQUIRE(a.what == kind::attempt);
        return a;
    }

    call_rules rules;
    callsavvy::retry_budget budget;
    callsavvy::auth_breaker breaker;
    std::minstd_rand rng{7};
    callsavvy::diagnostics d;
    std::optional<call_fsm> machine;
    std::chrono::steady_clock::time_point now = t0;
};

attempt_report lost_after_write() {
    return {.ec = callsavvy::make_error_code(error::connection_closed), .written = true};
}
attempt_report refused() { return {.ec = callsavvy::make_error_code(error::connect_failed)}; }
attempt_report answered(int status, std::optional<std::chrono::seconds> retry_after = {}) {
    return {.ec = callsavvy::make_error_code(callsavvy::error_from_status(status)),
            .http_status = status,
            .written = true,
            .retry_after = retry_after};
}
attempt_report ok() { return {.http_status = 200, .written = true}; }

} // namespace

TEST_CASE("call_fsm: a success completes the call at once", "[call_fsm]") {
    harness h(false);
    h.to_attempt();
    REQUIRE(h.fsm().on_write());
    const auto a = h.fsm().on_attempt(ok(), h.now);
    CHECK(a.what == kind::complete);
    CHECK_FALSE(a.ec);
    CHECK(h.fsm().done());
    CHECK(h.d.attempts == 1);
}

TEST_CASE("call_fsm: a backoff timer that already fired when close() came sends nothing more", "[call_fsm]") {
    for (const auto why : {call_stop::closed, call_stop::deadline, call_stop::cancelled}) {
        harness h(true);
        h.to_attempt();
        REQUIRE(h.fsm().on_write());
        auto a = h.fsm().on_attempt(refused(), h.now);
        REQUIRE(a.what == kind::backoff);
        // The stop interrupts the backoff; the timer had fired already, so its completion says "done".
        CHECK(h.fsm().stop(why) == call_interrupt::backoff);
        a = h.fsm().on_backoff_done(h.now);
        CHECK(a.what == kind::complete);
        CHECK(a.ec == (why == call_stop::deadline ? callsavvy::error_code(error::deadline_exceeded)
                                                  : callsavvy::error_code(asio::error::operation_aborted)));
        CHECK(h.d.attempts == 1);
    }
}

TEST_CASE("call_fsm: a grant or a connection that raced a stop is never used", "[call_fsm]") {
    SECTION("grant") {
        harness h(false);
        REQUIRE(h.fsm().start(h.now).what == kind::wait_grant);
        CHECK(h.fsm().stop(call_stop::closed) == call_interrupt::limiter_wait);
        const auto a = h.fsm().on_grant({}, h.now); // granted at the moment of the interrupt
        CHECK(a.what == kind::complete);
        CHECK(a.ec == asio::error::operation_aborted);
        CHECK(h.d.detail == "client closed");
    }
    SECTION("connection") {
        harness h(false);
        REQUIRE(h.fsm().start(h.now).what == kind::wait_grant);
        REQUIRE(h.fsm().on_grant({}, h.now).what == kind::acquire);
        CHECK(h.fsm().stop(call_stop::deadline) == call_interrupt::pool_wait);
        const auto a = h.fsm().on_connection({}, h.now);
        CHECK(a.what == kind::complete);
        CHECK(a.ec == error::deadline_exceeded);
        CHECK(h.d.attempts == 0);
    }
    SECTION("a stop while connecting: nothing is written") {
        harness h(false);
        h.to_attempt();
        CHECK(h.fsm().stop(call_stop::closed) == call_interrupt::connection);
        CHECK_FALSE(h.fsm().on_write()); // the driver must not write
        const auto a = h.fsm().on_attempt({.ec = asio::error::operation_aborted}, h.now);
        CHECK(a.ec == asio::error::operation_aborted);
    }
}

TEST_CASE("call_fsm: a whole answer wins over the attempt's timer and a stop in the same turn", "[call_fsm]") {
    SECTION("timer") {
        harness h(false);
        h.to_attempt();
        REQUIRE(h.fsm().on_write());
        auto r = ok();
        r.timed_out = true;
        const auto a = h.fsm().on_attempt(r, h.now);
        CHECK(a.what == kind::complete);
        CHECK_FALSE(a.ec);
    }
    SECTION("deadline and close") {
        for (const auto why : {call_stop::deadline, call_stop::closed}) {
            harness h(false);
            h.to_attempt();
            REQUIRE(h.fsm().on_write());
            CHECK(h.fsm().stop(why) == call_interrupt::connection);
            const auto a = h.fsm().on_attempt(ok(), h.now);
            CHECK_FALSE(a.ec);
        }
    }
    SECTION("a failure the timer cut short is a timeout") {
        harness h(true);
        h.to_attempt();
        REQUIRE(h.fsm().on_write());
        const auto a = h.fsm().on_attempt({.ec = asio::error::operation_aborted, .timed_out = true}, h.now);
        CHECK(a.what == kind::backoff); // not written: retried
        CHECK(h.d.detail.find("timed out after 30000 ms") != std::string::npos);
    }
}

TEST_CASE("call_fsm: a cancellation that came while the request was on the wire stops every retry", "[call_fsm]") {
    SECTION("after a 429") {
        harness h(false);
        h.to_attempt();
        REQUIRE(h.fsm().on_write());
        CHECK(h.fsm().stop(call_stop::cancelled, ctype::partial) == call_interrupt::none); // not on the wire
        const auto a = h.fsm().on_attempt(answered(429), h.now);
        CHECK(a.what == kind::complete);
        CHECK(a.ec == asio::error::operation_aborted);
    }
    SECTION("before the immediate retry on a fresh connection") {
        harness h(false);
        h.to_attempt();
        REQUIRE(h.fsm().on_write());
        CHECK(h.fsm().stop(call_stop::cancelled, ctype::total) == call_interrupt::none);
        const auto a = h.fsm().on_attempt({.ec = asio::error::broken_pipe, .reused = true}, h.now);
        CHECK(a.ec == asio::error::operation_aborted);
    }
    SECTION("a read-only call whose answer was lost") {
        harness h(true);
        h.to_attempt();
        REQUIRE(h.fsm().on_write());
        CHECK(h.fsm().stop(call_stop::cancelled, ctype::partial) == call_interrupt::none);
        CHECK(h.fsm().on_attempt(lost_after_write(), h.now).ec == asio::error::operation_aborted);
    }
    SECTION("the answer that came is still the result") {
        harness h(false);
        h.to_attempt();
        REQUIRE(h.fsm().on_write());
        CHECK(h.fsm().stop(call_stop::cancelled, ctype::partial) == call_interrupt::none);
        CHECK_FALSE(h.fsm().on_attempt(ok(), h.now).ec);
    }
}

TEST_CASE("call_fsm: any cancellation type ends a call that has written nothing", "[call_fsm]") {
    for (const auto t : {ctype::terminal, ctype::partial, ctype::total}) {
        harness h(false);
        REQUIRE(h.fsm().start(h.now).what == kind::wait_grant);
        CHECK(h.fsm().stop(call_stop::cancelled, t) == call_interrupt::limiter_wait);
        CHECK(h.fsm().on_grant(asio::error::operation_aborted, h.now).ec == asio::error::operation_aborted);
    }
    harness h(false);
    h.to_attempt(); // connecting: nothing on the wire yet
    CHECK(h.fsm().stop(call_stop::cancelled, ctype::total) == call_interrupt::connection);
    CHECK_FALSE(h.fsm().on_write());
}

TEST_CASE("call_fsm: stopped after its request was written, a state-changing call's outcome is unknown", "[call_fsm]") {
    struct stop_case {
        call_stop why;
        ctype type;
        const char* detail;
    };
    for (const auto& c :
         {stop_case{call_stop::closed, ctype::terminal, "client closed after the request was written"},
          stop_case{call_stop::deadline, ctype::terminal, "call deadline passed after the request was written"},
          stop_case{call_stop::cancelled, ctype::terminal, "cancelled after the request was written"}}) {
        INFO(c.detail);
        harness h(false);
        h.to_attempt();
        REQUIRE(h.fsm().on_write());
        CHECK(h.fsm().stop(c.why, c.type) == call_interrupt::connection);
        const auto a = h.fsm().on_attempt({.ec = asio::error::operation_aborted, .written = true}, h.now);
        CHECK(a.ec == error::outcome_unknown);
        CHECK(h.d.detail == c.detail);

        // The same stop for a read-only call, or before the whole request left, is no unknown outcome.
        harness ro(true);
        ro.to_attempt();
        REQUIRE(ro.fsm().on_write());
        ro.fsm().stop(c.why, c.type);
        CHECK(ro.fsm().on_attempt({.ec = asio::error::operation_aborted, .written = true}, ro.now).ec !=
              error::outcome_unknown);
        harness half(false);
        half.to_attempt();
        REQUIRE(half.fsm().on_write());
        half.fsm().stop(c.why, c.type);
        CHECK(half.fsm().on_attempt({.ec = asio::error::operation_aborted, .written = false}, half.now).ec !=
              error::outcome_unknown);
    }
}

TEST_CASE("call_fsm: the first stop's reason is the one reported", "[call_fsm]") {
    harness h(true);
    REQUIRE(h.fsm().start(h.now).what == kind::wait_grant);
    CHECK(h.fsm().stop(call_stop::closed) == call_interrupt::limiter_wait);
    CHECK(h.fsm().stop(call_stop::deadline) == call_interrupt::none);
    CHECK(h.fsm().on_grant(asio::error::operation_aborted, h.now).ec == asio::error::operation_aborted);
    CHECK(h.fsm().stop(call_stop::deadline) == call_interrupt::none); // done: nothing left to interrupt
}

TEST_CASE("call_fsm: a state-changing request whose answer was lost or broken is never sent again", "[call_fsm]") {
    for (const auto& r :
         {lost_after_write(), answered(500), answered(503),
          attempt_report{.ec = callsavvy::http::make_error_code(callsavvy::http::error::bad_status_line),
          .written = true},
          attempt_report{.ec = callsavvy::make_error_code(error::attempt_timeout), .written = true}}) {
        harness h(false);
        h.to_attempt();
        REQUIRE(h.fsm().on_write());
        const auto a = h.fsm().on_attempt(r, h.now);
        CHECK(a.what == kind::complete);
        CHECK(a.ec == error::outcome_unknown);
        CHECK(h.d.detail.find("after the request was written") != std::string::npos);
    }
}

TEST_CASE("call_fsm: a read-only call is retried after a lost answer or a 5xx, up to max_attempts", "[call_fsm]") {
    harness h(true);
    auto a = h.to_attempt();
    for (int n = 1; n <= 3; ++n) {
        REQUIRE(h.fsm().on_write());
        a = h.fsm().on_attempt(n % 2 == 1 ? answered(503) : lost_after_write(), h.now);
        if (n < 3) {
            CHECK(a.what == kind::backoff);
            CHECK(a.delay <= 10ms * (1 << (n - 1)));
            a = h.next_attempt(a);
        }
    }
    CHECK(a.what == kind::complete);
    CHECK(a.ec == error::server_error);
    CHECK(h.d.attempts == 3);
}

TEST_CASE("call_fsm: a pooled connection that failed before the write is retried once, at once, on a fresh one",
          "[call_fsm]") {
    harness h(false);
    h.to_attempt();
    REQUIRE(h.fsm().on_write());
    auto a = h.fsm().on_attempt({.ec = asio::error::broken_pipe, .reused = true}, h.now);
    REQUIRE(a.what == kind::wait_grant); // no backoff, through the limiter again (the grant was given back)
    CHECK_FALSE(a.front);
    a = h.fsm().on_grant({}, h.now);
    REQUIRE(a.what == kind::acquire);
    CHECK(a.fresh);
    REQUIRE(h.fsm().on_connection({}, h.now).what == kind::attempt);
    REQUIRE(h.fsm().on_write());
    // The same failure again is an ordinary retry: backoff, from the budget.
    a = h.fsm().on_attempt({.ec = asio::error::broken_pipe, .reused = true}, h.now);
    CHECK(a.what == kind::backoff);
    CHECK(h.budget.available() == 495);
}

TEST_CASE("call_fsm: only a call that changes state has its pooled connection peeked at before the write",
          "[call_fsm]") {
    for (const bool read_only : {false, true}) {
        harness h(read_only, false);
        auto a = h.fsm().start(h.now);
        REQUIRE(a.what == kind::acquire);
        CHECK(a.probe == !read_only);
    }
}

TEST_CASE("call_fsm: a read-only call whose pooled connection ends before any answer byte is retried at once",
          "[call_fsm]") {
    harness h(true);
    h.to_attempt();
    REQUIRE(h.fsm().on_write());
    const auto closed = callsavvy::make_error_code(error::connection_closed);
    auto a = h.fsm().on_attempt({.ec = closed, .written = true, .reused = true}, h.now);
    REQUIRE(a.what == kind::wait_grant); // no backoff, nothing from the retry budget
    a = h.fsm().on_grant({}, h.now);
    REQUIRE(a.what == kind::acquire);
    CHECK(a.fresh);
    CHECK_FALSE(a.probe);
    CHECK(h.budget.available() == 500);
    REQUIRE(h.fsm().on_connection({}, h.now).what == kind::attempt);
    REQUIRE(h.fsm().on_write());
    // Once only: the same again is an ordinary retry with backoff.
    a = h.fsm().on_attempt({.ec = closed, .written = true, .reused = true}, h.now);
    CHECK(a.what == kind::backoff);
    // A call that changes state in the same situation never goes out again.
    harness w(false);
    w.to_attempt();
    REQUIRE(w.fsm().on_write());
    a = w.fsm().on_attempt({.ec = closed, .written = true, .reused = true}, w.now);
    CHECK(a.what == kind::complete);
    CHECK(a.ec == error::outcome_unknown);
}

TEST_CASE("call_fsm: a 429 pauses the endpoint and waits again at the front, not counted as an attempt", "[call_fsm]") {
    harness h(false);
    h.rules.retry.max_attempts = 1;
    h.to_attempt();
    REQUIRE(h.fsm().on_write());
    auto a = h.fsm().on_attempt(answered(429, 3s), h.now);
    REQUIRE(a.what == kind::wait_grant);
    CHECK(a.front);
    REQUIRE(a.pause);
    CHECK(*a.pause == 3000ms);
    a = h.next_attempt(a);
    REQUIRE(h.fsm().on_write());
    CHECK_FALSE(h.fsm().on_attempt(ok(), h.now).ec); // max_attempts 1 did not stop it
    CHECK(h.budget.available() == 500);              // 429 retries are free
    CHECK(h.fsm().rate_limited() == 1);
}

TEST_CASE("call_fsm: 429 retries are bounded", "[call_fsm]") {
    harness h(false);
    h.rules.retry.max_rate_limited_retries = 2;
    auto a = h.to_attempt();
    for (int n = 1;; ++n) {
        REQUIRE(h.fsm().on_write());
        a = h.fsm().on_attempt(answered(429, 1s), h.now);
        if (a.what == kind::complete) break;
        a = h.next_attempt(a);
    }
    CHECK(a.ec == error::too_many_requests);
    CHECK(h.d.detail == "still rate limited after 2 retries");
    CHECK(h.d.attempts == 3);
}

TEST_CASE("call_fsm: Retry-After is capped, and a pause beyond the deadline fails at once", "[call_fsm]") {
    SECTION("capped") {
        harness h(false);
        h.to_attempt();
        REQUIRE(h.fsm().on_write());
        const auto a = h.fsm().on_attempt(answered(429, std::chrono::seconds(999999999)), h.now);
        REQUIRE(a.what == kind::wait_grant);
        CHECK(*a.pause == 60s); // retry_options::max_retry_after
    }
    SECTION("beyond the deadline") {
        harness h(false, true, 30s);
        h.to_attempt();
        REQUIRE(h.fsm().on_write());
        const auto a = h.fsm().on_attempt(answered(429, std::chrono::seconds(999999999)), h.now);
        CHECK(a.what == kind::complete);
        CHECK(a.ec == error::too_many_requests);
        CHECK(h.d.detail ==
              "Retry-After 999999999 s (capped at 60 s) is longer than what is left of the call deadline");
        REQUIRE(a.pause); // the endpoint still pauses, for the other calls to it
        CHECK(*a.pause == 60s);
    }
    SECTION("a 503's Retry-After for a read-only call") {
        harness h(true, true, 5s);
        h.to_attempt();
        REQUIRE(h.fsm().on_write());
        const auto a = h.fsm().on_attempt(answered(503, 10s), h.now);
        CHECK(a.ec == error::server_error);
        CHECK(h.d.detail.find("Retry-After 10 s would pass the call deadline") != std::string::npos);
    }
    SECTION("without a limiter, the call itself waits out the pause") {
        harness h(false, false);
        h.to_attempt();
        REQUIRE(h.fsm().on_write());
        const auto a = h.fsm().on_attempt(answered(429, 2s), h.now);
        CHECK(a.what == kind::backoff);
        CHECK(a.delay == 2000ms);
    }
}

TEST_CASE("call_fsm: retries draw from the budget; a spent budget reports the failure at once", "[call_fsm]") {
    harness h(true);
    h.budget = callsavvy::retry_budget({.capacity = 5, .retry_cost = 5, .timeout_retry_cost = 10});
    h.to_attempt();
    REQUIRE(h.fsm().on_write());
    auto a = h.fsm().on_attempt(refused(), h.now);
    REQUIRE(a.what == kind::backoff);
    a = h.next_attempt(a);
    REQUIRE(h.fsm().on_write());
    a = h.fsm().on_attempt(refused(), h.now);
    CHECK(a.what == kind::complete);
    CHECK(a.ec == error::connect_failed);
    CHECK(h.d.detail == "retry budget spent");
}

TEST_CASE("call_fsm: after repeated 401s the breaker refuses before sending, and after a limiter wait", "[call_fsm]") {
    harness h(false);
    for (int i = 0; i < 3; ++i) {
        harness one(false);
        one.breaker = h.breaker;
        one.to_attempt();
        REQUIRE(one.fsm().on_write());
        CHECK(one.fsm().on_attempt(answered(401), one.now).ec == error::unauthorized);
        h.breaker = one.breaker;
    }
    auto a = h.fsm().start(h.now);
    CHECK(a.what == kind::complete);
    CHECK(a.ec == error::unauthorized);
    CHECK(h.d.detail.find("not sent") != std::string::npos);

    // Parked while the breaker opened: looked at again before anything is sent.
    harness parked(false);
    REQUIRE(parked.fsm().start(parked.now).what == kind::wait_grant);
    parked.breaker = h.breaker;
    a = parked.fsm().on_grant({}, parked.now);
    CHECK(a.ec == error::unauthorized);
    CHECK(parked.d.attempts == 0);
}

TEST_CASE("call_fsm: deterministic failures are reported, never retried", "[call_fsm]") {
    for (const auto e : {error::tls_certificate_untrusted, error::tls_hostname_mismatch, error::invalid_options}) {
        harness h(true);
        h.to_attempt();
        const auto a = h.fsm().on_attempt({.ec = callsavvy::make_error_code(e)}, h.now);
        CHECK(a.what == kind::complete);
        CHECK(a.ec == e);
    }
    harness h(false);
    h.to_attempt();
    REQUIRE(h.fsm().on_write());
    CHECK(h.fsm().on_attempt(answered(400), h.now).ec == error::bad_request);
}
