// net/server.hpp: http_server on its own (a small handler of the test's) and through the mock: limits (413,
// 431, 400), the read deadline from a request's first byte (408) and the idle timeout, keep-alive and
// pipelining, the TLS handshake deadline, handler failures (500, the connection serves on), stop() cancelling
// running handlers, graceful shutdown, both overload policies, the accept back-off when descriptors run out
// (in a forked child with a lowered RLIMIT_NOFILE), and several threads on one io_context.
#include <callsavvy/net/server.hpp>
#include <callsavvy/testing/mock_server.hpp>

#include "support/pki.hpp"
#include "support/raw_http.hpp"
#include "support/run.hpp"

#include "support/asio.hpp"
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
namespace http = callsavvy::http;
namespace mock = callsavvy::testing;
using callsavvy::error_code;
using callsavvy::http_server;
using callsavvy::server_event;
using callsavvy::server_reply;
using callsavvy::server_request;
using clock_type = std::chrono::steady_clock;

namespace {

using namespace cstest::raw; // NOLINT(google-build-using-namespace): the raw HTTP helpers

using handler_fn = std::function<asio::awaitable<server_reply>(server_request&)>;

server_reply text_reply(std::string body) {
    server_reply r;
    r.response.headers.add("Content-Type", "text/plain");
    r.response.body = std::move(body);
    return r;
}

/// Answers every request with its target.
asio::awaitable<server_reply> echo_target(server_request& req) { co_return text_reply(req.message.target); }

std::string get(std::string_view target, std::string_view extra_headers = "") {
    return "GET " + std::string(target) + " HTTP/1.1\r\nHost: t\r\n" + std::string(extra_headers) + "\r\n";
}

/// The events of a single-threaded test.
struct event_log {
    std::vector<server_event> events;
    std::function<void(const server_event&)> hook() {
        return [this](const server_event& e) { events.push_back(e); };
    }
    std::vector<server_event> of(server_event::kind k) const {
        std::vector<server_event> out;
        std::copy_if(events.begin(), events.end(), std::back_inserter(out), [&](const auto& e) { return e.what == k; });
        return out;
    }
};

asio::awaitable<void> wait_for_timer(std::chrono::milliseconds d, error_code& seen) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    auto [ec] = co_await t.async_wait(as_tuple);
    seen = ec;
}

} // namespace

// =========================================================================================================
// Bad input: the connection at fault is answered and closed, everyone else is served on

TEST_CASE("server, through the mock: an oversized body is answered 413 and its connection closed", "[server]") {
    asio::io_context io;
    mock::mock_options o;
    o.server.limits.max_body_bytes = 256;
    mock::mock_server m(io.get_executor(), o);
    raw_reply before, too_large, after, fits;
    bool closed = false;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        raw_conn other(co_await asio::this_coro::executor);
        co_await other.connect(m.port());
        before = co_await other.call("getSummary");

        raw_conn big(co_await asio::this_coro::executor);
        co_await big.connect(m.port());
        // The head announces 100000 bytes: the answer comes at the end of the head, before any of them.
        std::string head = post("createLead", std::string(100000, ' '));
        head.resize(head.find("\r\n\r\n") + 4);
        co_await big.write(head + "{\"name\":");
        too_large = co_await big.read();
        closed = co_await big.closed_by_peer();

        after = co_await other.call("getSummary");
        fits = co_await other.call("createLead", R"({"name":"small","phone":"+2348000000000"})");
    });
    check_error(too_large, 413, "", "Request body too large");
    CHECK(header(too_large, "Connection") == "close");
    CHECK(closed);
    CHECK(before.res.status == 200);
    CHECK(after.res.status == 200);
    CHECK(fits.res.status == 200);
    CHECK(m.connections_accepted() == 2);
    CHECK(m.collection("leads").size() == 1);
    CHECK(std::count_if(m.journal().begin(), m.journal().end(), [](const auto& e) { return e.status == 413; }) == 1);
}

TEST_CASE("server, through the mock: a client that sends a whole oversized body still reads its 413", "[server]") {
    // The answer comes at the end of the head while the body's bytes are still arriving: closing with
    // unread bytes would reset the connection and could destroy the 413 before the client reads it, so
    // the server stops sending, drains what the client still sends, then closes.
    asio::io_context io;
    mock::mock_options o;
    o.server.limits.max_body_bytes = 256;
    mock::mock_server m(io.get_executor(), o);
    raw_reply too_large;
    error_code wec;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        raw_conn big(co_await asio::this_coro::executor);
        co_await big.connect(m.port());
        wec = co_await big.write(post("createLead", std::string(200000, ' ')));
        too_large = co_await big.read();
    });
    CHECK_FALSE(wec);
    INFO("reading the answer failed with: " << too_large.ec.message());
    REQUIRE_FALSE(too_large.ec);
    check_error(too_large, 413, "", "Request body too large");
}

