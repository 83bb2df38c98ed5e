// The client (client.hpp) when something stops a call or races its answer, against loopback servers: close(),
// the deadline and cancellations never let a request leave after the caller was told it ended; an answer
// that came with the attempt's timer is the result; a state-changing request cut short after its write is
// outcome_unknown; cancellations from another thread reach the call on its own executor; a throwing observer
// or an unsendable key cost no pool slot; Retry-After is capped; a 101 or stray TLS bytes keep a connection
// out of the pool. Each case is one the call path once got wrong.
#include <callsavvy/client.hpp>
#include <callsavvy/testing/mock_server.hpp>

#include "support/client_options.hpp"
#include "support/pki.hpp"
#include "support/run.hpp"
#include "support/script_server.hpp"

#include "support/asio.hpp"
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using callsavvy::error;
using cstest::peer;
using cstest::script_server;
namespace json = boost::json;

namespace {

const callsavvy::credentials keys{"TEST-stop-public", "TEST-stop-private-never-printed"};
constexpr auto as_tuple = asio::experimental::as_tuple(asio::use_awaitable);

callsavvy::client_options options_for(const script_server& s) {
    callsavvy::client_options o = cstest::test_client_options(s.base_url(), keys);
    o.attempt_timeout = 2s;
    o.call_deadline = 10s;
    o.tls.ca_file = cstest::test_pki().ca_file.string();
    o.jitter_seed = 7;
    o.rate_limits.enabled = false;
    return o;
}

std::string success(std::string_view resource, const json::object& data = {}) {
    return callsavvy::make_success_envelope(resource, data);
}

} // namespace

TEST_CASE("close() while a backoff's timer has already fired: nothing more is sent", "[client][stop]") {
    asio::io_context io;
    int requests = 0;
    script_server server(io.get_executor(), [&](peer& p) -> asio::awaitable<void> {
        while (auto req = co_await p.read_request()) {
            ++requests;
            co_await p.respond(503, callsavvy::make_error_envelope("getSummary", "Server error"));
        }
    });
    auto o = options_for(server);
    o.retry.backoff_base = 0ms; // the backoff's timer expires the moment it is armed
    o.retry.backoff_cap = 0ms;
    callsavvy::client* client = nullptr;
    std::optional<asio::steady_timer> closer;
    o.observer = [&](const callsavvy::call_event& e) {
        // Armed before the backoff, for an earlier instant: both expire in one turn and close() runs first,
        // when the backoff's completion is already queued and cancel() cannot reach it.
        if (!e.will_retry || closer) return;
        closer.emplace(io, std::chrono::steady_clock::now());
        closer->async_wait([&](callsavvy::error_code) { client->close(); });
    };
    callsavvy::client c(io.get_executor(), o);
    client = &c;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        callsavvy::diagnostics d;
        auto [ec, data] = co_await c.async_call("getSummary", {}, d, as_tuple);
        CHECK(ec == asio::error::operation_aborted);
        CHECK(d.detail == "client closed");
        CHECK(d.attempts == 1);
    });
    CHECK(requests == 1);
    CHECK(server.connections() == 1);
}

TEST_CASE("the deadline during a backoff whose timer already fired: nothing more is sent", "[client][stop]") {
    asio::io_context io;
    int requests = 0;
    script_server server(io.get_executor(), [&](peer& p) -> asio::awaitable<void> {
        while (auto req = co_await p.read_request()) {
            ++requests;
            // Answer just before the deadline, so the deadline expires in the same turn as the 0 ms backoff.
            asio::steady_timer t(co_await asio::this_coro::executor, 95ms);
            co_await t.async_wait(asio::use_awaitable);
            co_await p.respond(503, callsavvy::make_error_envelope("getSummary", "Server error"));
        }
    });
    auto o = options_for(server);
    o.retry.backoff_base = 0ms;
    o.retry.backoff_cap = 0ms;
    o.call_deadline = 100ms;
    // The client's thread is held until the deadline has passed, so that it expires with the backoff.
    o.observer = [&](const callsavvy::call_event& e) {
        if (e.will_retry) std::this_thread::sleep_for(20ms);
    };
    callsavvy::client c(io.get_executor(), o);
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        auto [ec, data] = co_await c.async_call("getSummary", {}, as_tuple);
        CHECK(ec == error::deadline_exceeded);
    });
    CHECK(requests == 1);
}

namespace {

// A loopback server on its own thread: reads one request, then has the client's thread blocked (a handler
// posted to the client's io_context that sleeps) while it writes an answer larger than the client's read
// buffer, until the client's attempt timer has expired. When the client's thread runs again, the first
// part of the answer and the expired timer come in one turn and the rest is read after the timer's handler.
class blocking_answer_server {
public:
    blocking_answer_server(asio::io_context& client_io, std::string answer, std::chrono::milliseconds hold)
        : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}), client_io_(client_io), answer_(std::move(answer)),
          hold_(hold), thread_([this] { run(); }) {}
    ~blocking_answer_server() {
        callsavvy::error_code ec;
        acceptor_.close(ec);
        thread_.join();
    }
    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    int requests() const { return requests_; }

