// testing/mock_server.hpp: the mock Callsavvy server through a raw HTTP path (a plain socket writing request
// bytes, responses read with callsavvy's parser) and through the client: every status of spec §1 with its
// envelope and message, the Content-Type rule, both rate-limit modes (checked against a replay of the
// documented rule over the journal, whose times are the ones the limiter used), every fault (and that the
// server's stop() ends the waiting ones), the journal and its bound.
#include <callsavvy/client.hpp>
#include <callsavvy/testing/mock_server.hpp>

#include "support/mock_client.hpp"
#include "support/pki.hpp"
#include "support/raw_http.hpp"
#include "support/run.hpp"

#include "support/asio.hpp"
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;
namespace api = callsavvy::api;
namespace http = callsavvy::http;
namespace mock = callsavvy::testing;
namespace json = boost::json;
using callsavvy::error_code;
using clock_type = std::chrono::steady_clock;

namespace {

using namespace cstest::raw; // NOLINT(google-build-using-namespace): the raw HTTP helpers

callsavvy::client_options client_opts(const mock::mock_server& m) {
    callsavvy::client_options o = cstest::mock_client_options(m);
    o.retry.max_attempts = 1; // the tests see what the mock did, not what the retries made of it
    o.tls.ca_file = cstest::test_pki().ca_file.string();
    o.jitter_seed = 3;
    return o;
}

mock::mock_options no_limits() {
    mock::mock_options o;
    o.rate_limits.enabled = false;
    return o;
}

// ---------------------------------------------------------------------------------------------------------
// The documented rate-limit rule, replayed over a journal

struct limits_model {
    mock::window_mode mode;
    std::chrono::milliseconds window;
    std::size_t per_endpoint;
    std::size_t global;
};

/// Replays a journal (one key; answers 200 and 429 only) against the rule: a request is refused exactly when
/// its endpoint already had `per_endpoint` admitted requests, or the key `global`, in its window (sliding:
/// the span (t - window, t]; fixed: the same multiple of the window since `epoch`). Returns the index of
/// the first entry answered otherwise, or -1 when the rule explains every answer.
long first_unexplained(const std::deque<mock::journal_entry>& j, const limits_model& m, clock_type::time_point epoch) {
    std::vector<std::size_t> admitted;
    for (std::size_t i = 0; i < j.size(); ++i) {
        const auto& e = j[i];
        std::size_t endpoint = 0, global = 0;
        for (const std::size_t k : admitted) {
            const auto t = j[k].time;
            const bool counts = m.mode == mock::window_mode::sliding
                                    ? t > e.time - m.window
                                    : (t - epoch) / m.window == (e.time - epoch) / m.window;
            if (!counts) continue;
            ++global;
            if (j[k].resource == e.resource) ++endpoint;
        }
        const bool full = endpoint >= m.per_endpoint || global >= m.global;
        if ((e.status == 429) != full || (e.status != 429 && e.status != 200)) return static_cast<long>(i);
        if (!full) admitted.push_back(i);
    }
    return -1;
}

/// Fixed windows start at the mock's construction, somewhere in [before, after]: the rule must explain the
/// journal for one epoch in that span. Only the epochs that put some request exactly on a boundary (or just
/// past it) change which window a request falls in, so those and the span's ends are all the candidates.
bool explained_by_fixed_windows(const std::deque<mock::journal_entry>& j, const limits_model& m,
                                clock_type::time_point before, clock_type::time_point after) {
    std::vector<clock_type::time_point> candidates{before, after};
    for (const auto& e : j) {
        for (auto k = (e.time - after) / m.window; k <= (e.time - before) / m.window + 1; ++k) {
            const clock_type::time_point b = e.time - k * m.window;
            if (b >= before && b <= after) {
                candidates.push_back(b);
                candidates.push_back(b + 1ns);
            }
        }
    }
    return std::any_of(candidates.begin(), candidates.end(), [&](clock_type::time_point epoch) {
        return epoch <= after && first_unexplained(j, m, epoch) < 0;
    });
}

} // namespace

// =========================================================================================================
// Statuses of spec §1, raw

TEST_CASE("mock raw: 200 answers with the success envelope", "[mock]") {
    asio::io_context io;
    mock::mock_server m(io.get_executor());
    raw_reply r;
    cstest::run_test(io,
                     [&]() -> asio::awaitable<void> { r = co_await roundtrip(m.port(), post("getSummary", "{}")); });
    REQUIRE_FALSE(r.ec);
    CHECK(r.res.status == 200);
    CHECK(header(r, "Content-Type") == "application/json");
    CHECK(header(r, "Content-Length") == std::to_string(r.res.body.size()));
    const envelope e = envelope_of(r);
    CHECK(e.resource == "getSummary");
    CHECK(e.status == "success");
    CHECK(e.message.empty());
    CHECK(e.data.at("business_id") == "B-1");
    CHECK(e.data.at("assigned_number") == "+2348000000000");
    CHECK(m.base_url() == "http://127.0.0.1:" + std::to_string(m.port()) + "/v1/");
}

TEST_CASE("mock raw: methods other than POST are answered 405", "[mock]") {
    asio::io_context io;
    mock::mock_server m(io.get_executor());
    const auto k = mock::sandbox_key();
    std::vector<raw_reply> rs;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        const std::array<const char*, 3> methods{"GET", "PUT", "DELETE"};
        for (const char* method : methods) {
            const std::string req = std::string(method) +
                                    " /v1/getSummary HTTP/1.1\r\nHost: 127.0.0.1\r\nPublic-Key: " + k.public_key +
                                    "\r\nPrivate-Key: " + k.private_key + "\r\n\r\n";
            rs.push_back(co_await roundtrip(m.port(), req));
        }
    });
    REQUIRE(rs.size() == 3);
    for (const auto& r : rs) check_error(r, 405, "getSummary", "Method not allowed");
    CHECK(m.journal().at(0).status == 405);
}