TEST_CASE("server, through the mock: oversized headers are answered 431", "[server]") {
    asio::io_context io;
    mock::mock_options o;
    o.server.limits.max_header_bytes = 1024;
    mock::mock_server m(io.get_executor(), o);
    raw_reply r, after;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        r = co_await roundtrip(
            m.port(), post("getSummary", "{}", mock::sandbox_key(), "X-Padding: " + std::string(4000, 'p') + "\r\n"));
        after = co_await roundtrip(m.port(), post("getSummary", "{}"));
    });
    check_error(r, 431, "", "Request headers too large");
    CHECK(after.res.status == 200);
}

TEST_CASE("server, through the mock: a slow client gets 408 and loses its connection; others are served meanwhile",
          "[server]") {
    asio::io_context io;
    mock::mock_options o;
    o.server.read_timeout = 300ms;
    mock::mock_server m(io.get_executor(), o);
    raw_reply timed_out;
    bool closed = false;
    std::vector<raw_reply> others;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        raw_conn slow(co_await asio::this_coro::executor);
        co_await slow.connect(m.port());
        const std::string whole = post("getSummary", "{}");
        co_await slow.write(whole.substr(0, whole.size() / 2)); // half a request, then nothing

        raw_conn other(co_await asio::this_coro::executor);
        co_await other.connect(m.port());
        others.push_back(co_await other.call("getSummary"));
        co_await sleep_for(50ms);
        others.push_back(co_await other.call("listDepartments"));

        timed_out = co_await slow.read(); // bounded by the mock's read timeout
        closed = co_await slow.closed_by_peer();
        others.push_back(co_await other.call("listUsers"));
    });
    check_error(timed_out, 408, "", "Request timeout");
    CHECK(header(timed_out, "Connection") == "close");
    CHECK(closed);
    CHECK(statuses_of(others) == std::vector<int>{200, 200, 200});
    CHECK(std::count_if(m.journal().begin(), m.journal().end(), [](const auto& e) { return e.status == 408; }) == 1);
}

TEST_CASE(
    "server, through the mock: garbage bytes are answered 400 and that connection closed; another keeps being served",
    "[server]") {
    asio::io_context io;
    mock::mock_server m(io.get_executor());
    std::vector<raw_reply> others;
    raw_reply garbage, binary;
    bool closed = false, binary_closed = false;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        raw_conn other(co_await asio::this_coro::executor);
        co_await other.connect(m.port());
        others.push_back(co_await other.call("getSummary"));

        raw_conn bad(co_await asio::this_coro::executor);
        co_await bad.connect(m.port());
        co_await bad.write("HELLO THERE\r\nthis is not http\r\n\r\n");
        garbage = co_await bad.read();
        closed = co_await bad.closed_by_peer();

        others.push_back(co_await other.call("listDepartments"));

        raw_conn worse(co_await asio::this_coro::executor);
        co_await worse.connect(m.port());
        co_await worse.write(std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", 15)); // a TLS hello
        binary = co_await worse.read();
        binary_closed = co_await worse.closed_by_peer();

        others.push_back(co_await other.call("listUsers"));
    });
    CHECK(garbage.res.status == 400);
    CHECK(envelope_of(garbage).status == "error");
    CHECK(envelope_of(garbage).message.starts_with("Malformed request"));
    CHECK(closed);
    CHECK(binary.res.status == 400);
    CHECK(binary_closed);
    CHECK(statuses_of(others) == std::vector<int>{200, 200, 200});
    CHECK(m.connections_accepted() == 3);
}

// =========================================================================================================
// Keep-alive and pipelining

