// The client's rate limiting against the mock server with short windows: a batch that saturates both
// limits gets no 429; with slots used up by "another process" the 429s that follow are retried and every
// call still completes exactly once (the mock's journal proves it); a state-changing call whose connection
// drops after writing reports outcome_unknown and reached the server once. With the per-endpoint limit the
// binding one, every window is filled to exactly that limit. A call parked in the limiter ends at its
// deadline, or at once beyond max_waiters, unsent; the observer sees limiter waits and retried 429s.
#include <callsavvy/client.hpp>
#include <callsavvy/testing/mock_server.hpp>

#include "support/run.hpp"

#include "support/asio.hpp"
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;
namespace api = callsavvy::api;
namespace testing = callsavvy::testing;

namespace {

constexpr std::size_t per_endpoint = 5;
constexpr std::size_t global = 8;
constexpr auto window = 400ms;

testing::mock_options mock_with_limits(testing::window_mode mode) {
    testing::mock_options o;
    o.rate_limits.per_endpoint = per_endpoint;
    o.rate_limits.global = global;
    o.rate_limits.window = window;
    o.rate_limits.mode = mode;
    return o;
}

callsavvy::client_options client_for(const testing::mock_server& m, const std::string& public_key) {
    callsavvy::client_options o;
    o.keys = {public_key, testing::sandbox_key().private_key};
    o.base_url = m.base_url();
    o.rate_limits.per_endpoint = {per_endpoint, window};
    o.rate_limits.global = {global, window};
    o.rate_limits.safety_margin = 100ms; // loopback latency and a loaded CI machine
    o.rate_limits.backoff = {50ms, 400ms};
    o.retry.backoff_base = 1ms;
    o.proxy.from_environment = false;
    o.call_deadline = 60s;
    return o;
}

// Creates `n` leads spread over three endpoints, all at once; returns the errors seen.
void run_batch(asio::io_context& io, callsavvy::client& c, int n, std::map<std::string, int>& failures) {
    int done = 0;
    for (int i = 0; i < n; ++i) {
        const std::string tag = "batch-" + std::to_string(i);
        auto count = [&, tag](callsavvy::error_code ec) {
            if (ec) ++failures[ec.message()];
            ++done;
        };
        switch (i % 3) {
        case 0:
            c.async_create_lead({.name = tag, .phone = "+1"}, [count](callsavvy::error_code ec, auto) { count(ec); });
            break;
        case 1:
            c.async_create_contact({.phone = "+2", .first_name = tag},
                                   [count](callsavvy::error_code ec, auto) { count(ec); });
            break;
        default:
            c.async_send_sms({.recipients = {"+3"}, .message = tag},
                             [count](callsavvy::error_code ec, auto) { count(ec); });
            break;
        }
    }
    cstest::run_until(
        io, [&] { return done == n; }, 60s, "the batch to complete");
}

// Every batch body reached the server with a 200 exactly once.
void check_each_call_once(const testing::mock_server& m, int n) {
    std::map<std::string, int> ok;
    for (const auto& e : m.journal()) {
        if (e.status != 200) continue;
        const auto at = e.body.find("batch-");
        REQUIRE(at != std::string::npos);
        ok[e.body.substr(at, e.body.find('"', at) - at)]++;
    }
    CHECK(ok.size() == static_cast<std::size_t>(n));
    for (const auto& [tag, times] : ok) {
        INFO(tag);
        CHECK(times == 1);
    }
}

std::size_t statuses(const testing::mock_server& m, int status) {
    std::size_t k = 0;
    for (const auto& e : m.journal()) k += e.status == status ? 1 : 0;
    return k;
}

} // namespace