TEST_CASE("mock raw: 401 for missing or wrong keys; registered key pairs are accepted", "[mock]") {
    asio::io_context io;
    mock::mock_options o;
    o.keys.push_back({"LIVE-pub-1", "LIVE-priv-1"});
    mock::mock_server m(io.get_executor(), o);
    const auto sandbox = mock::sandbox_key();
    // Built outside the coroutine: g++ 12 mishandles braced temporaries inside a co_await expression.
    const std::vector<mock::api_key> wrong{
        {},                                  // no keys at all
        {sandbox.public_key, ""},            // no private key
        {"", sandbox.private_key},           // no public key
        {sandbox.public_key, "wrong"},       // wrong private key
        {"wrong", sandbox.private_key},      // wrong public key
        {sandbox.public_key, "LIVE-priv-1"}, // each half of a valid pair, but not together
    };
    const mock::api_key live1{"LIVE-pub-1", "LIVE-priv-1"}, live2{"LIVE-pub-2", "LIVE-priv-2"};
    std::vector<raw_reply> bad;
    raw_reply extra_from_options, added_before, added_after;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        for (const auto& k : wrong) bad.push_back(co_await roundtrip(m.port(), post("getSummary", "{}", k)));
        extra_from_options = co_await roundtrip(m.port(), post("getSummary", "{}", live1));
        added_before = co_await roundtrip(m.port(), post("getSummary", "{}", live2));
        m.add_key(live2);
        added_after = co_await roundtrip(m.port(), post("getSummary", "{}", live2));
    });
    REQUIRE(bad.size() == wrong.size());
    for (const auto& r : bad) check_error(r, 401, "getSummary", "Invalid API credentials");
    CHECK(extra_from_options.res.status == 200);
    check_error(added_before, 401, "getSummary", "Invalid API credentials");
    CHECK(added_after.res.status == 200);
    CHECK(envelope_of(added_after).status == "success");
}

TEST_CASE("mock raw: 403 when the source address is outside the allow-list's ranges, IPv4 and IPv6", "[mock]") {
    asio::io_context io;
    mock::mock_options o;
    o.allowed_sources = {"10.1.2.0/24", "192.0.2.7"};
    mock::mock_server m(io.get_executor(), o);
    const mock::api_key nope{"nope", "nope"};
    raw_reply refused, still_refused, allowed, by_range, wrong_key;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        refused = co_await roundtrip(m.port(), post("listUsers", "{}"));
        m.allow_sources({"::1", "127.0.0.2/32"});
        still_refused = co_await roundtrip(m.port(), post("listUsers", "{}"));
        m.allow_sources({"10.1.2.3", "127.0.0.1"});
        allowed = co_await roundtrip(m.port(), post("listUsers", "{}"));
        m.allow_sources({"127.0.0.0/8"});
        by_range = co_await roundtrip(m.port(), post("listUsers", "{}"));
        wrong_key = co_await roundtrip(m.port(), post("listUsers", "{}", nope));
    });
    check_error(refused, 403, "listUsers", "IP address not whitelisted");
    check_error(still_refused, 403, "listUsers", "IP address not whitelisted");
    REQUIRE_FALSE(allowed.ec);
    CHECK(allowed.res.status == 200);
    CHECK(envelope_of(allowed).data.at("users").as_array().size() == 2);
    REQUIRE_FALSE(by_range.ec);
    CHECK(by_range.res.status == 200);
    check_error(wrong_key, 401, "listUsers", "Invalid API credentials");

    // Over IPv6 loopback: ::1 is in ::1/128 and not in 2001:db8::/32.
    asio::io_context io6;
    mock::mock_options o6;
    o6.server.address = "::1";
    o6.allowed_sources = {"2001:db8::/32"};
    mock::mock_server m6(io6.get_executor(), o6);
    raw_reply v6_refused, v6_allowed;
    cstest::run_test(io6, [&]() -> asio::awaitable<void> {
        v6_refused = co_await roundtrip(m6.port(), post("listUsers", "{}"), "::1");
        m6.allow_sources({"2001:db8::/32", "::1/128"});
        v6_allowed = co_await roundtrip(m6.port(), post("listUsers", "{}"), "::1");
    });
    check_error(v6_refused, 403, "listUsers", "IP address not whitelisted");
    REQUIRE_FALSE(v6_allowed.ec);
    CHECK(v6_allowed.res.status == 200);

    // An entry that is not an address or a range is refused by name, quoting it.
    mock::mock_options bad;
    bad.allowed_sources = {"10.0.0.0/8", "10.0.0.1/33"};
    CHECK_THROWS_WITH(mock::mock_server(io.get_executor(), bad),
                      Catch::Contains("allowed_sources") && Catch::Contains("10.0.0.1/33"));
    CHECK_THROWS_WITH(m.allow_sources({"localhost"}), Catch::Contains("allowed_sources"));
}

TEST_CASE("mock raw: 404 for an unknown resource and for an unknown id", "[mock]") {
    asio::io_context io;
    mock::mock_server m(io.get_executor());
    raw_reply unknown, ticket, contact;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        unknown = co_await roundtrip(m.port(), post("listDinosaurs", "{}"));
        ticket = co_await roundtrip(m.port(), post("getTicketConversation", R"({"ticket_id":"T-404"})"));
        contact = co_await roundtrip(m.port(), post("deleteContact", R"({"contact_id":"CT-404"})"));
    });
    check_error(unknown, 404, "listDinosaurs", "Unknown resource: listDinosaurs");
    check_error(ticket, 404, "getTicketConversation", "Ticket not found");
    check_error(contact, 404, "deleteContact", "Contact not found");
}