private:
    void run() {
        try {
            auto s = acceptor_.accept();
            callsavvy::http::request_parser parser;
            std::array<char, 4096> buf{};
            while (!parser.done()) {
                const std::size_t n = s.read_some(asio::buffer(buf));
                callsavvy::error_code ec;
                parser.feed(std::string_view(buf.data(), n), ec);
                if (ec) return;
            }
            ++requests_;
            std::atomic<bool> held{false};
            asio::post(client_io_, [&held, this] {
                held = true;
                std::this_thread::sleep_for(hold_);
            });
            while (!held) std::this_thread::sleep_for(1ms);
            asio::write(s, asio::buffer(answer_));
            callsavvy::error_code ec;
            while (!ec) s.read_some(asio::buffer(buf), ec); // until the client closes
        } catch (const std::exception&) {
            // the acceptor was closed: the test ended without connecting
        }
    }

    asio::io_context io_;
    asio::ip::tcp::acceptor acceptor_;
    asio::io_context& client_io_;
    std::string answer_;
    std::chrono::milliseconds hold_;
    std::atomic<int> requests_{0};
    std::thread thread_;
};

} // namespace

TEST_CASE("a whole answer that arrives in the turn its attempt timer fires is the call's result", "[client][stop]") {
    asio::io_context io;
    json::object data;
    data["lead_id"] = "L-1";
    data["padding"] = std::string(24 * 1024, 'x'); // more than one read of the client's 16 KiB buffer
    const std::string body = success("createLead", data);
    const std::string answer =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n\r\n" + body;
    blocking_answer_server server(io, answer, 400ms);
    callsavvy::client_options o =
        cstest::test_client_options("http://127.0.0.1:" + std::to_string(server.port()) + "/v1/", keys);
    o.rate_limits.enabled = false;
    o.attempt_timeout = 150ms; // long passed when the held thread runs again
    callsavvy::client c(io.get_executor(), o);
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        callsavvy::diagnostics d;
        auto [ec, got] = co_await c.async_call("createLead", {}, d, as_tuple);
        INFO(ec.message() << " / " << d.detail);
        CHECK_FALSE(ec); // a state-changing call that succeeded must not be reported as a timeout
        CHECK(got.at("lead_id") == "L-1");
        CHECK(d.attempts == 1);
        c.close();
    });
    CHECK(server.requests() == 1);
}

TEST_CASE("a cancellation that comes with a 429 stops the retry: nothing is sent after the caller moved on",
          "[client][stop]") {
    asio::io_context io;
    int requests = 0;
    script_server server(io.get_executor(), [&](peer& p) -> asio::awaitable<void> {
        while (auto req = co_await p.read_request()) {
            ++requests;
            // Built before the co_await: g++ 12 destroys a conditional's temporary inside one twice.
            const std::string body = requests == 1 ? callsavvy::make_error_envelope("createLead", "Too many requests")
                                                   : success("createLead");
            co_await p.respond(requests == 1 ? 429 : 200, body);
        }
    });
    auto o = options_for(server);
    o.keys.public_key = "TEST-stop-429-cancel"; // a limiter of its own
    o.rate_limits.enabled = true;
    o.rate_limits.backoff = {1ms, 5ms};
    asio::cancellation_signal sig;
    // The caller cancels in the same turn as the 429 answer (the observer runs then): the cancellation must
    // not be forgotten when the call goes back to wait in the limiter.
    o.observer = [&](const callsavvy::call_event& e) {
        if (e.http_status == 429) sig.emit(asio::cancellation_type::terminal);
    };
    callsavvy::client c(io.get_executor(), o);
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        auto [ec, data] = co_await c.async_call("createLead", {}, asio::bind_cancellation_slot(sig.slot(), as_tuple));
        CHECK(ec == asio::error::operation_aborted);
        asio::steady_timer t(co_await asio::this_coro::executor, 50ms);
        co_await t.async_wait(asio::use_awaitable);
        c.close();
    });
    CHECK(requests == 1);
}