TEST_CASE("server, through the mock: keep-alive carries many requests; Connection: close ends the connection",
          "[server]") {
    asio::io_context io;
    mock::mock_server m(io.get_executor());
    std::vector<raw_reply> rs;
    raw_reply last;
    bool closed = false;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        raw_conn c(co_await asio::this_coro::executor);
        co_await c.connect(m.port());
        const std::array<const char*, 4> resources{"getSummary", "listDepartments", "listUsers", "listTtsVoices"};
        for (const char* r : resources) rs.push_back(co_await c.call(r));
        co_await c.write(post("getSummary", "{}", mock::sandbox_key(), "Connection: close\r\n"));
        last = co_await c.read();
        closed = co_await c.closed_by_peer();
    });
    CHECK(statuses_of(rs) == std::vector<int>{200, 200, 200, 200});
    for (const auto& r : rs) CHECK_FALSE(r.res.headers.contains_token("Connection", "close"));
    CHECK(last.res.status == 200);
    CHECK(header(last, "Connection") == "close");
    CHECK(closed);
    CHECK(m.connections_accepted() == 1);
    REQUIRE(m.journal().size() == 5);
    for (const auto& e : m.journal()) CHECK(e.connection_id == 1);
}

TEST_CASE("server, through the mock: pipelined requests in one write are answered in order", "[server]") {
    asio::io_context io;
    mock::mock_server m(io.get_executor());
    std::vector<raw_reply> rs;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        raw_conn c(co_await asio::this_coro::executor);
        co_await c.connect(m.port());
        co_await c.write(post("getSummary", "{}") + post("listDepartments", "{}"));
        rs.push_back(co_await c.read());
        rs.push_back(co_await c.read());
        // The first answer delayed, an error in the middle: the order still holds.
        m.inject({.what = mock::fault::kind::delay, .count = 1, .resource = "listUsers", .delay = 100ms});
        co_await c.write(post("listUsers", "{}") + post("noSuchThing", "{}") + post("getTicketConversation", "{") +
                         post("listTtsVoices", "{}"));
        for (int i = 0; i < 4; ++i) rs.push_back(co_await c.read());
    });
    REQUIRE(rs.size() == 6);
    CHECK(statuses_of(rs) == std::vector<int>{200, 200, 200, 404, 400, 200});
    const std::vector<std::string> expected{"getSummary",  "listDepartments",       "listUsers",
                                            "noSuchThing", "getTicketConversation", "listTtsVoices"};
    for (std::size_t i = 0; i < rs.size(); ++i) CHECK(envelope_of(rs[i]).resource == expected[i]);
    CHECK(envelope_of(rs[4]).message == "Malformed JSON body");
    CHECK(m.connections_accepted() == 1);
}

// =========================================================================================================
// The server on its own

TEST_CASE("server: the read deadline counts from a request's first byte; an idle connection closes later", "[server]") {
    asio::io_context io;
    callsavvy::server_options o;
    o.read_timeout = 200ms;
    o.idle_timeout = 700ms;
    http_server server(io.get_executor(), o, echo_target);
    raw_reply late_but_whole;
    bool closed = false;
    clock_type::duration idle_for{};
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        raw_conn c(co_await asio::this_coro::executor);
        co_await c.connect(server.port());
        co_await sleep_for(400ms); // idle for twice the read deadline: no request had started
        co_await c.write(get("/after-a-pause"));
        late_but_whole = co_await c.read();
        const auto answered = clock_type::now();
        closed = co_await c.closed_by_peer();
        idle_for = clock_type::now() - answered;
    });
    REQUIRE_FALSE(late_but_whole.ec);
    CHECK(late_but_whole.res.status == 200);
    CHECK(late_but_whole.res.body == "/after-a-pause");
    CHECK(closed);
    CHECK(idle_for >= 600ms);
    CHECK(idle_for < 5s);
}

TEST_CASE("server: a TLS client that never completes its handshake is closed after handshake_timeout", "[server]") {
    asio::io_context io;
    const auto& pki = cstest::test_pki();
    callsavvy::server_options o;
    o.tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    o.tls->use_certificate_chain(asio::buffer(pki.localhost.cert_pem));
    o.tls->use_private_key(asio::buffer(pki.localhost.key_pem), asio::ssl::context::pem);
    o.handshake_timeout = 250ms;
    o.read_timeout = 10s;
    http_server server(io.get_executor(), o, echo_target);
    CHECK(server.is_tls());
    bool closed = false;
    clock_type::duration took{};
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        raw_conn c(co_await asio::this_coro::executor);
        co_await c.connect(server.port());
        const auto start = clock_type::now();
        closed = co_await c.closed_by_peer(); // no ClientHello ever
        took = clock_type::now() - start;
    });
    CHECK(closed);
    CHECK(took >= 200ms);
    CHECK(took < 5s);
    CHECK(server.connections_accepted() == 1);
}