TEST_CASE("a batch saturating both limits gets no 429, in fixed and sliding windows", "[limiter][mock]") {
    for (const auto mode : {testing::window_mode::fixed, testing::window_mode::sliding}) {
        DYNAMIC_SECTION((mode == testing::window_mode::fixed ? "fixed" : "sliding") << " windows") {
            asio::io_context io;
            testing::mock_server m(io.get_executor(), mock_with_limits(mode));
            callsavvy::client c(io.get_executor(), client_for(m, testing::sandbox_key().public_key));
            std::map<std::string, int> failures;
            constexpr int n = 30;
            run_batch(io, c, n, failures);
            CHECK(failures.empty());
            CHECK(statuses(m, 429) == 0);
            CHECK(m.journal().size() == static_cast<std::size_t>(n));
            check_each_call_once(m, n);
            c.close();
            m.stop();
        }
    }
}

TEST_CASE("slots used by another process: 429s are retried and every call completes exactly once", "[limiter][mock]") {
    asio::io_context io;
    testing::mock_server m(io.get_executor(), mock_with_limits(testing::window_mode::sliding));
    callsavvy::client c(io.get_executor(), client_for(m, testing::sandbox_key().public_key));
    // The other process used the whole global allowance and the leads endpoint's just now.
    m.consume(testing::sandbox_key().public_key, "createLead", per_endpoint);
    m.consume(testing::sandbox_key().public_key, "sendSms", global - per_endpoint);
    std::map<std::string, int> failures;
    constexpr int n = 18;
    run_batch(io, c, n, failures);
    CHECK(failures.empty());
    CHECK(statuses(m, 429) > 0); // the limiter could not know about the other process
    check_each_call_once(m, n);
    c.close();
    m.stop();
}

TEST_CASE("a state-changing call whose connection drops after writing: outcome_unknown, sent once", "[limiter][mock]") {
    asio::io_context io;
    testing::mock_server m(io.get_executor());
    testing::fault f;
    f.what = testing::fault::kind::close_after_reading;
    f.resource = "createLead";
    m.inject(f);
    auto o = client_for(m, testing::sandbox_key().public_key);
    callsavvy::client c(io.get_executor(), o);
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        api::create_lead_request req{.name = "once", .phone = "+1"};
        callsavvy::diagnostics d;
        auto [ec, lead] =
            co_await c.async_create_lead(std::move(req), d, asio::experimental::as_tuple(asio::use_awaitable));
        CHECK(ec == callsavvy::error::outcome_unknown);
        // A read-only call in the same situation is simply retried.
        testing::fault g;
        g.what = testing::fault::kind::close_after_reading;
        g.resource = "listLeads";
        m.inject(g);
        api::list_leads_request lr{};
        auto [ec2, leads] =
            co_await c.async_list_leads(std::move(lr), asio::experimental::as_tuple(asio::use_awaitable));
        CHECK_FALSE(ec2);
        c.close();
        m.stop();
    });
    CHECK(m.count("createLead") == 1);
    CHECK(m.count("listLeads") == 2);
}