TEST_CASE("mock raw: 400 for malformed JSON, missing and invalid parameters", "[mock]") {
    asio::io_context io;
    mock::mock_server m(io.get_executor());
    struct probe {
        const char* resource;
        const char* body;
        const char* message;
    };
    const std::vector<probe> probes{
        {"createTicket", R"({"subject": "unterminated)", "Malformed JSON body"},
        {"createTicket", "", "Malformed JSON body"},
        {"createTicket", R"(["subject"])", "Malformed JSON body"},
        {"createTicket", R"({"message":"m","sender_email":"a@example.com"})", "Missing required parameter: subject"},
        {"createTicket", R"({"subject":"","message":"m","sender_email":"a@example.com"})",
         "Missing required parameter: subject"},
        {"createTicket", R"({"subject":null,"message":"m","sender_email":"a@example.com"})",
         "Missing required parameter: subject"},
        {"createTicket", R"({"subject":"s","message":"m","sender_email":"a@example.com","priority":3})",
         "Invalid parameter: priority"},
        {"createTicket", R"({"subject":"s","message":"m","sender_email":"a@example.com","priority":"extreme"})",
         "Invalid parameter: priority"},
        {"createTicket", R"({"subject":42,"message":"m","sender_email":"a@example.com"})",
         "Invalid parameter: subject"},
        {"listContacts", R"({"per_page":0})", "Invalid parameter: per_page"},
        {"sendSms", R"({"recipients":[],"message":"m"})", "Missing required parameter: recipients"},
    };
    std::vector<raw_reply> rs;
    raw_reply accepted;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        for (const auto& p : probes) rs.push_back(co_await roundtrip(m.port(), post(p.resource, p.body)));
        // Unknown fields are ignored (spec §1).
        accepted = co_await roundtrip(
            m.port(),
            post("createTicket", R"({"subject":"s","message":"m","sender_email":"a@example.com","future_field":1})"));
    });
    REQUIRE(rs.size() == probes.size());
    for (std::size_t i = 0; i < probes.size(); ++i) {
        INFO("probe " << i << ": " << probes[i].body);
        check_error(rs[i], 400, probes[i].resource, probes[i].message);
    }
    CHECK(accepted.res.status == 200);
    CHECK(m.collection("tickets").size() == 1);
}

TEST_CASE("mock raw: 429 with the error envelope, with and without Retry-After, per key", "[mock]") {
    for (const bool retry_after : {true, false}) {
        for (const auto mode : {mock::window_mode::fixed, mock::window_mode::sliding}) {
            INFO("Retry-After " << retry_after << ", mode " << static_cast<int>(mode));
            asio::io_context io;
            mock::mock_options o;
            o.rate_limits.per_endpoint = 2;
            o.rate_limits.global = 100;
            o.rate_limits.window = 60s; // nothing frees up while the test runs
            o.rate_limits.mode = mode;
            o.rate_limits.send_retry_after = retry_after;
            const mock::api_key other{"OTHER-pub", "OTHER-priv"};
            o.keys.push_back(other);
            mock::mock_server m(io.get_executor(), o);
            std::vector<raw_reply> rs;
            raw_reply other_key, other_endpoint;
            cstest::run_test(io, [&]() -> asio::awaitable<void> {
                raw_conn c(co_await asio::this_coro::executor);
                co_await c.connect(m.port());
                for (int i = 0; i < 4; ++i) rs.push_back(co_await c.call("listLeads"));
                co_await c.write(post("listLeads", "{}", other));
                other_key = co_await c.read();
                other_endpoint = co_await c.call("listUsers");
            });
            CHECK(statuses_of(rs) == std::vector<int>{200, 200, 429, 429});
            check_error(rs[2], 429, "listLeads", "Too many requests");
            check_error(rs[3], 429, "listLeads", "Too many requests");
            if (retry_after) {
                const std::string ra = header(rs[2], "Retry-After");
                REQUIRE_FALSE(ra.empty());
                REQUIRE(ra.find_first_not_of("0123456789") == std::string::npos);
                CHECK(std::stoi(ra) >= 1);
                CHECK(std::stoi(ra) <= 60);
            } else {
                CHECK_FALSE(rs[2].res.headers.find("Retry-After").has_value());
            }
            CHECK(other_key.res.status == 200);      // limits are per key
            CHECK(other_endpoint.res.status == 200); // and per endpoint
            CHECK(m.journal().size() == 6);
        }
    }
}

TEST_CASE("mock raw: 500, 502 and 503 from injected faults, then normal answers", "[mock]") {
    asio::io_context io;
    mock::mock_server m(io.get_executor());
    std::vector<raw_reply> rs;
    raw_reply other;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        raw_conn c(co_await asio::this_coro::executor);
        co_await c.connect(m.port());
        const std::array<int, 3> statuses{500, 502, 503};
        for (const int status : statuses) {
            m.inject({.what = mock::fault::kind::fail_with_status,
                      .count = 1,
                      .resource = "listDepartments",
                      .status = status});
            rs.push_back(co_await c.call("listDepartments"));
        }
        // A fault for one resource leaves the others alone, and a count of 2 fails two requests.
        m.inject(
            {.what = mock::fault::kind::fail_with_status, .count = 2, .resource = "listDepartments", .status = 503});
        m.inject({.what = mock::fault::kind::fail_with_status, .count = 0, .status = 500}); // fails nothing
        other = co_await c.call("getSummary");
        rs.push_back(co_await c.call("listDepartments"));
        rs.push_back(co_await c.call("listDepartments"));
        rs.push_back(co_await c.call("listDepartments"));
    });
    CHECK(statuses_of(rs) == std::vector<int>{500, 502, 503, 503, 503, 200});
    check_error(rs[0], 500, "listDepartments", "Server error");
    check_error(rs[1], 502, "listDepartments", "Server error");
    check_error(rs[2], 503, "listDepartments", "Server error");
    CHECK(envelope_of(rs[5]).status == "success");
    CHECK(other.res.status == 200);
    REQUIRE(m.journal().size() == 7);
    CHECK(m.journal()[3].resource == "getSummary");
    CHECK(m.journal()[3].status == 200);
}

// =========================================================================================================
// Rate limits: per endpoint and global, fixed and sliding windows, slots consumed by another process