TEST_CASE("server: a handler that throws is answered 500 and the connection serves the next request", "[server]") {
    asio::io_context io;
    event_log log;
    callsavvy::server_options o;
    o.on_event = log.hook();
    const handler_fn handler = [](server_request& req) -> asio::awaitable<server_reply> {
        if (req.message.target == "/throw") throw std::runtime_error("the handler broke");
        server_reply r = text_reply(req.message.target);
        if (req.message.target == "/unsendable") r.response.headers.add("X-Injected", "a\r\nb"); // CR LF in a value
        co_return r;
    };
    http_server server(io.get_executor(), o, handler);
    std::vector<raw_reply> rs;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        raw_conn c(co_await asio::this_coro::executor);
        co_await c.connect(server.port());
        co_await c.write(get("/throw") + get("/unsendable") + get("/fine"));
        for (int i = 0; i < 3; ++i) rs.push_back(co_await c.read());
    });
    CHECK(statuses_of(rs) == std::vector<int>{500, 500, 200});
    CHECK(rs[0].res.body == "internal server error");
    CHECK_FALSE(rs[0].res.headers.contains_token("Connection", "close"));
    CHECK_FALSE(rs[1].res.headers.find("X-Injected").has_value()); // the unsendable field never went out
    CHECK(rs[2].res.body == "/fine");
    CHECK(server.connections_accepted() == 1);
    const auto failed = log.of(server_event::kind::handler_failed);
    REQUIRE(failed.size() == 2);
    CHECK(failed[0].reason == "the handler broke");
    CHECK(failed[0].status == 500);
    CHECK(failed[0].connection_id == 1);
    CHECK(failed[1].reason.starts_with("the reply cannot be sent"));
    CHECK(log.of(server_event::kind::accepted).size() == 1);
}

TEST_CASE("server: stop() ends a handler awaiting a timer at once, with terminal cancellation", "[server]") {
    asio::io_context io;
    bool entered = false, returned = false;
    error_code seen;
    const handler_fn handler = [&](server_request&) -> asio::awaitable<server_reply> {
        entered = true;
        co_await wait_for_timer(30s, seen);
        returned = true;
        co_return text_reply("too late");
    };
    http_server server(io.get_executor(), {}, handler);
    raw_conn c(io.get_executor());
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        co_await c.connect(server.port());
        co_await c.write(get("/slow"));
    });
    cstest::run_until(
        io, [&] { return entered; }, 5s, "the handler to start");
    const auto stopped_at = clock_type::now();
    server.stop();
    cstest::run_until(
        io, [&] { return returned && server.open_connections() == 0; }, 5s, "the handler to end");
    CHECK(clock_type::now() - stopped_at < 2s);
    CHECK(seen == asio::error::operation_aborted);
    raw_reply r;
    cstest::run_test(io, [&]() -> asio::awaitable<void> { r = co_await c.read(); });
    CHECK(r.ec); // nothing was answered
    CHECK(r.res.body.empty());
}

TEST_CASE("server: graceful shutdown closes idle connections now and lets requests under way finish", "[server]") {
    asio::io_context io;
    bool slow_entered = false;
    const handler_fn handler = [&](server_request& req) -> asio::awaitable<server_reply> {
        if (req.message.target == "/slow") {
            slow_entered = true;
            error_code ignored;
            co_await wait_for_timer(300ms, ignored);
        }
        co_return text_reply(req.message.target);
    };
    http_server server(io.get_executor(), {}, handler);
    std::optional<callsavvy::shutdown_result> result;
    raw_reply before, slow, partial;
    bool idle_closed = false, refused = false;
    clock_type::duration shutdown_took{};
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        raw_conn idle(ex), busy(ex), half(ex);
        co_await idle.connect(server.port());
        co_await idle.write(get("/before"));
        before = co_await idle.read(); // kept alive, then idle
        co_await busy.connect(server.port());
        co_await busy.write(get("/slow"));
        co_await half.connect(server.port());
        const std::string whole = get("/half");
        co_await half.write(whole.substr(0, 10)); // a request under way, not yet whole
        while (!slow_entered) co_await sleep_for(1ms);
        co_await sleep_for(20ms); // the server has read the partial request's first bytes

        const auto start = clock_type::now();
        asio::co_spawn(
            ex,
            [&]() -> asio::awaitable<void> {
                result = co_await server.async_shutdown(5s);
                shutdown_took = clock_type::now() - start;
            },
            asio::detached);
        idle_closed = co_await idle.closed_by_peer();
        raw_conn late(ex);
        auto [cec] = co_await late.socket().async_connect(
            asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()), as_tuple);
        refused = cec == asio::error::connection_refused;
        co_await half.write(whole.substr(10));
        partial = co_await half.read();
        slow = co_await busy.read();
        while (!result) co_await sleep_for(1ms);
    });
    CHECK(before.res.status == 200);
    CHECK(idle_closed);
    CHECK(refused);
    REQUIRE_FALSE(slow.ec);
    CHECK(slow.res.body == "/slow");
    CHECK(header(slow, "Connection") == "close");
    REQUIRE_FALSE(partial.ec);
    CHECK(partial.res.body == "/half");
    CHECK(header(partial, "Connection") == "close");
    REQUIRE(result);
    CHECK(result->finished == 2);
    CHECK(result->cancelled == 0);
    CHECK(result->idle_closed == 1);
    CHECK(shutdown_took < 3s);
    CHECK(server.open_connections() == 0);
}