namespace {

// A key of its own per test: the process shares one limiter per public key, set up by the first client.
std::string register_key(testing::mock_server& m, std::string public_key) {
    m.add_key({public_key, testing::sandbox_key().private_key});
    return public_key;
}

// The arrival times of the answered requests to `resource`, in arrival order.
std::vector<std::chrono::steady_clock::time_point> arrivals(const testing::mock_server& m,
                                                            std::string_view resource = {}) {
    std::vector<std::chrono::steady_clock::time_point> out;
    for (const auto& e : m.journal())
        if (resource.empty() || e.resource == resource) out.push_back(e.time);
    return out;
}

// The most arrivals within any span of `w` (each span starting at an arrival: where a maximum starts).
std::size_t most_in_any_window(const std::vector<std::chrono::steady_clock::time_point>& t,
                               std::chrono::milliseconds w) {
    std::size_t best = 0;
    for (std::size_t i = 0; i < t.size(); ++i) {
        std::size_t n = 0;
        for (std::size_t j = i; j < t.size() && t[j] < t[i] + w; ++j) ++n;
        best = std::max(best, n);
    }
    return best;
}

template <class Duration>
long long ms(Duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

} // namespace

TEST_CASE("a batch saturating the per-endpoint limit fills each window to that limit, with no 429", "[limiter][mock]") {
    // The per-endpoint limit is the one that binds: two endpoints at their limit together stay under the
    // global one, so each endpoint must get exactly `endpoint_limit` requests per window, in parallel.
    constexpr std::size_t endpoint_limit = 3;
    constexpr std::size_t global_limit = 10;
    constexpr int rounds = 3; // windows' worth of requests per endpoint
    constexpr auto margin = 100ms;
    constexpr auto slack = 150ms; // timer and scheduling delays on a loaded machine
    const char* const resources[] = {"createLead", "createContact"};
    for (const auto mode : {testing::window_mode::fixed, testing::window_mode::sliding}) {
        DYNAMIC_SECTION((mode == testing::window_mode::fixed ? "fixed" : "sliding") << " windows") {
            asio::io_context io;
            auto mo = mock_with_limits(mode);
            mo.rate_limits.per_endpoint = endpoint_limit;
            mo.rate_limits.global = global_limit;
            testing::mock_server m(io.get_executor(), mo);
            const std::string key = register_key(m, mode == testing::window_mode::fixed ? "TEST-per-endpoint-fixed"
                                                                                        : "TEST-per-endpoint-sliding");
            auto o = client_for(m, key);
            o.rate_limits.per_endpoint = {endpoint_limit, window};
            o.rate_limits.global = {global_limit, window};
            o.rate_limits.safety_margin = margin;
            callsavvy::client c(io.get_executor(), o);
            constexpr int n = 2 * static_cast<int>(endpoint_limit) * rounds;
            std::map<std::string, int> failures;
            int done = 0;
            for (int i = 0; i < n; ++i) {
                const std::string tag = "batch-" + std::to_string(i);
                auto count = [&](callsavvy::error_code ec, auto) {
                    if (ec) ++failures[ec.message()];
                    ++done;
                };
                if (i % 2 == 0) c.async_create_lead({.name = tag, .phone = "+1"}, count);
                else
                    c.async_create_contact({.phone = "+2", .first_name = tag}, count);
            }
            cstest::run_until(
                io, [&] { return done == n; }, 30s, "the batch to complete");
            CHECK(failures.empty());
            CHECK(statuses(m, 429) == 0);
            CHECK(m.journal().size() == static_cast<std::size_t>(n));
            check_each_call_once(m, n);
            for (const char* resource : resources) {
                INFO(resource);
                const auto t = arrivals(m, resource);
                REQUIRE(t.size() == endpoint_limit * rounds);
                // Never more than the limit in a window, and the limit reached: every slot was used.
                CHECK(most_in_any_window(t, window) == endpoint_limit);
                // Request j + limit went as soon as request j's slot freed: not before the window passed,
                // and not much later than the window plus the client's margin (no slot left idle).
                for (std::size_t j = endpoint_limit; j < t.size(); ++j) {
                    INFO("request " << j << ": " << ms(t[j] - t[j - endpoint_limit]) << " ms after request "
                                    << j - endpoint_limit);
                    CHECK(t[j] - t[j - endpoint_limit] >= window);
                    CHECK(t[j] - t[j - endpoint_limit] <= window + margin + slack);
                }
            }
            // Both endpoints used their windows at the same time: neither waited for the other.
            CHECK(most_in_any_window(arrivals(m), window) == 2 * endpoint_limit);
            c.close();
            m.stop();
        }
    }
}

TEST_CASE("a call whose deadline passes while it is parked in the rate limiter: deadline_exceeded, never sent",
          "[limiter][mock]") {
    asio::io_context io;
    testing::mock_server m(io.get_executor());
    const std::string key = register_key(m, "TEST-deadline-in-limiter");
    auto o = client_for(m, key);
    o.rate_limits.per_endpoint = {1, 10s}; // the second call would wait ten seconds for its slot
    o.call_deadline = 200ms;
    int attempts_seen = 0;
    o.observer = [&](const callsavvy::call_event&) { ++attempts_seen; };
    callsavvy::client c(io.get_executor(), o);
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        // Requests are named first: g++ 12 mishandles braced temporaries inside a co_await expression.
        api::create_lead_request first{.name = "first", .phone = "+1"};
        auto [ec1, lead] =
            co_await c.async_create_lead(std::move(first), asio::experimental::as_tuple(asio::use_awaitable));
        CHECK_FALSE(ec1);
        const auto start = std::chrono::steady_clock::now();
        callsavvy::diagnostics d;
        api::create_lead_request second{.name = "second", .phone = "+1"};
        auto [ec, lead2] =
            co_await c.async_create_lead(std::move(second), d, asio::experimental::as_tuple(asio::use_awaitable));
        const auto took = std::chrono::steady_clock::now() - start;
        INFO("ended after " << ms(took) << " ms");
        CHECK(ec == callsavvy::error::deadline_exceeded);
        CHECK(ec == callsavvy::condition::timeout);
        CHECK(took >= 190ms);
        CHECK(took < 2s);
        CHECK(d.attempts == 0); // it never left the limiter
        CHECK(d.detail.find("200 ms") != std::string::npos);
        CHECK(c.limiter()->stats("createLead").queued == 0); // and it left the limiter's queue
        c.close();
    });
    CHECK(attempts_seen == 1);
    CHECK(m.count("createLead") == 1);
}