namespace {

constexpr std::chrono::milliseconds limit_window{400};

mock::mock_options short_windows(mock::window_mode mode, std::size_t per_endpoint = 3, std::size_t global = 5) {
    mock::mock_options o;
    o.rate_limits.per_endpoint = per_endpoint;
    o.rate_limits.global = global;
    o.rate_limits.window = limit_window;
    o.rate_limits.mode = mode;
    return o;
}

/// Sends `resource` every 10 ms until one is admitted (bounded), and returns that answer.
asio::awaitable<raw_reply> poll_until_admitted(raw_conn& c, std::string_view resource) {
    for (int i = 0; i < 300; ++i) {
        raw_reply r = co_await c.call(resource);
        if (r.ec || r.res.status != 429) co_return r;
        co_await sleep_for(10ms);
    }
    raw_reply gave_up;
    gave_up.ec = asio::error::timed_out;
    co_return gave_up;
}

} // namespace

TEST_CASE("mock rate limits, both modes: N per endpoint, M global, then 429 until a slot frees", "[mock]") {
    for (const auto mode : {mock::window_mode::fixed, mock::window_mode::sliding}) {
        const bool fixed = mode == mock::window_mode::fixed;
        INFO((fixed ? "fixed" : "sliding"));
        asio::io_context io;
        const auto before = clock_type::now();
        mock::mock_server m(io.get_executor(), short_windows(mode));
        const auto after = clock_type::now();
        std::vector<raw_reply> burst, global_burst, reopened, reopened_global;
        cstest::run_test(io, [&]() -> asio::awaitable<void> {
            raw_conn c(co_await asio::this_coro::executor);
            co_await c.connect(m.port());
            for (int i = 0; i < 4; ++i) burst.push_back(co_await c.call("getSummary"));
            for (int i = 0; i < 3; ++i) global_burst.push_back(co_await c.call("listDepartments"));
            global_burst.push_back(co_await c.call("listUsers"));
            // Wait for getSummary's first slot to free, then take what is left at once.
            reopened.push_back(co_await poll_until_admitted(c, "getSummary"));
            for (int i = 0; i < 3; ++i) reopened.push_back(co_await c.call("getSummary"));
            for (int i = 0; i < 3; ++i) reopened_global.push_back(co_await c.call("listDepartments"));
        });
        CHECK(statuses_of(burst) == std::vector<int>{200, 200, 200, 429});
        check_error(burst[3], 429, "getSummary", "Too many requests");
        CHECK(header(burst[3], "Retry-After") == "1"); // whole seconds, rounded up from < 400 ms
        // Two more on another endpoint reach the global 5; then every endpoint is refused.
        CHECK(statuses_of(global_burst) == std::vector<int>{200, 200, 429, 429});
        check_error(global_burst[3], 429, "listUsers", "Too many requests");
        REQUIRE(reopened.front().res.status == 200);
        if (fixed) {
            // A new window: the whole quota again, at once, for the endpoint and globally.
            CHECK(statuses_of(reopened) == std::vector<int>{200, 200, 200, 429});
            CHECK(statuses_of(reopened_global) == std::vector<int>{200, 200, 429});
        }
        const auto& j = m.journal();
        const limits_model model{mode, limit_window, 3, 5};
        if (fixed) {
            CHECK(explained_by_fixed_windows(j, model, before, after));
        } else {
            CHECK(first_unexplained(j, model, before) == -1);
            // The first slot frees exactly one window after the first admitted request, not before.
            const auto first = std::find_if(j.begin(), j.end(), [](const auto& e) { return e.status == 200; });
            const auto reopen = std::find_if(j.begin() + 8, j.end(), [](const auto& e) { return e.status == 200; });
            REQUIRE(reopen != j.end());
            CHECK(reopen->time - first->time >= limit_window);
        }
    }
}

TEST_CASE("mock rate limits, fixed windows: a boundary lets 2N through in less than one window", "[mock]") {
    asio::io_context io;
    const auto before = clock_type::now();
    mock::mock_server m(io.get_executor(), short_windows(mock::window_mode::fixed, 3, 100));
    const auto after = clock_type::now();
    std::vector<raw_reply> late, next;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        raw_conn c(co_await asio::this_coro::executor);
        co_await c.connect(m.port());
        // Near the end of the first window (which started at the mock's construction): fill it.
        co_await sleep_for(250ms);
        for (int i = 0; i < 4; ++i) late.push_back(co_await c.call("getSummary"));
        // Right after the boundary: the whole quota again.
        next.push_back(co_await poll_until_admitted(c, "getSummary"));
        for (int i = 0; i < 3; ++i) next.push_back(co_await c.call("getSummary"));
    });
    const auto& j = m.journal();
    const limits_model fixed{mock::window_mode::fixed, limit_window, 3, 100};
    CHECK(explained_by_fixed_windows(j, fixed, before, after));
    REQUIRE(j.size() >= 8);
    // Whether the late burst really landed in the first window is read from the journal (a loaded machine
    // may have woken the test too late); the first window ends no earlier than before + window.
    if (j[3].time < before + limit_window) {
        CHECK(statuses_of(late) == std::vector<int>{200, 200, 200, 429});
        CHECK(statuses_of(next) == std::vector<int>{200, 200, 200, 429});
        std::vector<clock_type::time_point> admitted;
        for (const auto& e : j)
            if (e.status == 200) admitted.push_back(e.time);
        REQUIRE(admitted.size() == 6);
        CHECK(admitted.back() - admitted.front() < limit_window); // 2N within one window's span...
        const limits_model sliding{mock::window_mode::sliding, limit_window, 3, 100};
        CHECK(first_unexplained(j, sliding, before) >= 0); // ...which a sliding window never allows
    } else {
        WARN("the late burst missed the first window; only the replay was checked");
    }
}