TEST_CASE("server: when the grace period ends, running handlers are cancelled and their connections closed",
          "[server]") {
    asio::io_context io;
    bool entered = false;
    error_code seen;
    const handler_fn handler = [&](server_request&) -> asio::awaitable<server_reply> {
        entered = true;
        co_await wait_for_timer(30s, seen);
        co_return text_reply("too late");
    };
    http_server server(io.get_executor(), {}, handler);
    callsavvy::shutdown_result result;
    bool done = false;
    raw_reply r;
    clock_type::duration took{};
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        raw_conn c(co_await asio::this_coro::executor);
        co_await c.connect(server.port());
        co_await c.write(get("/forever"));
        while (!entered) co_await sleep_for(1ms);
        const auto start = clock_type::now();
        // Any completion token: a plain callback here.
        server.async_shutdown(200ms, [&](callsavvy::shutdown_result sr) {
            result = sr;
            done = true;
            took = clock_type::now() - start;
        });
        r = co_await c.read();
        while (!done) co_await sleep_for(1ms);
    });
    CHECK(r.ec); // closed unanswered
    CHECK(seen == asio::error::operation_aborted);
    CHECK(result.cancelled == 1);
    CHECK(result.finished == 0);
    CHECK(took >= 190ms);
    CHECK(took < 3s);
}

TEST_CASE("server: at max_connections it pauses accepting until a connection closes (the default)", "[server]") {
    asio::io_context io;
    callsavvy::server_options o;
    o.max_connections = 1;
    http_server server(io.get_executor(), o, echo_target);
    raw_reply first, second;
    std::uint64_t accepted_while_full = 0;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        raw_conn a(ex), b(ex);
        co_await a.connect(server.port());
        co_await a.write(get("/a"));
        first = co_await a.read();         // kept alive: the one connection allowed
        co_await b.connect(server.port()); // completes in the listen backlog
        co_await b.write(get("/b"));
        co_await sleep_for(200ms);
        accepted_while_full = server.connections_accepted();
        a.close();
        second = co_await b.read(); // accepted once `a` is gone
    });
    CHECK(first.res.body == "/a");
    CHECK(accepted_while_full == 1);
    REQUIRE_FALSE(second.ec);
    CHECK(second.res.body == "/b");
    CHECK(server.connections_accepted() == 2);
}

TEST_CASE("server: at max_connections with answer_503, a new connection is answered 503 with Retry-After", "[server]") {
    asio::io_context io;
    event_log log;
    callsavvy::server_options o;
    o.max_connections = 1;
    o.on_overload = callsavvy::overload_policy::answer_503;
    o.overload_retry_after = 7s;
    o.on_event = log.hook();
    http_server server(io.get_executor(), o, echo_target);
    raw_reply first, refused, again;
    bool refused_closed = false;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        raw_conn a(ex), b(ex);
        co_await a.connect(server.port());
        co_await a.write(get("/a"));
        first = co_await a.read();
        co_await b.connect(server.port());
        co_await b.write(get("/b"));
        refused = co_await b.read();
        refused_closed = co_await b.closed_by_peer();
        co_await a.write(get("/a-again"));
        again = co_await a.read(); // the served connection is not disturbed
    });
    CHECK(first.res.status == 200);
    REQUIRE_FALSE(refused.ec);
    CHECK(refused.res.status == 503);
    CHECK(header(refused, "Retry-After") == "7");
    CHECK(header(refused, "Connection") == "close");
    CHECK(refused_closed);
    CHECK(again.res.body == "/a-again");
    const auto overload = log.of(server_event::kind::rejected_overload);
    REQUIRE(overload.size() == 1);
    CHECK(overload[0].status == 503);
    CHECK(overload[0].connection_id == 2);
    CHECK(log.of(server_event::kind::accepted).size() == 1);
}

