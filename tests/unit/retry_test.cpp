// The pure retry pieces: the retry-safety rules (spec §2), Retry-After, full-jitter backoff bounds, the retry budget
// (AWS SDK "standard" mode: 500 tokens, 5 per retry, 10 after a timeout, 1 back per success) and the 401/403 breaker
// with its cool-down.
#include <callsavvy/http/error.hpp>
#include <callsavvy/retry.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <random>
#include <string_view>

using namespace std::chrono_literals;
using callsavvy::auth_breaker;
using callsavvy::backoff_options;
using callsavvy::decide_retry;
using callsavvy::error;
using callsavvy::retry_budget;
using callsavvy::retry_decision;

TEST_CASE("backoff: full jitter within min(cap, base * 2^(attempt-1))", "[retry]") {
    const backoff_options o{100ms, 1000ms};
    CHECK(callsavvy::backoff_ceiling(o, 1) == 100ms);
    CHECK(callsavvy::backoff_ceiling(o, 2) == 200ms);
    CHECK(callsavvy::backoff_ceiling(o, 4) == 800ms);
    CHECK(callsavvy::backoff_ceiling(o, 5) == 1000ms);
    CHECK(callsavvy::backoff_ceiling(o, 500) == 1000ms); // no overflow for absurd attempts
    CHECK(callsavvy::backoff_ceiling(o, 0) == 100ms);
    CHECK(callsavvy::backoff_ceiling({0ms, 1000ms}, 3) == 0ms);
    CHECK(callsavvy::backoff_ceiling({std::chrono::milliseconds::max(), 5000ms}, 40) == 5000ms);
    std::mt19937 rng(7);
    for (int attempt = 1; attempt <= 8; ++attempt) {
        std::int64_t lo = 1 << 30, hi = -1;
        for (int i = 0; i < 500; ++i) {
            const auto d = callsavvy::full_jitter_backoff(o, attempt, rng).count();
            lo = std::min(lo, d);
            hi = std::max(hi, d);
        }
        const auto ceiling = callsavvy::backoff_ceiling(o, attempt).count();
        INFO("attempt " << attempt);
        CHECK(lo >= 0);
        CHECK(hi <= ceiling);
        CHECK(lo < ceiling / 10); // the whole range is used, down to (nearly) zero
        CHECK(hi > ceiling * 9 / 10);
    }
}

TEST_CASE("retry budget: retries stop when the tokens run out and successes bring them back", "[retry]") {
    retry_budget b; // 500 tokens, 5 per retry, 10 after a timeout, 1 per success
    CHECK(b.available() == 500);
    int retries = 0;
    while (b.try_spend() != 0) ++retries;
    CHECK(retries == 100); // an outage: a hundred retries, then failures are reported at once
    CHECK(b.available() == 0);
    CHECK(b.try_spend() == 0);
    for (int i = 0; i < 4; ++i) b.on_success();
    CHECK(b.try_spend() == 0); // 4 tokens: still short of one retry
    b.on_success();
    CHECK(b.try_spend() == 5);
    CHECK(b.available() == 0);

    SECTION("a call that succeeds after retrying gives back what its retries took") {
        retry_budget c;
        const auto spent = c.try_spend() + c.try_spend(true);
        CHECK(spent == 15);
        CHECK(c.available() == 485);
        c.on_success(spent);
        CHECK(c.available() == 500);
        c.on_success();
        CHECK(c.available() == 500); // never above capacity
    }
    SECTION("timeouts cost more") {
        retry_budget c({.capacity = 20, .retry_cost = 5, .timeout_retry_cost = 10, .success_refund = 1});
        CHECK(c.try_spend(true) == 10);
        CHECK(c.try_spend(true) == 10);
        CHECK(c.try_spend(true) == 0);
        CHECK(c.try_spend() == 0);
    }
}

TEST_CASE("auth breaker: opens after repeated 401/403, half-opens after the cool-down", "[retry]") {
    auth_breaker br({.threshold = 3, .cool_down = 30s});
    const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
    CHECK(br.allow(t0));
    br.on_answer(true, t0);
    br.on_answer(true, t0);
    CHECK(br.allow(t0));
    br.on_answer(false, t0); // a success in between: the count starts over
    CHECK(br.consecutive_failures() == 0);
    br.on_answer(true, t0);
    br.on_answer(true, t0);
    CHECK(br.allow(t0));
    br.on_answer(true, t0 + 1s); // the third in a row
    CHECK(br.current(t0 + 1s) == auth_breaker::state::open);
    CHECK_FALSE(br.allow(t0 + 1s));
    CHECK_FALSE(br.allow(t0 + 30s));
    CHECK(br.open_until() == t0 + 31s);

    SECTION("one more auth failure after the cool-down opens it again at once") {
        CHECK(br.allow(t0 + 31s));
        CHECK(br.current(t0 + 31s) == auth_breaker::state::half_open);
        br.on_answer(true, t0 + 32s);
        CHECK_FALSE(br.allow(t0 + 32s));
        CHECK(br.open_until() == t0 + 62s);
    }
    SECTION("a success after the cool-down closes it") {
        CHECK(br.allow(t0 + 31s));
        br.on_answer(false, t0 + 32s);
        CHECK(br.current(t0 + 32s) == auth_breaker::state::closed);
        br.on_answer(true, t0 + 33s);
        CHECK(br.allow(t0 + 33s)); // one failure is below the threshold again
    }
}