TEST_CASE("mock rate limits, sliding window: at most N in any window, slots free one by one", "[mock]") {
    asio::io_context io;
    const auto before = clock_type::now();
    mock::mock_server m(io.get_executor(), short_windows(mock::window_mode::sliding, 3, 100));
    std::vector<raw_reply> rs;
    raw_reply first_reopen, right_after, second_reopen;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        raw_conn c(co_await asio::this_coro::executor);
        co_await c.connect(m.port());
        rs.push_back(co_await c.call("getSummary")); // t0
        co_await sleep_for(150ms);
        rs.push_back(co_await c.call("getSummary")); // t1
        rs.push_back(co_await c.call("getSummary"));
        rs.push_back(co_await c.call("getSummary"));                   // full
        first_reopen = co_await poll_until_admitted(c, "getSummary");  // t0's slot
        right_after = co_await c.call("getSummary");                   // t1's slot is still taken
        second_reopen = co_await poll_until_admitted(c, "getSummary"); // t1's slot
    });
    CHECK(statuses_of(rs) == std::vector<int>{200, 200, 200, 429});
    CHECK(first_reopen.res.status == 200);
    CHECK(second_reopen.res.status == 200);
    const auto& j = m.journal();
    const limits_model sliding{mock::window_mode::sliding, limit_window, 3, 100};
    CHECK(first_unexplained(j, sliding, before) == -1);
    std::vector<const mock::journal_entry*> admitted;
    for (const auto& e : j)
        if (e.status == 200) admitted.push_back(&e);
    REQUIRE(admitted.size() == 5);
    // Never more than N admitted in any span of one window.
    for (std::size_t i = 0; i + 3 < admitted.size(); ++i)
        CHECK(admitted[i + 3]->time - admitted[i]->time >= limit_window);
    CHECK(admitted[3]->time - admitted[0]->time >= limit_window); // t0's slot, one window later
    CHECK(admitted[4]->time - admitted[1]->time >= limit_window); // t1's slot, one window later
    // The request right after the first reopening still saw t1 and t2 in its window (read from the journal).
    const auto right_after_entry =
        std::find_if(j.begin(), j.end(), [&](const auto& e) { return &e == admitted[3]; }) + 1;
    REQUIRE(right_after_entry != j.end());
    if (right_after_entry->time - admitted[1]->time < limit_window) {
        CHECK(right_after.res.status == 429);
        CHECK(header(right_after, "Retry-After") == "1");
    }
}

TEST_CASE("mock rate limits: consume() takes slots as another process sharing the key would", "[mock]") {
    asio::io_context io;
    mock::mock_options o;
    o.rate_limits.per_endpoint = 3;
    o.rate_limits.global = 5;
    o.rate_limits.window = 60s;
    mock::mock_server m(io.get_executor(), o);
    const auto key = mock::sandbox_key();
    std::vector<raw_reply> rs;
    raw_reply other_endpoint_1, other_endpoint_2, other_endpoint_3;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        raw_conn c(co_await asio::this_coro::executor);
        co_await c.connect(m.port());
        m.consume(key.public_key, "listLeads", 2);
        rs.push_back(co_await c.call("listLeads")); // the third slot
        rs.push_back(co_await c.call("listLeads")); // over the endpoint's limit
        m.consume(key.public_key, "createLead", 1); // global: 2 + 1 + 1 = 4 used
        other_endpoint_1 = co_await c.call("listUsers");
        other_endpoint_2 = co_await c.call("listUsers"); // global limit
        m.consume("someone-else", "listUsers", 50);      // another key's slots are not ours
        other_endpoint_3 = co_await c.call("listTtsVoices");
    });
    CHECK(statuses_of(rs) == std::vector<int>{200, 429});
    check_error(rs[1], 429, "listLeads", "Too many requests");
    CHECK(other_endpoint_1.res.status == 200);
    CHECK(other_endpoint_2.res.status == 429);
    CHECK(other_endpoint_3.res.status == 429);
    CHECK(m.count("listLeads") == 2); // consumed slots are not requests: the journal has only ours
}

// =========================================================================================================
// Faults, seen raw and through the client

TEST_CASE("mock faults: fail_with_status for N requests, then normal; the client retries read-only calls", "[mock]") {
    asio::io_context io;
    mock::mock_server m(io.get_executor(), no_limits());
    auto o = client_opts(m);
    o.retry.max_attempts = 3;
    callsavvy::client c(io.get_executor(), o);
    callsavvy::diagnostics diag;
    error_code create_ec;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        m.inject({.what = mock::fault::kind::fail_with_status, .count = 2, .resource = "getSummary", .status = 503});
        auto summary = co_await c.async_get_summary(api::get_summary_request(), diag);
        CHECK(summary.business_id == "B-1");
        CHECK(diag.attempts == 3);
        // A state-changing call is not re-sent after a 5xx, and whether it was done is unknown.
        m.inject({.what = mock::fault::kind::fail_with_status, .count = 1, .resource = "createLead", .status = 500});
        api::create_lead_request r{.name = "Once", .phone = "+2348000000001"};
        callsavvy::diagnostics d2;
        auto [ec, lead] = co_await c.async_create_lead(std::move(r), d2, as_tuple);
        create_ec = ec;
        CHECK_FALSE(lead.lead_id.has_value());
        CHECK(d2.http_status == 500);
        CHECK(d2.server_message == "Server error");
        c.close();
    });
    CHECK(create_ec == callsavvy::error::outcome_unknown);
    REQUIRE(m.journal().size() == 4);
    CHECK(m.journal()[0].status == 503);
    CHECK(m.journal()[1].status == 503);
    CHECK(m.journal()[2].status == 200);
    CHECK(m.journal()[3].status == 500);
    CHECK(m.count("createLead") == 1);
    CHECK(m.collection("leads").empty());
}

TEST_CASE("mock faults: delay holds the answer back", "[mock]") {
    asio::io_context io;
    mock::mock_server m(io.get_executor(), no_limits());
    callsavvy::client c(io.get_executor(), client_opts(m));
    clock_type::duration delayed{}, raw_delayed{};
    raw_reply raw;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        m.inject({.what = mock::fault::kind::delay, .count = 1, .resource = "listUsers", .delay = 150ms});
        auto start = clock_type::now();
        auto users = co_await c.async_list_users(api::list_users_request());
        delayed = clock_type::now() - start;
        CHECK(users.users.size() == 2);

        m.inject({.what = mock::fault::kind::delay, .count = 1, .delay = 100ms}); // any resource
        start = clock_type::now();
        raw = co_await roundtrip(m.port(), post("getSummary", "{}"));
        raw_delayed = clock_type::now() - start;
        c.close();
    });
    CHECK(delayed >= 150ms);
    CHECK(raw.res.status == 200);
    CHECK(raw_delayed >= 100ms);
    REQUIRE(m.journal().size() == 2);
    CHECK(m.journal()[0].status == 200);
}