TEST_CASE("close() or terminal cancellation after a state-changing request was written: outcome_unknown",
          "[client][stop]") {
    for (const bool by_close : {true, false}) {
        for (const bool read_only : {false, true}) {
            DYNAMIC_SECTION((by_close ? "close()" : "terminal cancellation")
                            << (read_only ? ", read-only" : ", state-changing")) {
                asio::io_context io;
                int requests = 0;
                script_server server(io.get_executor(), [&](peer& p) -> asio::awaitable<void> {
                    if (co_await p.read_request()) ++requests;
                    co_await p.stall();
                });
                callsavvy::client c(io.get_executor(), options_for(server));
                asio::cancellation_signal sig;
                std::optional<callsavvy::error_code> result;
                callsavvy::diagnostics d;
                c.async_call_raw("deleteLead", R"({"lead_id":"L1"})", read_only, &d,
                                 asio::bind_cancellation_slot(
                                     sig.slot(), [&](callsavvy::error_code ec, json::object) { result = ec; }));
                cstest::run_until(io, [&] { return requests == 1; });
                if (by_close) c.close();
                else
                    sig.emit(asio::cancellation_type::terminal);
                cstest::run_until(io, [&] { return result.has_value(); });
                if (read_only) {
                    CHECK(*result == asio::error::operation_aborted);
                } else {
                    CHECK(*result == error::outcome_unknown);
                    CHECK(d.detail == (by_close ? "client closed after the request was written"
                                                : "cancelled after the request was written"));
                }
                c.close();
                server.stop();
            }
        }
    }
}

TEST_CASE("a cancellation emitted on the caller's thread reaches the call on the client's executor",
          "[client][stop][concurrency]") {
    using namespace asio::experimental::awaitable_operators;
    asio::io_context client_io; // runs the client and the server, on its own thread
    asio::io_context caller_io; // the caller's coroutines and timers, on the test's thread
    script_server server(client_io.get_executor(), [&](peer& p) -> asio::awaitable<void> {
        while (auto req = co_await p.read_request()) {
            asio::steady_timer t(co_await asio::this_coro::executor, 20ms);
            co_await t.async_wait(asio::use_awaitable);
            co_await p.respond(200, success("getSummary"));
        }
    });
    auto o = options_for(server);
    callsavvy::client c(client_io.get_executor(), o);
    auto work = asio::make_work_guard(client_io);
    std::thread client_thread([&] { client_io.run_for(30s); });
    int cancelled = 0, completed = 0;
    cstest::run_test(caller_io, [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 40; ++i) {
            // `||` emits the cancellation on this thread when the timer wins, mid-call.
            asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(i % 8));
            auto r = co_await (c.async_call("getSummary", {}, as_tuple) || t.async_wait(asio::use_awaitable));
            if (r.index() == 1) ++cancelled;
            else
                ++completed;
        }
    });
    asio::post(client_io, [&] {
        c.close();
        server.stop();
    });
    work.reset();
    client_thread.join();
    CHECK(cancelled + completed == 40);
    CHECK(cancelled > 0);
}

TEST_CASE("an observer that throws changes no outcome and costs no pool slot", "[client][stop]") {
    asio::io_context io;
    script_server server(io.get_executor(), [&](peer& p) -> asio::awaitable<void> {
        while (auto req = co_await p.read_request()) co_await p.respond(200, success("getSummary"));
    });
    auto o = options_for(server);
    o.max_connections = 1;
    int seen = 0;
    o.observer = [&](const callsavvy::call_event&) {
        ++seen;
        throw std::runtime_error("the observer failed");
    };
    o.call_deadline = 2s;
    callsavvy::client c(io.get_executor(), o);
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 3; ++i) {
            auto [ec, data] = co_await c.async_call("getSummary", {}, as_tuple);
            CHECK_FALSE(ec);
        }
        CHECK(c.open_connections() == 1);
        c.close();
    });
    CHECK(seen == 3);
    CHECK(server.connections() == 1);
}

TEST_CASE("a key or user agent that cannot be sent is refused when the client is made, naming the field",
          "[client][stop]") {
    asio::io_context io;
    script_server server(io.get_executor(), [&](peer& p) -> asio::awaitable<void> {
        while (auto req = co_await p.read_request()) co_await p.respond(200, success("getSummary"));
    });
    struct bad_option {
        const char* field;
        void (*apply)(callsavvy::client_options&);
    };
    for (const auto& b :
         {bad_option{"keys.private_key",
                     [](callsavvy::client_options& o) { o.keys.private_key = "TEST-from-a-file\n"; }},
          bad_option{"keys.public_key", [](callsavvy::client_options& o) { o.keys.public_key = " TEST-padded"; }},
          bad_option{"user_agent", [](callsavvy::client_options& o) { o.user_agent = "a\r\nX: 1"; }}}) {
        auto o = options_for(server);
        o.max_connections = 1;
        b.apply(o);
        callsavvy::client c(io.get_executor(), o);
        CHECK(c.configuration_error() == error::invalid_options);
        cstest::run_test(io, [&]() -> asio::awaitable<void> {
            for (int i = 0; i < 2; ++i) { // the second is not stuck behind a lost pool slot
                callsavvy::diagnostics d;
                auto [ec, data] = co_await c.async_call("getSummary", {}, d, as_tuple);
                CHECK(ec == error::invalid_options);
                CHECK(ec == callsavvy::condition::validation);
                CHECK(d.detail.find(std::string("client_options::") + b.field) != std::string::npos);
                CHECK(d.detail.find("TEST-") == std::string::npos); // the value itself is never echoed
            }
        });
    }
    CHECK(server.requests() == 0);
}

