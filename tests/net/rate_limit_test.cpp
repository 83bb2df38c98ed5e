// The client's rate limiting against the mock server with short windows: a batch that saturates both
// limits gets no 429; with slots used up by "another process" the 429s that follow are retried and every
// call still completes exactly once (the mock's journal proves it); a state-changing call whose connection
// drops after writing reports outcome_unknown and reached the server once.
#include <callsavvy/client.hpp>
#include <callsavvy/testing/mock_server.hpp>

#include "support/run.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <set>
#include <string>

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