TEST_CASE("mock faults: close_after_reading loses the answer; the request is journaled once, unanswered", "[mock]") {
    asio::io_context io;
    mock::mock_server m(io.get_executor(), no_limits());
    auto o = client_opts(m);
    o.retry.max_attempts = 3; // even with retries, a state-changing call is never sent twice
    callsavvy::client c(io.get_executor(), o);
    error_code ec_client;
    raw_reply raw;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        m.inject({.what = mock::fault::kind::close_after_reading, .count = 1, .resource = "createLead"});
        api::create_lead_request r{.name = "Lost", .phone = "+2348000000002"};
        callsavvy::diagnostics d;
        auto [ec, lead] = co_await c.async_create_lead(std::move(r), d, as_tuple);
        ec_client = ec;
        (void)lead;
        m.inject({.what = mock::fault::kind::close_after_reading, .count = 1});
        raw = co_await roundtrip(m.port(), post("getSummary", "{}"));
        c.close();
    });
    CHECK(ec_client == callsavvy::error::outcome_unknown);
    CHECK(raw.ec == asio::error::eof);
    REQUIRE(m.journal().size() == 2);
    CHECK(m.journal()[0].resource == "createLead");
    CHECK(m.journal()[0].status == 0);
    CHECK(json::parse(m.journal()[0].body).at("name") == "Lost");
    CHECK(m.journal()[1].resource == "getSummary");
    CHECK(m.journal()[1].status == 0);
}

TEST_CASE("mock faults: close_next_connections closes at accept, before reading", "[mock]") {
    asio::io_context io;
    mock::mock_server m(io.get_executor(), no_limits());
    auto o = client_opts(m);
    o.retry.max_attempts = 2;
    callsavvy::client c(io.get_executor(), o);
    raw_reply refused, served;
    std::optional<std::string> business;
    callsavvy::diagnostics diag;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        m.close_next_connections(1);
        refused = co_await roundtrip(m.port(), post("getSummary", "{}"));
        served = co_await roundtrip(m.port(), post("getSummary", "{}"));
        // The client's read-only call meets a closed connection and succeeds on a fresh one.
        m.close_next_connections(1);
        auto s = co_await c.async_get_summary(api::get_summary_request(), diag);
        business = s.business_id;
        c.close();
    });
    CHECK(refused.ec);
    CHECK(refused.res.body.empty());
    CHECK(served.res.status == 200);
    CHECK(business == "B-1");
    CHECK(diag.attempts == 2);
    CHECK(m.connections_accepted() == 4);
    // Closed connections never carried a request to the mock.
    REQUIRE(m.journal().size() == 2);
    CHECK(m.journal()[0].status == 200);
    CHECK(m.journal()[1].status == 200);
}

TEST_CASE("mock faults: a chunked answer is parsed by the client", "[mock]") {
    asio::io_context io;
    mock::mock_server m(io.get_executor(), no_limits());
    callsavvy::client c(io.get_executor(), client_opts(m));
    raw_reply raw;
    std::size_t departments = 0;
    std::optional<std::string> business;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        m.inject({.what = mock::fault::kind::chunked, .count = 2});
        raw = co_await roundtrip(m.port(), post("getSummary", "{}"));
        auto deps = co_await c.async_list_departments(api::list_departments_request());
        departments = deps.departments.size();
        auto s = co_await c.async_get_summary(api::get_summary_request()); // the same connection, not chunked
        business = s.business_id;
        CHECK(c.open_connections() == 1);
        c.close();
    });
    REQUIRE_FALSE(raw.ec);
    CHECK(raw.chunked);
    CHECK(header(raw, "Transfer-Encoding") == "chunked");
    CHECK_FALSE(raw.res.headers.find("Content-Length").has_value());
    CHECK(envelope_of(raw).data.at("business_id") == "B-1");
    CHECK(departments == 2);
    CHECK(business == "B-1");
}

TEST_CASE("mock faults: a truncated body is an error for the client", "[mock]") {
    asio::io_context io;
    mock::mock_server m(io.get_executor(), no_limits());
    callsavvy::client c(io.get_executor(), client_opts(m));
    raw_reply raw;
    error_code client_ec;
    std::optional<std::string> after;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        m.inject({.what = mock::fault::kind::truncated, .count = 1, .resource = "listUsers"});
        raw = co_await roundtrip(m.port(), post("listUsers", "{}"));
        m.inject({.what = mock::fault::kind::truncated, .count = 1, .resource = "listUsers"});
        callsavvy::diagnostics d;
        auto [ec, users] = co_await c.async_list_users(api::list_users_request(), d, as_tuple);
        client_ec = ec;
        CHECK(users.users.empty());
        auto s = co_await c.async_get_summary(api::get_summary_request()); // the mock serves on
        after = s.business_id;
        c.close();
    });
    CHECK(raw.ec == http::error::partial_message);
    CHECK(client_ec);
    CHECK(after == "B-1");
    CHECK(m.journal().at(0).status == 200); // answered, but cut short
}

TEST_CASE("mock faults: a stalled answer makes the client time out", "[mock]") {
    asio::io_context io;
    mock::mock_server m(io.get_executor(), no_limits());
    auto o = client_opts(m);
    o.attempt_timeout = 300ms;
    callsavvy::client c(io.get_executor(), o);
    error_code client_ec;
    std::optional<std::string> after;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        m.inject({.what = mock::fault::kind::stall, .count = 1, .resource = "getSummary"});
        callsavvy::diagnostics d;
        auto [ec, s] = co_await c.async_get_summary(api::get_summary_request(), d, as_tuple);
        client_ec = ec;
        (void)s;
        auto s2 = co_await c.async_get_summary(api::get_summary_request());
        after = s2.business_id;
        c.close();
    });
    CHECK(client_ec == callsavvy::error::attempt_timeout);
    CHECK(after == "B-1");
    REQUIRE(m.journal().size() == 2);
    CHECK(m.journal()[0].status == 0);
    CHECK(m.journal()[1].status == 200);
}