TEST_CASE("a huge Retry-After is capped, and a pause beyond the deadline fails the call at once", "[client][stop]") {
    asio::io_context io;
    callsavvy::testing::mock_options mo;
    mo.keys.push_back({"TEST-retry-after-cap", "TEST-retry-after-cap-private"});
    callsavvy::testing::mock_server server(io.get_executor(), mo);
    callsavvy::client_options o =
        cstest::test_client_options(server.base_url(), {"TEST-retry-after-cap", "TEST-retry-after-cap-private"});
    o.call_deadline = 3s;
    callsavvy::client c(io.get_executor(), o);
    server.inject({.what = callsavvy::testing::fault::kind::fail_with_status,
                   .resource = "createLead",
                   .status = 429,
                   .retry_after = std::chrono::seconds(999999999)});
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        const auto start = std::chrono::steady_clock::now();
        callsavvy::diagnostics d;
        auto [ec, data] =
            co_await c.async_call("createLead", json::parse(R"({"name":"x","phone":"+1"})").as_object(), d, as_tuple);
        const auto took = std::chrono::steady_clock::now() - start;
        CHECK(ec == error::too_many_requests);
        CHECK(d.detail == "Retry-After 999999999 s (capped at 60 s) is longer than what is left of the call deadline");
        CHECK(took < 1s); // at once, not at the deadline
        // The endpoint paused for at most the cap, not for years.
        const auto stats = c.limiter()->stats("createLead");
        CHECK(stats.paused_until <= std::chrono::steady_clock::now() + 61s);
        CHECK(stats.paused_until > std::chrono::steady_clock::now() + 50s);
        c.close();
    });
}

TEST_CASE("a connection that answered 101 is never pooled", "[client][stop]") {
    asio::io_context io;
    int connection = 0;
    script_server server(io.get_executor(), [&](peer& p) -> asio::awaitable<void> {
        const int mine = ++connection;
        while (auto req = co_await p.read_request()) {
            if (mine == 1) {
                co_await p.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: other\r\nConnection: Upgrade\r\n\r\n");
                co_await p.stall(); // what follows is another protocol: no HTTP answer ever comes
            }
            co_await p.respond(200, success("getSummary"));
        }
    });
    callsavvy::client c(io.get_executor(), options_for(server));
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        auto [ec, data] = co_await c.async_call("getSummary", {}, as_tuple);
        CHECK(ec == error::unexpected_status);
        callsavvy::diagnostics d;
        auto [ec2, data2] = co_await c.async_call("getSummary", {}, d, as_tuple);
        CHECK_FALSE(ec2);
        CHECK(d.attempts == 1); // on a new connection at once, not after an attempt lost on the upgraded one
        c.close();
        server.stop();
    });
    CHECK(server.connections() == 2);
}

TEST_CASE("TLS bytes that came behind an answer keep the connection out of the pool", "[client][stop][tls]") {
    asio::io_context io;
    int connection = 0;
    script_server server(io.get_executor(),
                         [&](peer& p) -> asio::awaitable<void> {
                             const int mine = ++connection;
                             while (auto req = co_await p.read_request()) {
                                 if (mine == 1) {
                                     // The answer and a stray record in one TCP segment (corked): the client's TLS read
                                     // takes both off the socket, so the stray one waits inside OpenSSL, not in the
                                     // kernel.
                                     auto* tls = p.tls_stream();
                                     const int fd = tls->next_layer().native_handle();
                                     int on = 1;
                                     ::setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
                                     co_await p.respond(200,
                                                        success("getSummary", json::parse(R"({"n":1})").as_object()));
                                     co_await p.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
                                     int off = 0;
                                     ::setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
                                     co_await p.stall();
                                 }
                                 co_await p.respond(200, success("getSummary", json::parse(R"({"n":2})").as_object()));
                             }
                         },
                         {.tls = true});
    auto o = options_for(server);
    o.base_url = "https://localhost:" + std::to_string(server.port()) + "/v1/";
    callsavvy::client c(io.get_executor(), o);
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        auto first = co_await c.async_call("getSummary", {});
        CHECK(first.at("n") == 1);
        asio::steady_timer t(co_await asio::this_coro::executor, 50ms);
        co_await t.async_wait(asio::use_awaitable);
        auto second = co_await c.async_call("getSummary", {});
        CHECK(second.at("n") == 2); // its own answer, not the stray bytes
        c.close();
        server.stop();
    });
    CHECK(server.connections() == 2);
}