TEST_CASE("retry rules: only what provably was not processed, or is read-only, is sent again", "[retry]") {
    const callsavvy::error_code refused = callsavvy::make_error_code(error::connect_failed);
    const callsavvy::error_code lost = callsavvy::make_error_code(error::connection_closed);
    const callsavvy::error_code timeout = callsavvy::make_error_code(error::attempt_timeout);
    // Nothing written: retried with backoff, whatever the endpoint.
    CHECK(decide_retry(refused, 0, false, false, false, false, 1, 3) == retry_decision::retry);
    CHECK(decide_retry(refused, 0, false, false, false, false, 3, 3) == retry_decision::fail);
    CHECK(decide_retry(timeout, 0, false, false, false, false, 1, 3) == retry_decision::retry);
    // A reused connection that failed before the request was written: once at once on a fresh connection.
    CHECK(decide_retry(asio::error::broken_pipe, 0, false, false, true, false, 1, 3) == retry_decision::retry_now);
    CHECK(decide_retry(asio::error::broken_pipe, 0, false, false, true, true, 1, 3) == retry_decision::retry);
    // Written and lost: read-only endpoints retry, the others report outcome_unknown.
    CHECK(decide_retry(lost, 0, true, true, false, false, 1, 3) == retry_decision::retry);
    CHECK(decide_retry(lost, 0, true, false, false, false, 1, 3) == retry_decision::outcome_unknown);
    CHECK(decide_retry(timeout, 0, true, false, false, false, 1, 3) == retry_decision::outcome_unknown);
    // A read-only call written on a pooled connection (not peeked at first) that ends before any byte of an
    // answer: the stale socket, once at once on a fresh connection. Never for a call that changes state, never
    // once an answer started, never for a timeout, never twice.
    CHECK(decide_retry(lost, 0, true, true, true, false, 1, 3, false) == retry_decision::retry_now);
    CHECK(decide_retry(asio::error::connection_reset, 0, true, true, true, false, 3, 3, false) ==
          retry_decision::retry_now);
    CHECK(decide_retry(lost, 0, true, false, true, false, 1, 3, false) == retry_decision::outcome_unknown);
    CHECK(decide_retry(lost, 0, true, true, true, false, 1, 3, true) == retry_decision::retry);
    CHECK(decide_retry(lost, 0, true, true, true, false, 1, 3) == retry_decision::retry); // unknown: started
    CHECK(decide_retry(timeout, 0, true, true, true, false, 1, 3, false) == retry_decision::retry);
    CHECK(decide_retry(lost, 0, true, true, false, false, 1, 3, false) == retry_decision::retry);
    CHECK(decide_retry(lost, 0, true, true, true, true, 3, 3, false) == retry_decision::fail);
    CHECK(decide_retry(lost, 0, true, false, false, false, 3, 3) == retry_decision::outcome_unknown);
    // Answers: 429 always retried (the call bounds those retries itself); 5xx retried for read-only
    // endpoints and an unknown outcome for the others; other statuses never retried.
    const auto rate = callsavvy::make_error_code(error::too_many_requests);
    const auto server = callsavvy::make_error_code(error::server_error);
    CHECK(decide_retry(rate, 429, true, false, false, false, 1, 3) == retry_decision::retry);
    CHECK(decide_retry(rate, 429, true, false, false, false, 3, 3) == retry_decision::retry);
    CHECK(decide_retry(server, 503, true, true, false, false, 1, 3) == retry_decision::retry);
    CHECK(decide_retry(server, 503, true, true, false, false, 3, 3) == retry_decision::fail);
    CHECK(decide_retry(server, 503, true, false, false, false, 1, 3) == retry_decision::outcome_unknown);
    // A broken answer after the write: never re-sent; for a call that changes state, an unknown outcome.
    const auto broken = callsavvy::http::make_error_code(callsavvy::http::error::bad_status_line);
    CHECK(decide_retry(broken, 0, true, true, false, false, 1, 3) == retry_decision::fail);
    CHECK(decide_retry(broken, 0, true, false, false, false, 1, 3) == retry_decision::outcome_unknown);
    CHECK(decide_retry(callsavvy::make_error_code(error::unauthorized), 401, true, true, false, false, 1, 3) ==
          retry_decision::fail);
    // Deterministic failures and cancellation are never retried.
    CHECK(decide_retry(callsavvy::make_error_code(error::tls_hostname_mismatch), 0, false, true, false, false, 1, 3) ==
          retry_decision::fail);
    CHECK(decide_retry(callsavvy::http::error::bad_status_line, 0, true, true, false, false, 1, 3) ==
          retry_decision::fail);
    CHECK(decide_retry(asio::error::operation_aborted, 0, false, true, false, false, 1, 3) == retry_decision::fail);
}

TEST_CASE("Retry-After is whole seconds", "[retry]") {
    using callsavvy::parse_retry_after;
    CHECK(parse_retry_after(std::string_view("3")) == std::chrono::seconds(3));
    CHECK(parse_retry_after(std::string_view("0")) == std::chrono::seconds(0));
    CHECK_FALSE(parse_retry_after(std::string_view("-1")));
    CHECK_FALSE(parse_retry_after(std::string_view("Wed, 21 Oct 2015 07:28:00 GMT")));
    CHECK_FALSE(parse_retry_after(std::nullopt));
    CHECK(parse_retry_after(std::string_view("999999999")) == std::chrono::seconds(999999999)); // the caller caps it
    CHECK_FALSE(parse_retry_after(std::string_view("1000000000")));
}