TEST_CASE("beyond rate_limits.max_waiters a call fails at once with queue_full and is never sent", "[limiter][mock]") {
    asio::io_context io;
    testing::mock_server m(io.get_executor());
    const std::string key = register_key(m, "TEST-queue-full");
    auto o = client_for(m, key);
    o.rate_limits.per_endpoint = {1, 10s};
    o.rate_limits.max_waiters = 2;
    callsavvy::client c(io.get_executor(), o);
    std::vector<callsavvy::error_code> parked_results;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        const api::list_leads_request all{}; // named: g++ 12 mishandles braced temporaries inside co_await
        co_await c.async_list_leads(all);    // takes the endpoint's one slot for ten seconds
        for (int i = 0; i < 2; ++i)
            c.async_list_leads({}, [&](callsavvy::error_code ec, auto) { parked_results.push_back(ec); });
        asio::steady_timer settle(ex, 20ms);
        co_await settle.async_wait(asio::use_awaitable);
        REQUIRE(c.limiter()->stats("listLeads").queued == 2);
        const auto start = std::chrono::steady_clock::now();
        callsavvy::diagnostics d;
        auto [ec, leads] = co_await c.async_list_leads(all, d, asio::experimental::as_tuple(asio::use_awaitable));
        CHECK(std::chrono::steady_clock::now() - start < 100ms);
        CHECK(ec == callsavvy::error::queue_full);
        CHECK(ec == callsavvy::condition::rate_limited);
        CHECK(d.attempts == 0);
        try {
            co_await c.async_list_leads(all);
            FAIL("no exception");
        } catch (const callsavvy::api_error& e) {
            CHECK(e.code() == callsavvy::error::queue_full);
        }
        CHECK(c.limiter()->stats("listLeads").queued == 2); // the refused calls took no place in the queue
        CHECK(parked_results.empty());
        c.close();
        asio::steady_timer after(ex, 20ms);
        co_await after.async_wait(asio::use_awaitable);
        CHECK(parked_results.size() == 2);
        for (const auto& pec : parked_results) CHECK(pec == asio::error::operation_aborted);
    });
    CHECK(m.count("listLeads") == 1);
}