TEST_CASE("server: the accept filter and the server's own rejections are reported as events", "[server]") {
    asio::io_context io;
    event_log log;
    callsavvy::server_options o;
    o.limits.max_body_bytes = 16;
    o.on_event = log.hook();
    http_server server(io.get_executor(), o, echo_target);
    bool refuse_next = true, throw_next = true;
    server.set_accept_filter([&](const asio::ip::tcp::endpoint&) {
        if (std::exchange(refuse_next, false)) return false;
        if (std::exchange(throw_next, false)) throw std::runtime_error("the filter broke");
        return true;
    });
    raw_reply filtered, thrown, too_large;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        filtered = co_await roundtrip(server.port(), get("/x"));
        thrown = co_await roundtrip(server.port(), get("/y")); // a filter that throws refuses
        // and the accept loop goes on: the next connection is served
        too_large = co_await roundtrip(server.port(), "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 99\r\n\r\n");
    });
    CHECK(filtered.ec);
    CHECK(thrown.ec);
    CHECK(too_large.res.status == 413);
    const auto by_filter = log.of(server_event::kind::rejected_by_filter);
    REQUIRE(by_filter.size() == 2);
    CHECK(by_filter[0].connection_id == 1);
    CHECK(by_filter[0].remote.address().to_string() == "127.0.0.1");
    const auto rejected = log.of(server_event::kind::request_rejected);
    REQUIRE(rejected.size() == 1);
    CHECK(rejected[0].status == 413);
    CHECK(rejected[0].ec == http::error::body_too_large);
    CHECK_FALSE(rejected[0].reason.empty());
}

// =========================================================================================================
// Out of descriptors: in a forked child, so the lowered RLIMIT_NOFILE touches nothing else

namespace {

struct emfile_report {
    bool ok = false;            ///< the child got as far as serving after the descriptors came back
    int status = 0;             ///< the answer once descriptors were free again
    long long cpu_us = 0;       ///< CPU the child used while it could not accept
    long long wall_us = 0;      ///< how long that was
    std::uint64_t failures = 0; ///< accept_failures() over that time
    char what[160] = {};        ///< why the child gave up, if it did
};

long long cpu_micros() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000000LL + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
}

/// The child's side: a server with a connection waiting in its backlog while every descriptor is taken, for
/// `starved`; then the descriptors are given back and the waiting client must be served.
emfile_report run_out_of_descriptors(std::chrono::milliseconds starved) {
    emfile_report r;
    asio::io_context io;
    callsavvy::server_options o;
    o.accept_backoff = 50ms;
    http_server server(io.get_executor(), o, echo_target);
    asio::ip::tcp::socket client(io);
    client.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()));
    // Leave a few descriptors above the highest one in use, then take all of them.
    int highest = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd"))
        highest = std::max(highest, std::stoi(e.path().filename().string()));
    const rlimit low{static_cast<rlim_t>(highest + 8), static_cast<rlim_t>(highest + 8)};
    if (setrlimit(RLIMIT_NOFILE, &low) != 0) throw std::runtime_error("setrlimit failed");
    std::vector<int> taken;
    for (int fd; (fd = ::open("/dev/null", O_RDONLY)) >= 0;) taken.push_back(fd);
    if (errno != EMFILE) throw std::runtime_error("filling the descriptor table did not end in EMFILE");
    const long long cpu0 = cpu_micros();
    const auto t0 = clock_type::now();
    io.run_for(starved);
    r.wall_us = std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - t0).count();
    r.cpu_us = cpu_micros() - cpu0;
    r.failures = server.accept_failures();
    for (const int fd : taken) ::close(fd);
    const std::string request = get("/after");
    asio::write(client, asio::buffer(request));
    raw_reply answer;
    bool answered = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            std::array<char, 4096> buf{};
            http::response_parser p;
            while (!p.done()) {
                auto [ec, n] = co_await client.async_read_some(asio::buffer(buf), as_tuple);
                if (ec) co_return;
                error_code pec;
                p.feed(std::string_view(buf.data(), n), pec);
                if (pec) co_return;
            }
            answer.res = p.release();
            answered = true;
        },
        asio::detached);
    const auto give_up = clock_type::now() + 5s;
    while (!answered && clock_type::now() < give_up) io.run_one_for(100ms);
    r.status = answered ? answer.res.status : 0;
    r.ok = answered;
    return r;
}

} // namespace