TEST_CASE("mock faults: fail_randomly is deterministic for a seed", "[mock]") {
    auto run_with = [](std::uint64_t seed, std::string resource) {
        asio::io_context io;
        mock::mock_options o = no_limits();
        o.seed = seed;
        mock::mock_server m(io.get_executor(), o);
        m.fail_randomly(0.5, 502, std::move(resource));
        std::vector<raw_reply> rs;
        cstest::run_test(io, [&]() -> asio::awaitable<void> {
            raw_conn c(co_await asio::this_coro::executor);
            co_await c.connect(m.port());
            for (int i = 0; i < 40; ++i) rs.push_back(co_await c.call(i % 2 == 0 ? "getSummary" : "listUsers"));
        });
        return statuses_of(rs);
    };
    const auto a = run_with(42, "");
    const auto b = run_with(42, "");
    const auto other = run_with(43, "");
    CHECK(a == b);
    CHECK(a != other);
    CHECK(std::count(a.begin(), a.end(), 502) > 5);
    CHECK(std::count(a.begin(), a.end(), 200) > 5);
    CHECK(std::count(a.begin(), a.end(), 502) + std::count(a.begin(), a.end(), 200) == 40);
    // Only the named resource fails.
    const auto only_users = run_with(42, "listUsers");
    for (std::size_t i = 0; i < only_users.size(); i += 2) CHECK(only_users[i] == 200);
    CHECK(std::count(only_users.begin(), only_users.end(), 502) > 2);
}

// =========================================================================================================
// The journal

TEST_CASE("mock journal: time, resource, public key, body and status of every request", "[mock]") {
    asio::io_context io;
    mock::mock_options o = no_limits();
    const mock::api_key live{"LIVE-pub", "LIVE-private-secret"}, live_wrong{"LIVE-pub", "wrong-private"};
    o.keys.push_back(live);
    mock::mock_server m(io.get_executor(), o);
    const auto start = clock_type::now();
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        raw_conn c(co_await asio::this_coro::executor);
        co_await c.connect(m.port());
        co_await c.call("getSummary", R"({"a":1})");
        co_await c.write(post("listUsers", R"({"role":"admin"})", live));
        co_await c.read();
        co_await c.write(post("listUsers", "{}", live_wrong));
        co_await c.read();
        co_await c.call("nope", "{}");
    });
    const auto end = clock_type::now();
    const auto& j = m.journal();
    REQUIRE(j.size() == 4);
    CHECK(j[0].resource == "getSummary");
    CHECK(j[0].public_key == mock::sandbox_key().public_key);
    CHECK(j[0].body == R"({"a":1})");
    CHECK(j[0].status == 200);
    CHECK(j[1].resource == "listUsers");
    CHECK(j[1].public_key == "LIVE-pub");
    CHECK(j[1].body == R"({"role":"admin"})");
    CHECK(j[1].status == 200);
    CHECK(j[2].status == 401);
    CHECK(j[3].resource == "nope");
    CHECK(j[3].status == 404);
    for (std::size_t i = 0; i < j.size(); ++i) {
        CHECK(j[i].time >= start);
        CHECK(j[i].time <= end);
        if (i > 0) CHECK(j[i].time >= j[i - 1].time);
        CHECK(j[i].connection_id == 1);
        CHECK(j[i].body.find("private") == std::string::npos);
        CHECK(j[i].public_key.find("private") == std::string::npos);
    }
    CHECK(m.count("listUsers") == 2);
    m.clear_journal();
    CHECK(m.journal().empty());
}

TEST_CASE("mock journal: 20 concurrent createLead calls arrive exactly once each", "[mock]") {
    asio::io_context io;
    mock::mock_server m(io.get_executor(), no_limits());
    auto o = client_opts(m);
    o.max_connections = 4;
    callsavvy::client c(io.get_executor(), o);
    std::vector<std::string> lead_ids;
    int done = 0, failed = 0;
    for (int i = 0; i < 20; ++i) {
        asio::co_spawn(
            io,
            [&c, &lead_ids, i]() -> asio::awaitable<void> {
                api::create_lead_request r;
                r.name = "Lead " + std::to_string(i);
                r.phone = "+23480000002" + std::to_string(10 + i);
                auto out = co_await c.async_create_lead(std::move(r));
                lead_ids.push_back(out.lead_id.value_or(""));
            },
            [&](std::exception_ptr e) {
                ++done;
                if (e) ++failed;
            });
    }
    cstest::run_until(
        io, [&] { return done == 20; }, 20s, "20 createLead calls");
    c.close();
    cstest::run_ready(io);
    CHECK(failed == 0);
    const auto& j = m.journal();
    REQUIRE(j.size() == 20);
    std::set<std::string> bodies, names;
    for (const auto& e : j) {
        CHECK(e.resource == "createLead");
        CHECK(e.status == 200);
        bodies.insert(e.body);
        names.insert(std::string(json::parse(e.body).at("name").as_string()));
    }
    CHECK(bodies.size() == 20); // nothing sent twice
    CHECK(names.size() == 20);  // nothing lost
    CHECK(names.count("Lead 0") == 1);
    CHECK(names.count("Lead 19") == 1);
    CHECK(std::set<std::string>(lead_ids.begin(), lead_ids.end()).size() == 20);
    CHECK(m.collection("leads").size() == 20);
    CHECK(m.connections_accepted() <= 4);
}