TEST_CASE("the observer sees the time a call waited in the limiter, a 429 that will be retried, then the success",
          "[limiter][mock]") {
    constexpr auto w = 300ms;
    asio::io_context io;
    testing::mock_options mo;
    mo.rate_limits.per_endpoint = 2;
    mo.rate_limits.global = 10;
    mo.rate_limits.window = w;
    mo.rate_limits.mode = testing::window_mode::sliding;
    mo.rate_limits.send_retry_after = false; // the limiter's own backoff decides: short, unlike whole seconds
    testing::mock_server m(io.get_executor(), mo);
    const std::string key = register_key(m, "TEST-observer-limiter");
    auto o = client_for(m, key);
    o.rate_limits.per_endpoint = {2, w};
    o.rate_limits.global = {10, w};
    o.rate_limits.safety_margin = 50ms;
    o.rate_limits.backoff = {50ms, 200ms};
    o.rate_limits.jitter_seed = 3;
    std::vector<callsavvy::call_event> events;
    o.observer = [&](const callsavvy::call_event& e) { events.push_back(e); };
    callsavvy::client c(io.get_executor(), o);
    callsavvy::diagnostics d;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        // Three calls at once where two fit a window: the third waits in the limiter for the next one.
        int done = 0;
        for (int i = 0; i < 3; ++i) c.async_get_summary({}, [&](callsavvy::error_code, auto) { ++done; });
        while (done < 3) {
            asio::steady_timer t(co_await asio::this_coro::executor, 10ms);
            co_await t.async_wait(asio::use_awaitable);
        }
        // Another process used the endpoint's whole allowance: the limiter cannot know, the server says 429.
        m.consume(key, "listLeads", 2);
        const api::list_leads_request all{}; // named: g++ 12 mishandles braced temporaries inside co_await
        co_await c.async_list_leads(all, d);
        c.close();
    });

    std::vector<callsavvy::call_event> summary, leads;
    for (const auto& e : events) (e.resource == "getSummary" ? summary : leads).push_back(e);
    REQUIRE(summary.size() == 3);
    std::sort(summary.begin(), summary.end(),
              [](const auto& a, const auto& b) { return a.limiter_wait < b.limiter_wait; });
    for (const auto& e : summary) {
        CHECK(e.http_status == 200);
        CHECK_FALSE(e.will_retry);
    }
    INFO("limiter waits: " << ms(summary[0].limiter_wait) << ", " << ms(summary[1].limiter_wait) << ", "
                           << ms(summary[2].limiter_wait) << " ms");
    CHECK(summary[1].limiter_wait < 100ms); // the two that fitted went at once ...
    CHECK(summary[2].limiter_wait >= w);    // ... the third waited for the window to pass

    REQUIRE(leads.size() >= 2);
    CHECK(leads.front().http_status == 429);
    CHECK(leads.front().ec == callsavvy::error::too_many_requests);
    CHECK(leads.front().attempt == 1);
    for (std::size_t i = 0; i + 1 < leads.size(); ++i) {
        INFO("attempt " << leads[i].attempt);
        CHECK(leads[i].http_status == 429);
        CHECK(leads[i].will_retry);
        CHECK(leads[i + 1].attempt == leads[i].attempt + 1);
    }
    // The server admits the call only once the other process's requests leave its window: the retries spent
    // that time parked in the limiter (paused after each 429), not in attempts.
    std::chrono::steady_clock::duration retry_waits{};
    for (std::size_t i = 1; i < leads.size(); ++i) retry_waits += leads[i].limiter_wait;
    INFO("the retries waited " << ms(retry_waits) << " ms in the limiter");
    CHECK(retry_waits >= w - 50ms);
    CHECK(leads.back().http_status == 200);
    CHECK_FALSE(leads.back().ec);
    CHECK_FALSE(leads.back().will_retry);
    CHECK(d.attempts == static_cast<int>(leads.size()));
    // The journal agrees: as many 429s as the observer saw, then one success.
    std::size_t rejected = 0, ok = 0;
    for (const auto& e : m.journal()) {
        if (e.resource != "listLeads") continue;
        rejected += e.status == 429 ? 1 : 0;
        ok += e.status == 200 ? 1 : 0;
    }
    CHECK(rejected == leads.size() - 1);
    CHECK(ok == 1);
    CHECK(statuses(m, 429) == rejected); // the getSummary batch got none
}