TEST_CASE("server: out of descriptors, accept backs off instead of spinning, and serves once they return", "[server]") {
    constexpr auto starved = 500ms;
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(fds[0]);
        emfile_report r;
        try {
            r = run_out_of_descriptors(starved);
        } catch (const std::exception& e) {
            std::strncpy(r.what, e.what(), sizeof r.what - 1);
        }
        const auto written = ::write(fds[1], &r, sizeof r);
        ::_exit(written == static_cast<ssize_t>(sizeof r) ? 0 : 1);
    }
    ::close(fds[1]);
    emfile_report r;
    pollfd p{fds[0], POLLIN, 0};
    const bool ready = ::poll(&p, 1, 20000) == 1;
    const bool got = ready && ::read(fds[0], &r, sizeof r) == static_cast<ssize_t>(sizeof r);
    if (!got) ::kill(pid, SIGKILL);
    int wstatus = 0;
    ::waitpid(pid, &wstatus, 0);
    ::close(fds[0]);
    REQUIRE(got);
    INFO("child: " << r.what << "; cpu " << r.cpu_us << " us of " << r.wall_us << " us, " << r.failures
                   << " failed accepts");
    REQUIRE(r.what[0] == '\0');
    CHECK(r.ok);
    CHECK(r.status == 200);
    // A back-off of 50 ms allows about wall / 50 ms attempts; a spinning loop makes thousands.
    CHECK(r.failures >= 2);
    CHECK(r.failures <= static_cast<std::uint64_t>(r.wall_us / 50000 + 3));
    CHECK(r.cpu_us < r.wall_us / 20); // spinning, even on a loaded machine, burns far more
}

// =========================================================================================================
// Several threads on one io_context

namespace {

/// Runs `io` on `n` threads until it runs out of work; joins them, stopping `io` first if `bound` passes.
class io_threads {
public:
    io_threads(asio::io_context& io, int n) : io_(io) {
        for (int i = 0; i < n; ++i) threads_.emplace_back([this] { io_.run(); });
    }
    io_threads(const io_threads&) = delete;
    io_threads& operator=(const io_threads&) = delete;
    ~io_threads() { join(1s); }