TEST_CASE("mock over TLS: the client calls it with the test CA", "[mock]") {
    asio::io_context io;
    const auto& pki = cstest::test_pki();
    auto tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    tls->use_certificate_chain(asio::buffer(pki.localhost.cert_pem));
    tls->use_private_key(asio::buffer(pki.localhost.key_pem), asio::ssl::context::pem);
    mock::mock_options o = no_limits();
    o.server.tls = tls;
    mock::mock_server m(io.get_executor(), o);
    CHECK(m.base_url() == "https://localhost:" + std::to_string(m.port()) + "/v1/");
    callsavvy::client c(io.get_executor(), client_opts(m));
    std::optional<std::string> lead_id;
    std::size_t leads = 0;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        api::create_lead_request r{.name = "Secure", .email = "s@example.com"};
        auto created = co_await c.async_create_lead(std::move(r));
        lead_id = created.lead_id;
        auto listed = co_await c.async_list_leads(api::list_leads_request());
        leads = listed.leads.size();
        c.close();
    });
    CHECK(lead_id.has_value());
    CHECK(leads == 1);
    CHECK(m.journal().size() == 2);
}

TEST_CASE("mock: a POST whose body is not declared as JSON is answered 400", "[mock]") {
    asio::io_context io;
    mock::mock_server m(io.get_executor(), no_limits());
    const auto k = mock::sandbox_key();
    // post() always declares application/json; these requests declare something else, or nothing.
    auto with_type = [&](std::string_view type) {
        std::string r = "POST /v1/getSummary HTTP/1.1\r\nHost: 127.0.0.1\r\nPublic-Key: " + k.public_key +
                        "\r\nPrivate-Key: " + k.private_key + "\r\n";
        if (!type.empty()) r += "Content-Type: " + std::string(type) + "\r\n";
        return r + "Content-Length: 2\r\n\r\n{}";
    };
    const std::vector<std::string> refused_types{"", "text/plain", "application/jsonp",
                                                 "application/x-www-form-urlencoded"};
    const std::vector<std::string> accepted_types{"application/json", "Application/JSON",
                                                  "application/json; charset=utf-8", "application/json ;charset=UTF-8"};
    std::vector<raw_reply> refused, accepted;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        for (const auto& t : refused_types) refused.push_back(co_await roundtrip(m.port(), with_type(t)));
        for (const auto& t : accepted_types) accepted.push_back(co_await roundtrip(m.port(), with_type(t)));
    });
    for (std::size_t i = 0; i < refused.size(); ++i) {
        INFO("Content-Type: '" << refused_types[i] << "'");
        check_error(refused[i], 400, "getSummary", "Malformed JSON body: Content-Type must be application/json");
    }
    for (std::size_t i = 0; i < accepted.size(); ++i) {
        INFO("Content-Type: '" << accepted_types[i] << "'");
        CHECK(accepted[i].res.status == 200);
    }
    CHECK(m.journal().size() == refused.size() + accepted.size());
}

namespace {

/// A mock with `what` injected (30 s for a delay) and a connection whose request is being held by it.
struct held_request {
    asio::io_context io;
    std::unique_ptr<mock::mock_server> mock;
    raw_conn client{io.get_executor()};

    explicit held_request(mock::fault::kind what)
        : mock(std::make_unique<mock::mock_server>(io.get_executor(), no_limits())) {
        mock::fault f;
        f.what = what;
        f.delay = 30s;
        mock->inject(f);
        cstest::run_test(io, [&]() -> asio::awaitable<void> {
            co_await client.connect(mock->port());
            co_await client.write(post("getSummary", "{}"));
        });
        cstest::run_until(
            io, [&] { return mock->journal().size() == 1; }, 5s, "the request to arrive");
    }

    /// What the client reads next (bounded by run_test).
    raw_reply read() {
        raw_reply r;
        cstest::run_test(io, [&]() -> asio::awaitable<void> { r = co_await client.read(); });
        return r;
    }
};

} // namespace

TEST_CASE("mock: stop() ends an injected delay or stall at once; nothing is answered", "[mock]") {
    for (const auto what : {mock::fault::kind::delay, mock::fault::kind::stall}) {
        INFO("fault " << static_cast<int>(what));
        held_request h(what);
        CHECK(h.mock->open_connections() == 1);
        const auto stopped_at = clock_type::now();
        h.mock->stop();
        cstest::run_until(
            h.io, [&] { return h.mock->open_connections() == 0; }, 5s, "the waiting handler to end");
        CHECK(clock_type::now() - stopped_at < 2s);
        CHECK(h.read().ec);
    }
    // Destroyed while a handler waits in a fault: the handler's frame resumes after the mock is gone and must
    // not touch it (ASan would see it).
    held_request h(mock::fault::kind::stall);
    h.mock.reset();
    CHECK(h.read().ec);
}

TEST_CASE("mock journal: a ring of journal_capacity entries that counts what it dropped", "[mock]") {
    asio::io_context io;
    mock::mock_options o = no_limits();
    o.journal_capacity = 3;
    mock::mock_server m(io.get_executor(), o);
    const std::array<const char*, 5> resources{"getSummary", "listUsers", "nope", "listDepartments", "listTtsVoices"};
    std::vector<raw_reply> rs;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        raw_conn c(co_await asio::this_coro::executor);
        co_await c.connect(m.port());
        for (const char* r : resources) rs.push_back(co_await c.call(r));
    });
    CHECK(statuses_of(rs) == std::vector<int>{200, 200, 404, 200, 200});
    const auto& j = m.journal();
    REQUIRE(j.size() == 3);
    CHECK(m.journal_dropped() == 2);
    CHECK(j[0].resource == "nope");
    CHECK(j[0].status == 404);
    CHECK(j[1].resource == "listDepartments");
    CHECK(j[1].status == 200);
    CHECK(j[2].resource == "listTtsVoices");
    CHECK(j[2].status == 200);
    CHECK(m.count("getSummary") == 0);
    m.clear_journal();
    raw_reply after;
    cstest::run_test(
        io, [&]() -> asio::awaitable<void> { after = co_await roundtrip(m.port(), post("getSummary", "{}")); });
    REQUIRE(m.journal().size() == 1);
    CHECK(m.journal()[0].status == 200);
    CHECK(m.journal_dropped() == 2); // clearing is not dropping
    CHECK(mock::mock_options{}.journal_capacity == 100000);
}