    /// True when the threads ended by themselves within `bound`.
    bool join(std::chrono::milliseconds bound) {
        if (threads_.empty()) return true;
        const auto deadline = clock_type::now() + bound;
        bool by_themselves = true;
        while (!finished() && clock_type::now() < deadline) std::this_thread::sleep_for(5ms);
        if (!finished()) {
            by_themselves = false;
            io_.stop();
        }
        for (auto& t : threads_) t.join();
        threads_.clear();
        return by_themselves;
    }

private:
    bool finished() const { return io_.stopped(); }
    asio::io_context& io_;
    std::vector<std::thread> threads_;
};

/// Waits (on the test's thread) until `pred` holds or `bound` passes.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds bound) {
    const auto deadline = clock_type::now() + bound;
    while (!pred()) {
        if (clock_type::now() >= deadline) return false;
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

/// What the handler saw, shared by the io threads.
struct concurrency_probe {
    std::mutex mutex;
    std::map<std::uint64_t, int> in_flight; ///< per connection
    int running = 0;
    int most_running = 0;
    int overlaps = 0; ///< a second request of one connection entered while one was running
    std::size_t handled = 0;
};

/// Sends `rounds` pairs of pipelined requests on one kept-alive connection and checks every answer against
/// what it asked; then waits for the server to close the connection.
asio::awaitable<void> keep_alive_client(std::uint16_t port, int id, int rounds, std::atomic<int>& ok,
                                        std::atomic<int>& wrong, std::atomic<int>& requests_done,
                                        std::atomic<int>& closed) {
    raw_conn c(co_await asio::this_coro::executor);
    co_await c.connect(port);
    for (int i = 0; i < rounds; ++i) {
        const std::string a = "/c" + std::to_string(id) + "/r" + std::to_string(i) + "/a";
        const std::string b = "/c" + std::to_string(id) + "/r" + std::to_string(i) + "/b";
        co_await c.write(get(a) + get(b));
        const raw_reply ra = co_await c.read();
        const raw_reply rb = co_await c.read();
        if (!ra.ec && !rb.ec && ra.res.body == a && rb.res.body == b) ++ok;
        else
            ++wrong;
    }
    ++requests_done;
    const bool eof = co_await c.closed_by_peer();
    if (eof) ++closed;
}

} // namespace

TEST_CASE("server on 4 threads: concurrent keep-alive clients, one request at a time per connection, answers "
          "in order; a graceful shutdown from another thread",
          "[server][concurrency]") {
    asio::io_context io(4);
    concurrency_probe probe;
    std::atomic<int> accepted_events{0};
    callsavvy::server_options o;
    o.on_event = [&](const server_event& e) {
        if (e.what == server_event::kind::accepted) ++accepted_events;
    };
    const handler_fn handler = [&](server_request& req) -> asio::awaitable<server_reply> {
        {
            const std::lock_guard<std::mutex> lock(probe.mutex);
            if (++probe.in_flight[req.connection_id] > 1) ++probe.overlaps;
            probe.most_running = std::max(probe.most_running, ++probe.running);
        }
        error_code ignored;
        co_await wait_for_timer(1ms, ignored);
        {
            const std::lock_guard<std::mutex> lock(probe.mutex);
            --probe.in_flight[req.connection_id];
            --probe.running;
            ++probe.handled;
        }
        co_return text_reply(req.message.target);
    };
    http_server server(io.get_executor(), o, handler);
    constexpr int clients = 16, rounds = 20;
    std::atomic<int> ok{0}, wrong{0}, requests_done{0}, closed{0};
    for (int i = 0; i < clients; ++i)
        asio::co_spawn(asio::make_strand(io),
                       keep_alive_client(server.port(), i, rounds, ok, wrong, requests_done, closed), asio::detached);
    io_threads threads(io, 4);
    const bool all_answered = wait_until([&] { return requests_done.load() == clients; }, 60s);
    std::promise<callsavvy::shutdown_result> shut;
    auto result = shut.get_future();
    server.async_shutdown(5s, [&shut](callsavvy::shutdown_result r) { shut.set_value(r); });
    const bool shut_down = result.wait_for(20s) == std::future_status::ready;
    const bool all_closed = wait_until([&] { return closed.load() == clients; }, 10s);
    const bool ended = threads.join(10s);
    REQUIRE(all_answered);
    REQUIRE(shut_down);
    const auto r = result.get();
    CHECK(all_closed);
    CHECK(ended);
    CHECK(ok.load() == clients * rounds);
    CHECK(wrong.load() == 0);
    CHECK(probe.overlaps == 0);
    CHECK(probe.most_running >= 2); // different connections' handlers did run at once
    CHECK(probe.handled == static_cast<std::size_t>(clients * rounds * 2));
    CHECK(accepted_events.load() == clients);
    CHECK(r.idle_closed == static_cast<std::size_t>(clients));
    CHECK(r.cancelled == 0);
    CHECK(server.open_connections() == 0);
}

TEST_CASE("server on 4 threads: stop() from another thread cancels every running handler", "[server][concurrency]") {
    asio::io_context io(4);
    std::atomic<int> entered{0}, aborted{0};
    const handler_fn handler = [&](server_request&) -> asio::awaitable<server_reply> {
        ++entered;
        error_code seen;
        co_await wait_for_timer(30s, seen);
        if (seen == asio::error::operation_aborted) ++aborted;
        co_return text_reply("too late");
    };
    http_server server(io.get_executor(), {}, handler);
    constexpr int clients = 8;
    std::atomic<int> unanswered{0};
    for (int i = 0; i < clients; ++i)
        asio::co_spawn(
            asio::make_strand(io),
            [&]() -> asio::awaitable<void> {
                raw_conn c(co_await asio::this_coro::executor);
                co_await c.connect(server.port());
                co_await c.write(get("/wait"));
                const raw_reply r = co_await c.read();
                if (r.ec) ++unanswered;
            },
            asio::detached);
    io_threads threads(io, 4);
    const bool all_entered = wait_until([&] { return entered.load() == clients; }, 20s);
    const auto stopped_at = clock_type::now();
    server.stop();
    const bool all_aborted = wait_until([&] { return aborted.load() == clients; }, 5s);
    const auto took = clock_type::now() - stopped_at;
    const bool all_unanswered = wait_until([&] { return unanswered.load() == clients; }, 5s);
    const bool ended = threads.join(10s);
    REQUIRE(all_entered);
    CHECK(all_aborted);
    CHECK(took < 2s);
    CHECK(all_unanswered);
    CHECK(ended);
    CHECK(server.open_connections() == 0);
}
