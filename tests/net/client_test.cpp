// The client against loopback servers that script each connection: envelopes, statuses, bad answers,
// timeouts, keep-alive reuse, the retry-before-write and outcome_unknown rules, cancellation, shutdown, one
// write per request, keys echoed by a server redacted; and against the mock: the auth breaker.
#include <callsavvy/client.hpp>
#include <callsavvy/testing/mock_server.hpp>

#include "support/client_options.hpp"
#include "support/pki.hpp"
#include "support/run.hpp"
#include "support/script_server.hpp"

#include "support/asio.hpp"
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using callsavvy::condition;
using callsavvy::error;
using cstest::peer;
using cstest::script_server;
namespace json = boost::json;

namespace {

const callsavvy::credentials test_keys{"TEST-public-key", "TEST-private-key-never-printed"};

callsavvy::client_options options_for(const script_server& s) {
    callsavvy::client_options o = cstest::test_client_options(s.base_url(), test_keys);
    o.attempt_timeout = 2s;
    o.call_deadline = 10s;
    o.tls.ca_file = cstest::test_pki().ca_file.string();
    o.jitter_seed = 7;
    o.rate_limits.enabled = false; // these tests are about the transport; the limiter has its own
    return o;
}

// g++ 12 rejects a braced initializer list inside a co_await expression ("array used as initializer"), so
// JSON arguments of awaited calls are built from text here.
json::object obj(std::string_view text) { return json::parse(text).as_object(); }

std::string success(std::string_view resource, const json::object& data) {
    return callsavvy::make_success_envelope(resource, data);
}

// Answers every request on the connection with a success envelope echoing the request body.
asio::awaitable<void> echo_script(peer& p) {
    while (auto req = co_await p.read_request()) {
        const std::string resource = req->target.substr(req->target.rfind('/') + 1);
        json::object data;
        data["echo"] = json::parse(req->body);
        data["target"] = req->target;
        co_await p.respond(200, success(resource, data));
    }
}

std::string ok_with(std::string_view body) {
    return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

using tuple_token = asio::experimental::as_tuple_t<asio::use_awaitable_t<>>;
constexpr tuple_token as_tuple = asio::experimental::as_tuple(asio::use_awaitable);

// How much of a request the server could see at the first moment it could see any of it.
struct sighting {
    std::size_t first = 0; // bytes of the request there at that moment
    std::size_t total = 0; // bytes of the whole request
};

// Answers every request on the connection with an empty success, noting for each request what the server
// could first see of it. TCP: the script polls, between handlers and without reading, until some bytes are
// there; client and server share one io_context, so a client that wrote the head and then the body in a
// second write would resume for that second write only after this poll ran, and the poll would find the head
// alone. TLS: a read returns the content of at most one TLS record, and every write makes its own records, so
// the first read of a request split over two writes returns the head alone, however late it runs.
asio::awaitable<void> sighting_script(peer& p, std::vector<sighting>& out) {
    auto ex = co_await asio::this_coro::executor;
    const bool tls = p.tls_stream() != nullptr;
    for (;;) {
        sighting s;
        if (!tls) {
            const auto give_up = std::chrono::steady_clock::now() + 10s;
            std::optional<std::size_t> ready;
            for (;;) {
                ready = p.readable_now();
                if (!ready || *ready > 0) break;
                if (std::chrono::steady_clock::now() > give_up) throw std::runtime_error("no request arrived");
                co_await asio::post(ex, asio::use_awaitable);
            }
            if (!ready) co_return; // the client closed
            s.first = *ready;
        }
        callsavvy::http::request_parser parser;
        do {
            const std::string chunk = co_await p.read_some();
            if (chunk.empty()) co_return;
            if (tls && s.total == 0) s.first = chunk.size();
            s.total += chunk.size();
            callsavvy::error_code ec;
            parser.feed(chunk, ec);
            if (ec) throw callsavvy::system_error(ec, "sighting_script");
        } while (!parser.done());
        out.push_back(s);
        co_await p.respond(200, success("getSummary", {}));
    }
}

// Reads one whole response from `s`.
template <class Stream>
asio::awaitable<int> read_response(Stream& s) {
    callsavvy::http::response_parser parser;
    std::array<char, 4096> buf{};
    while (!parser.done()) {
        const std::size_t n = co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
        callsavvy::error_code ec;
        parser.feed(std::string_view(buf.data(), n), ec);
        if (ec) throw callsavvy::system_error(ec, "read_response");
    }
    co_return parser.get().status;
}

// A hand-made client: two requests on one connection, the first in one write, the second with its head and
// its body in two writes, back to back.
template <class Stream>
asio::awaitable<void> send_two_requests(Stream& s) {
    const std::string body = R"({"padding":")" + std::string(2000, 'x') + R"("})";
    const std::string head = "POST /v1/getSummary HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                             "Content-Length: " +
                             std::to_string(body.size()) + "\r\n\r\n";
    const std::string whole = head + body;
    co_await asio::async_write(s, asio::buffer(whole), asio::use_awaitable);
    const int first = co_await read_response(s);
    CHECK(first == 200);
    co_await asio::async_write(s, asio::buffer(head), asio::use_awaitable);
    co_await asio::async_write(s, asio::buffer(body), asio::use_awaitable);
    const int second = co_await read_response(s);
    CHECK(second == 200);
}

/// One connection of a server that answers its first request (a success of `resource` whose `field` is
/// `prefix` and the request's number) with keep-alive promised, then drops the connection while it is idle.
asio::awaitable<void> answer_then_drop(peer& p, int& requests, std::string resource, std::string field,
                                       std::string prefix) {
    auto req = co_await p.read_request();
    if (!req) co_return;
    ++requests;
    json::object data;
    data[field] = prefix + std::to_string(requests);
    co_await p.respond(200, success(resource, data));
    p.close();
}

} // namespace

TEST_CASE("a call sends one authenticated JSON POST and returns the envelope's data", "[client]") {
    asio::io_context io;
    callsavvy::http::request seen;
    script_server server(io.get_executor(), [&](peer& p) -> asio::awaitable<void> {
        auto req = co_await p.read_request();
        if (!req) co_return;
        seen = *req;
        const std::string reply = success("createTicket", obj(R"({"ticket_id":"T-1","status":"open","extra":5})"));
        co_await p.respond(200, reply);
        co_await p.wait_closed();
    });
    callsavvy::client c(io.get_executor(), options_for(server));
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        json::object data = co_await c.async_call("createTicket", obj(R"({"subject":"Hi","message":"Body"})"));
        CHECK(data.at("ticket_id") == "T-1");
        CHECK(data.at("extra") == 5); // fields the library does not know are kept
        c.close();
    });
    CHECK(seen.method == "POST");
    CHECK(seen.target == "/v1/createTicket");
    CHECK(seen.headers.find("Public-Key") == test_keys.public_key);
    CHECK(seen.headers.find("Private-Key") == test_keys.private_key);
    CHECK(seen.headers.find("Content-Type") == "application/json");
    CHECK(seen.headers.find("Host") == "127.0.0.1:" + std::to_string(server.port()));
    CHECK(json::parse(seen.body) == json::parse(R"({"subject":"Hi","message":"Body"})"));
}

TEST_CASE("one write per request: no server read ever sees the head without the body", "[client]") {
    for (const bool tls : {false, true}) {
        DYNAMIC_SECTION((tls ? "TLS" : "TCP")) {
            asio::io_context io;
            std::vector<sighting> seen;
            script_server server(io.get_executor(), [&](peer& p) { return sighting_script(p, seen); }, {.tls = tls});
            SECTION("the client") {
                callsavvy::client c(io.get_executor(), options_for(server));
                cstest::run_test(io, [&]() -> asio::awaitable<void> {
                    for (int i = 0; i < 3; ++i) {
                        json::object params;
                        params["padding"] = std::string(2000, 'x');
                        co_await c.async_call("getSummary", std::move(params));
                    }
                    c.close();
                });
                CHECK(server.connections() == 1);
                REQUIRE(seen.size() == 3);
                for (const sighting& s : seen) {
                    CHECK(s.total > 2000);
                    CHECK(s.first == s.total);
                }
            }
            SECTION("the check itself: a sender that writes head and body separately is caught") {
                cstest::run_test(io, [&]() -> asio::awaitable<void> {
                    auto ex = co_await asio::this_coro::executor;
                    asio::ip::tcp::socket socket(ex);
                    co_await socket.async_connect({asio::ip::make_address("127.0.0.1"), server.port()},
                                                  asio::use_awaitable);
                    socket.set_option(asio::ip::tcp::no_delay(true));
                    if (!tls) {
                        co_await send_two_requests(socket);
                        co_return;
                    }
                    asio::ssl::context ctx(asio::ssl::context::tls_client);
                    ctx.set_verify_mode(asio::ssl::verify_none);
                    asio::ssl::stream<asio::ip::tcp::socket&> stream(socket, ctx);
                    co_await stream.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
                    co_await send_two_requests(stream);
                });
                INFO("server: " << server.script_error());
                REQUIRE(seen.size() == 2);
                CHECK(seen[0].first == seen[0].total); // one write
                // Two writes, back to back: the server's look between them finds the head alone.
                CHECK(seen[1].first < seen[1].total);
                CHECK(seen[1].total - seen[1].first == 2014);
            }
            CHECK(server.script_error().empty());
        }
    }
}

TEST_CASE("keep-alive: sequential calls reuse one pooled connection", "[client]") {
    asio::io_context io;
    script_server server(io.get_executor(), echo_script);
    std::vector<callsavvy::call_event> events;
    auto o = options_for(server);
    o.observer = [&](const callsavvy::call_event& e) { events.push_back(e); };
    callsavvy::client c(io.get_executor(), o);
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 5; ++i) {
            json::object params;
            params["page"] = i + 1;
            auto data = co_await c.async_call("listTickets", std::move(params));
            CHECK(data.at("echo").at("page") == i + 1);
        }
        CHECK(c.open_connections() == 1);
        CHECK(c.idle_connections() == 1);
        c.close();
    });
    CHECK(server.connections() == 1);
    REQUIRE(events.size() == 5);
    CHECK_FALSE(events[0].reused_connection);
    CHECK(events[4].reused_connection);
    CHECK(events[0].http_status == 200);
    CHECK(events[0].bytes_sent > 0);
    CHECK(events[0].bytes_received > 0);
    CHECK(events[0].resource == "listTickets");
}

TEST_CASE("idle pooled connections expire and are closed", "[client]") {
    asio::io_context io;
    bool server_saw_close = false;
    script_server server(io.get_executor(), [&](peer& p) -> asio::awaitable<void> {
        while (auto req = co_await p.read_request()) co_await p.respond(200, success("listLeads", {}));
        server_saw_close = p.client_closed();
    });
    auto o = options_for(server);
    o.idle_timeout = 50ms;
    callsavvy::client c(io.get_executor(), o);
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        co_await c.async_call("listLeads", {});
        CHECK(c.idle_connections() == 1);
        asio::steady_timer t(co_await asio::this_coro::executor, 200ms);
        co_await t.async_wait(asio::use_awaitable);
        CHECK(c.idle_connections() == 0);
        CHECK(c.open_connections() == 0);
        co_await c.async_call("listLeads", {}); // a fresh connection serves the next call
        c.close();
    });
    CHECK(server_saw_close);
    CHECK(server.connections() == 2);
}

TEST_CASE("the pool never opens more than max_connections; waiters get released connections", "[client]") {
    asio::io_context io;
    script_server server(io.get_executor(), echo_script);
    auto o = options_for(server);
    o.max_connections = 2;
    callsavvy::client c(io.get_executor(), o);
    int done = 0;
    for (int i = 0; i < 10; ++i)
        c.async_call("listUsers", {{"i", i}}, [&](callsavvy::error_code ec, json::object data) {
            CHECK_FALSE(ec);
            CHECK(data.contains("echo"));
            if (++done == 10) {
                c.close();
                server.stop();
            }
        });
    io.run_for(20s);
    CHECK(done == 10);
    CHECK(server.connections() == 2);
}

TEST_CASE("error statuses map to specific errors with the server's details", "[client]") {
    struct row {
        int status;
        error expected;
        condition cond;
        const char* message;
    };
    const row rows[] = {
        {400, error::bad_request, condition::validation, "Missing required parameter: subject"},
        {401, error::unauthorized, condition::auth, "Invalid API credentials"},
        {403, error::forbidden, condition::forbidden, "IP address not whitelisted"},
        {404, error::not_found, condition::not_found, "Unknown resource: nope"},
        {405, error::method_not_allowed, condition::protocol, "Method not allowed"},
        // createLead changes state: a 5xx does not say whether the lead was made, so the outcome is unknown
        // (never re-sent); the status and the server's message stay in the diagnostics.
        {500, error::outcome_unknown, condition::outcome_unknown, "Internal error"},
        {503, error::outcome_unknown, condition::outcome_unknown, "Unavailable"},
    };
    for (const row& r : rows) {
        DYNAMIC_SECTION("HTTP " << r.status) {
            asio::io_context io;
            script_server server(io.get_executor(), [&](peer& p) -> asio::awaitable<void> {
                while (auto req = co_await p.read_request())
                    co_await p.respond(r.status, callsavvy::make_error_envelope("createLead", r.message));
            });
            auto o = options_for(server);
            callsavvy::client c(io.get_executor(), o);
            cstest::run_test(io, [&]() -> asio::awaitable<void> {
                callsavvy::diagnostics d;
                auto [ec, data] = co_await c.async_call("createLead", obj(R"({"name":"x"})"), d, as_tuple);
                CHECK(ec == r.expected);
                CHECK(ec == r.cond);
                CHECK(d.http_status == r.status);
                CHECK(d.server_message == r.message);
                CHECK(d.body == callsavvy::make_error_envelope("createLead", r.message));
                CHECK(d.attempts == 1); // createLead is not read-only: a 5xx is never re-sent
                try {
                    co_await c.async_call("createLead", obj(R"({"name":"x"})"));
                    FAIL("no exception");
                } catch (const callsavvy::api_error& e) {
                    CHECK(e.code() == r.expected);
                    CHECK(e.http_status() == r.status);
                    CHECK(e.server_message() == r.message);
                    CHECK(std::string(e.what()).find(r.message) != std::string::npos);
                    CHECK(std::string(e.what()).find(test_keys.private_key) == std::string::npos);
                    CHECK(std::string(e.what()).find(test_keys.public_key) == std::string::npos);
                }
                c.close();
            });
        }
    }
}

TEST_CASE("429 proves the request was not processed: it is retried, honouring Retry-After", "[client]") {
    asio::io_context io;
    int seen = 0;
    script_server server(io.get_executor(), [&](peer& p) -> asio::awaitable<void> {
        while (auto req = co_await p.read_request()) {
            if (++seen == 1) {
                co_await p.write("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 0\r\nContent-Length: 67\r\n\r\n"
                                 R"({"resource":"sendSms","status":"error","message":"Too many requests"})");
            } else {
                co_await p.respond(200, success("sendSms", obj(R"({"campaign_id":"C1","queued":1})")));
            }
        }
    });
    callsavvy::client c(io.get_executor(), options_for(server));
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        callsavvy::diagnostics d;
        auto data = co_await c.async_call("sendSms", obj(R"({"recipients":["+1"],"message":"m"})"), d);
        CHECK(data.at("campaign_id") == "C1");
        CHECK(d.attempts == 2);
        c.close();
    });
    CHECK(seen == 2);
}

TEST_CASE("bad answers give their specific error and leave the pool usable", "[client]") {
    struct row {
        const char* name;
        std::string reply;
        callsavvy::error_code expected;
    };
    const std::string big_header = "X-Big: " + std::string(70 * 1024, 'a') + "\r\n";
    const row rows[] = {
        {"garbage status line", "HTTP/1.1 two hundred OK\r\n\r\n", callsavvy::http::error::bad_status_line},
        {"not HTTP at all", "SSH-2.0-OpenSSH_9.2\r\n\r\n", callsavvy::http::error::bad_status_line},
        {"oversized headers", "HTTP/1.1 200 OK\r\n" + big_header + "Content-Length: 2\r\n\r\n{}",
         callsavvy::http::error::headers_too_large},
        {"invalid JSON", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"status\"", error::invalid_json},
        {"not an envelope", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", error::bad_envelope},
        {"wrong resource", ok_with(R"({"resource":"listLeads","status":"success","data":{}})"),
         error::resource_mismatch},
        {"data not an object", ok_with(R"({"resource":"getSummary","status":"success","data":1})"),
         error::bad_envelope},
        {"status not success", ok_with(R"({"resource":"getSummary","status":"error","message":"x"})"),
         error::bad_envelope},
    };
    for (const row& r : rows) {
        DYNAMIC_SECTION(r.name) {
            asio::io_context io;
            int conn = 0;
            script_server server(io.get_executor(), [&](peer& p) -> asio::awaitable<void> {
                const bool first = conn++ == 0;
                while (auto req = co_await p.read_request()) {
                    if (first) {
                        co_await p.write(r.reply);
                        co_return; // a broken connection is closed
                    }
                    co_await p.respond(200, success("getSummary", obj(R"({"business_id":"B1"})")));
                }
            });
            callsavvy::client c(io.get_executor(), options_for(server));
            cstest::run_test(io, [&]() -> asio::awaitable<void> {
                callsavvy::diagnostics d;
                auto [ec, data] = co_await c.async_call("getSummary", {}, d, as_tuple);
                CHECK(ec == r.expected);
                CHECK(d.attempts == 1);
                auto again = co_await c.async_call("getSummary", {});
                CHECK(again.at("business_id") == "B1");
                c.close();
            });
        }
    }
}

TEST_CASE("a written request whose connection is lost: outcome_unknown, never re-sent; read-only ones are retried",
          "[client]") {
    for (const bool read_only : {false, true}) {
        for (const bool mid_response : {false, true}) {
            DYNAMIC_SECTION((read_only ? "read-only" : "state-changing")
                            << (mid_response ? ", closed mid-response" : ", closed before answering")) {
                asio::io_context io;
                int requests = 0;
                script_server server(io.get_executor(), [&](peer& p) -> asio::awaitable<void> {
                    while (auto req = co_await p.read_request()) {
                        if (++requests == 1) {
                            if (mid_response) co_await p.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"res");
                            p.close();
                            co_return;
                        }
                        co_await p.respond(200, success("deleteLead", obj(R"({"deleted":true})")));
                    }
                });
                callsavvy::client c(io.get_executor(), options_for(server));
                cstest::run_test(io, [&]() -> asio::awaitable<void> {
                    callsavvy::diagnostics d;
                    auto [ec, data] =
                        co_await c.async_call_raw("deleteLead", R"({"lead_id":"L1"})", read_only, &d, as_tuple);
                    if (read_only) {
                        CHECK_FALSE(ec);
                        CHECK(d.attempts == 2);
                    } else {
                        CHECK(ec == error::outcome_unknown);
                        CHECK(ec == condition::outcome_unknown);
                        CHECK(d.attempts == 1);
                        CHECK_FALSE(d.detail.empty());
                    }
                    c.close();
                });
                CHECK(requests == (read_only ? 2 : 1));
            }
        }
    }
}

TEST_CASE("a pooled connection the server closed while idle is replaced before anything is written", "[client]") {
    asio::io_context io;
    int requests = 0;
    script_server server(io.get_executor(),
                         [&](peer& p) { return answer_then_drop(p, requests, "createContact", "contact_id", "C"); });
    std::vector<callsavvy::call_event> events;
    auto o = options_for(server);
    o.observer = [&](const callsavvy::call_event& e) { events.push_back(e); };
    callsavvy::client c(io.get_executor(), o);
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        auto first = co_await c.async_call("createContact", obj(R"({"phone":"+1"})"));
        asio::steady_timer t(co_await asio::this_coro::executor, 50ms); // let the FIN arrive
        co_await t.async_wait(asio::use_awaitable);
        auto second = co_await c.async_call("createContact", obj(R"({"phone":"+2"})"));
        CHECK(first.at("contact_id") == "C1");
        CHECK(second.at("contact_id") == "C2");
        c.close();
    });
    CHECK(requests == 2); // each non-idempotent request reached the server exactly once
    CHECK(server.connections() == 2);
    REQUIRE(events.size() == 2); // the stale connection cost no attempt
    CHECK_FALSE(events[1].reused_connection);
}

TEST_CASE("a read-only call on a pooled connection the server closed while idle is sent again at once", "[client]") {
    asio::io_context io;
    int requests = 0;
    script_server server(io.get_executor(),
                         [&](peer& p) { return answer_then_drop(p, requests, "getSummary", "business_id", "B"); });
    std::vector<callsavvy::call_event> events;
    auto o = options_for(server);
    o.observer = [&](const callsavvy::call_event& e) { events.push_back(e); };
    callsavvy::client c(io.get_executor(), o);
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        auto first = co_await c.async_get_summary({});
        asio::steady_timer t(co_await asio::this_coro::executor, 50ms); // let the FIN arrive
        co_await t.async_wait(asio::use_awaitable);
        callsavvy::diagnostics d;
        auto second = co_await c.async_get_summary({}, d);
        CHECK(first.business_id == "B1");
        CHECK(second.business_id == "B2");
        CHECK(d.attempts == 2);
        c.close();
    });
    CHECK(requests == 2); // the write on the closed socket reached no handler
    CHECK(server.connections() == 2);
    // Written without a peek on the pooled socket, which answered with its end; the retry went out at once on a
    // fresh connection.
    REQUIRE(events.size() == 3);
    CHECK(events[1].reused_connection);
    CHECK(events[1].will_retry);
    CHECK((events[1].ec == error::connection_closed || events[1].ec == asio::error::connection_reset));
    CHECK_FALSE(events[2].reused_connection);
    CHECK_FALSE(events[2].ec);
}

TEST_CASE("a server that accepts and never answers: timeout, outcome_unknown after writing", "[client]") {
    asio::io_context io;
    int requests = 0;
    script_server server(io.get_executor(), [&](peer& p) -> asio::awaitable<void> {
        if (co_await p.read_request()) ++requests;
        co_await p.stall();
    });
    auto o = options_for(server);
    o.attempt_timeout = 200ms;
    callsavvy::client c(io.get_executor(), o);
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        callsavvy::diagnostics d;
        auto [ec, data] = co_await c.async_call("createAutomatedCall", obj(R"({"phone_number":"+1"})"), d, as_tuple);
        CHECK(ec == error::outcome_unknown);
        CHECK(d.detail.find("timed out") != std::string::npos);
        // A read-only call is retried to the attempt limit, then reports the timeout itself.
        auto [ec2, data2] = co_await c.async_call_raw("listCalls", "{}", true, &d, as_tuple);
        CHECK(ec2 == error::attempt_timeout);
        CHECK(ec2 == condition::timeout);
        CHECK(d.attempts == 3);
        CHECK(c.open_connections() == 0); // timed-out connections are closed, not pooled
        c.close();
    });
    CHECK(requests == 4);
    server.stop();
}

TEST_CASE("the call deadline bounds every attempt and wait", "[client]") {
    asio::io_context io;
    script_server server(io.get_executor(), [&](peer& p) -> asio::awaitable<void> { co_await p.stall(); });
    auto o = options_for(server);
    o.attempt_timeout = 10s;
    o.call_deadline = 150ms;
    callsavvy::client c(io.get_executor(), o);
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        callsavvy::diagnostics d;
        auto [ec, data] = co_await c.async_call_raw("listLeads", "{}", true, &d, as_tuple);
        CHECK(ec == error::deadline_exceeded);
        CHECK(ec == condition::timeout);
        c.close();
    });
}

TEST_CASE("connection refused on every address is retried, then reported as a transport failure", "[client]") {
    asio::io_context io;
    asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
    const auto port = probe.local_endpoint().port();
    probe.close(); // nothing listens there now
    callsavvy::client_options o;
    o.keys = test_keys;
    o.base_url = "http://127.0.0.1:" + std::to_string(port) + "/v1/";
    o.retry.backoff_base = 1ms;
    o.proxy.from_environment = false;
    o.rate_limits.enabled = false;
    callsavvy::client c(io.get_executor(), o);
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        callsavvy::diagnostics d;
        auto [ec, data] = co_await c.async_call("createLead", {}, d, as_tuple);
        CHECK(ec == error::connect_failed);
        CHECK(ec == condition::transport);
        CHECK(d.attempts == 3); // refused: nothing was sent, so even a state-changing call may try again
        CHECK(d.detail.find("refused") != std::string::npos);
    });
}

TEST_CASE("TLS: verified by default, with specific errors for each failure", "[client][tls]") {
    const auto& pki = cstest::test_pki();
    struct row {
        const char* name;
        const cstest::key_pair* cert;
        callsavvy::error_code expected;
        const char* detail;
    };
    const row rows[] = {
        {"trusted", &pki.localhost, {}, ""},
        {"wrong host name", &pki.wrong_host, error::tls_hostname_mismatch, "mismatch"},
        {"untrusted (self-signed)", &pki.self_signed, error::tls_certificate_untrusted, "self"},
        {"expired", &pki.expired, error::tls_certificate_invalid, "expired"},
    };
    for (const row& r : rows) {
        DYNAMIC_SECTION(r.name) {
            asio::io_context io;
            script_server server(io.get_executor(), echo_script, {.tls = true, .cert = r.cert});
            callsavvy::client c(io.get_executor(), options_for(server));
            cstest::run_test(io, [&]() -> asio::awaitable<void> {
                callsavvy::diagnostics d;
                auto [ec, data] = co_await c.async_call("getSummary", {}, d, as_tuple);
                CHECK(ec == r.expected);
                if (ec) {
                    CHECK(ec == condition::tls);
                    CHECK(d.attempts == 1); // a certificate problem does not go away by retrying
                    CHECK(d.detail.find(r.detail) != std::string::npos);
                } else {
                    CHECK(data.at("target") == "/v1/getSummary");
                }
                c.close();
            });
        }
    }
}

TEST_CASE("TLS: system store without the private CA refuses; insecure opt-out and CA directory", "[client][tls]") {
    const auto& pki = cstest::test_pki();
    asio::io_context io;
    script_server server(io.get_executor(), echo_script, {.tls = true, .cert = &pki.self_signed});
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        auto o = options_for(server);
        o.tls.ca_file.clear(); // the system store does not know the test CA
        callsavvy::client strict(io.get_executor(), o);
        auto [ec, d1] = co_await strict.async_call("getSummary", {}, as_tuple);
        CHECK(ec == error::tls_certificate_untrusted);
        o.tls.insecure_skip_verify = true;
        callsavvy::client lax(io.get_executor(), o);
        auto [ec2, d2] = co_await lax.async_call("getSummary", {}, as_tuple);
        CHECK_FALSE(ec2);
    });
    asio::io_context io2;
    script_server server2(io2.get_executor(), echo_script, {.tls = true});
    cstest::run_test(io2, [&]() -> asio::awaitable<void> {
        auto o = options_for(server2);
        o.tls.ca_file.clear();
        o.tls.ca_dir = pki.ca_dir.string();
        callsavvy::client c(io2.get_executor(), o);
        auto [ec, data] = co_await c.async_call("getSummary", {}, as_tuple);
        CHECK_FALSE(ec);
    });
}

TEST_CASE("TLS: the application's own ssl::context (client certificate)", "[client][tls]") {
    const auto& pki = cstest::test_pki();
    asio::io_context io;
    script_server server(io.get_executor(), echo_script, {.tls = true, .require_client_cert = true});
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        auto o = options_for(server);
        callsavvy::client without(io.get_executor(), o);
        auto [ec, d1] = co_await without.async_call("getSummary", {}, as_tuple);
        CHECK(ec); // the server demands a certificate
        auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
        ctx->load_verify_file(pki.ca_file.string());
        ctx->use_certificate_chain_file(pki.client.cert_file.string());
        ctx->use_private_key_file(pki.client.key_file.string(), asio::ssl::context::pem);
        o.tls.context = ctx;
        callsavvy::client with(io.get_executor(), o);
        auto [ec2, d2] = co_await with.async_call("getSummary", {}, as_tuple);
        CHECK_FALSE(ec2);
        // The application's context still gets the host name checked.
        o.base_url = "https://127.0.0.2:" + std::to_string(server.port()) + "/v1/";
        callsavvy::client wrong(io.get_executor(), o);
        auto [ec3, d3] = co_await wrong.async_call("getSummary", {}, as_tuple);
        CHECK(ec3);
    });
}

TEST_CASE("cancellation: any type before writing, only terminal once the request is on the wire", "[client]") {
    using namespace asio::experimental::awaitable_operators;
    asio::io_context io;
    int requests = 0;
    // Rung when the server has read a request: the tests below cancel only once the request is on the wire,
    // however long connecting takes on a loaded machine.
    std::optional<asio::steady_timer> bell;
    script_server server(io.get_executor(), [&](peer& p) -> asio::awaitable<void> {
        while (auto req = co_await p.read_request()) {
            ++requests;
            if (bell) bell->cancel();
            asio::steady_timer t(co_await asio::this_coro::executor, 100ms);
            co_await t.async_wait(asio::use_awaitable);
            co_await p.respond(200, success("getSummary", obj(R"({"ok":true})")));
        }
    });
    callsavvy::client c(io.get_executor(), options_for(server));
    const auto wait_for_request = [&](int n) { cstest::run_until(io, [&] { return requests == n; }); };
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        // Terminal cancellation while waiting for the answer (awaitable_operators emit it): aborted.
        bell.emplace(co_await asio::this_coro::executor, asio::steady_timer::time_point::max());
        auto r = co_await (c.async_call("getSummary", {}) || bell->async_wait(as_tuple));
        CHECK(r.index() == 1);
        CHECK(requests == 1);
    });
    {
        // Partial cancellation after the request was written is ignored: the call completes.
        asio::cancellation_signal sig;
        std::optional<callsavvy::error_code> ec;
        json::object data;
        c.async_call("getSummary", {},
                     asio::bind_cancellation_slot(sig.slot(), [&](callsavvy::error_code e, json::object d) {
                         ec = e;
                         data = std::move(d);
                     }));
        wait_for_request(2);
        sig.emit(asio::cancellation_type::partial);
        cstest::run_until(io, [&] { return ec.has_value(); });
        CHECK_FALSE(*ec);
        CHECK(data.at("ok") == true);
    }
    {
        // A partial cancellation the call ignores does not swallow a terminal one that follows.
        asio::cancellation_signal sig;
        std::optional<callsavvy::error_code> ec;
        c.async_call("getSummary", {},
                     asio::bind_cancellation_slot(sig.slot(), [&](callsavvy::error_code e, json::object) { ec = e; }));
        wait_for_request(3);
        sig.emit(asio::cancellation_type::partial);
        cstest::run_ready(io);
        CHECK_FALSE(ec.has_value());
        sig.emit(asio::cancellation_type::terminal);
        cstest::run_until(io, [&] { return ec.has_value(); });
        CHECK(*ec == asio::error::operation_aborted);
    }
    c.close();
    CHECK(requests == 3);

    asio::io_context io2;
    script_server slow(io2.get_executor(), [&](peer& p) -> asio::awaitable<void> {
        while (auto req = co_await p.read_request()) {
            asio::steady_timer t(co_await asio::this_coro::executor, 100ms);
            co_await t.async_wait(asio::use_awaitable);
            co_await p.respond(200, success("getSummary", {}));
        }
    });
    auto o = options_for(slow);
    o.max_connections = 1;
    callsavvy::client one(io2.get_executor(), o);
    std::optional<callsavvy::error_code> first_ec;
    one.async_call("getSummary", {}, [&](callsavvy::error_code ec, json::object) { first_ec = ec; });
    // The second call waits for the only connection: a total cancellation ends it there.
    asio::cancellation_signal sig;
    std::optional<callsavvy::error_code> second_ec;
    one.async_call(
        "getSummary", {},
        asio::bind_cancellation_slot(sig.slot(), [&](callsavvy::error_code ec, json::object) { second_ec = ec; }));
    cstest::run_ready(io2);
    sig.emit(asio::cancellation_type::total);
    cstest::run_until(io2, [&] { return second_ec.has_value() && first_ec.has_value(); });
    CHECK(*second_ec == asio::error::operation_aborted);
    CHECK_FALSE(*first_ec); // the cancelled waiter took nothing from the call ahead of it
    cstest::run_test(io2, [&]() -> asio::awaitable<void> {
        auto again = co_await one.async_call("getSummary", {});
        CHECK(again.empty());
        one.close();
    });
    CHECK(slow.connections() == 1);
}

TEST_CASE("cancellation during the TLS handshake: any type ends the call, nothing was sent", "[client][tls]") {
    asio::io_context io;
    // A plain TCP server that never answers the ClientHello: the client is stuck in its handshake.
    script_server server(io.get_executor(), [&](peer& p) -> asio::awaitable<void> { co_await p.stall(); });
    auto o = options_for(server);
    o.base_url = "https://localhost:" + std::to_string(server.port()) + "/v1/";
    callsavvy::client c(io.get_executor(), o);
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        asio::cancellation_signal sig;
        asio::steady_timer t(co_await asio::this_coro::executor, 50ms);
        t.async_wait([&](callsavvy::error_code) { sig.emit(asio::cancellation_type::partial); });
        callsavvy::diagnostics d;
        auto [ec, data] =
            co_await c.async_call("createLead", {}, d, asio::bind_cancellation_slot(sig.slot(), as_tuple));
        CHECK(ec == asio::error::operation_aborted);
        CHECK(d.attempts == 1);
        CHECK(c.open_connections() == 0);
        c.close();
        server.stop();
    });
}

TEST_CASE("close(): calls in flight end with operation_aborted, new calls are refused", "[client]") {
    asio::io_context io;
    script_server server(io.get_executor(), [&](peer& p) -> asio::awaitable<void> {
        co_await p.read_request();
        co_await p.stall();
    });
    callsavvy::client c(io.get_executor(), options_for(server));
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        int done = 0;
        std::vector<callsavvy::error_code> results;
        for (int i = 0; i < 3; ++i)
            c.async_call("getSummary", {}, [&](callsavvy::error_code ec, json::object) {
                results.push_back(ec);
                ++done;
            });
        asio::steady_timer t(ex, 100ms);
        co_await t.async_wait(asio::use_awaitable);
        CHECK(done == 0);
        c.close();
        asio::steady_timer t2(ex, 50ms);
        co_await t2.async_wait(asio::use_awaitable);
        CHECK(done == 3);
        for (const auto& ec : results) CHECK(ec == asio::error::operation_aborted);
        auto [ec, data] = co_await c.async_call("getSummary", {}, as_tuple);
        CHECK(ec == error::client_closed);
        CHECK(c.open_connections() == 0);
        server.stop();
    });
}

TEST_CASE("close(): idle TLS connections end with close_notify", "[client][tls]") {
    asio::io_context io;
    bool close_notify = false;
    bool closed_seen = false;
    script_server server(io.get_executor(),
                         [&](peer& p) -> asio::awaitable<void> {
                             while (auto req = co_await p.read_request())
                                 co_await p.respond(200, success("getSummary", {}));
                             closed_seen = true;
                             close_notify = p.tls_close_notify_received();
                         },
                         {.tls = true});
    callsavvy::client c(io.get_executor(), options_for(server));
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        co_await c.async_call("getSummary", {});
        CHECK(c.idle_connections() == 1);
        c.close();
        asio::steady_timer t(co_await asio::this_coro::executor, 200ms);
        co_await t.async_wait(asio::use_awaitable);
        CHECK(c.open_connections() == 0);
    });
    CHECK(closed_seen);
    CHECK(close_notify);
}

TEST_CASE("IPv6 loopback", "[client]") {
    asio::io_context io;
    script_server v6(io.get_executor(), echo_script, {.address = "::1"});
    callsavvy::client c(io.get_executor(), options_for(v6));
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        auto data = co_await c.async_call("getSummary", {});
        CHECK(data.at("target") == "/v1/getSummary");
        c.close();
    });
}

TEST_CASE("experimental::deferred operations run when invoked", "[client]") {
    asio::io_context io;
    script_server server(io.get_executor(), echo_script);
    callsavvy::client c(io.get_executor(), options_for(server));
    auto op = c.async_call("getSummary", obj(R"({"d":1})"), asio::experimental::deferred);
    bool ran = false;
    std::move(op)([&](callsavvy::error_code ec, json::object data) {
        CHECK_FALSE(ec);
        CHECK(data.at("echo").at("d") == 1);
        ran = true;
        c.close();
        server.stop();
    });
    io.run_for(10s);
    CHECK(ran);
}

TEST_CASE("a multi-threaded io_context with the client on a strand", "[client][concurrency]") {
    asio::io_context io;
    auto strand = asio::make_strand(io);
    script_server server(strand, echo_script);
    auto o = options_for(server);
    o.max_connections = 4;
    callsavvy::client c(strand, o);
    std::atomic<int> ok{0};
    constexpr int calls = 64;
    int done = 0; // touched only on the strand
    asio::post(strand, [&] {
        for (int i = 0; i < calls; ++i) {
            json::object params;
            params["i"] = i;
            c.async_call("listContacts", std::move(params),
                         asio::bind_executor(strand, [&, i](callsavvy::error_code ec, json::object d) {
                             if (!ec && d.at("echo").at("i") == i) ++ok;
                             if (++done == calls) {
                                 c.close();
                                 server.stop();
                             }
                         }));
        }
    });
    // Both threads return once the client and the server are closed and nothing is left to run.
    std::thread t1([&] { io.run_for(20s); });
    std::thread t2([&] { io.run_for(20s); });
    t1.join();
    t2.join();
    CHECK(ok == calls);
    CHECK(server.connections() <= 4);
}

TEST_CASE("an invalid base URL or resource is reported before anything is sent", "[client]") {
    asio::io_context io;
    callsavvy::client_options o;
    o.rate_limits.enabled = false;
    o.base_url = "ftp://example.invalid/";
    callsavvy::client bad(io.get_executor(), o);
    o.base_url = "http://127.0.0.1:1/v1/";
    callsavvy::client good(io.get_executor(), o);
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        auto [ec, d] = co_await bad.async_call("getSummary", {}, as_tuple);
        CHECK(ec == error::invalid_url);
        auto [ec2, d2] = co_await good.async_call("../etc/passwd", {}, as_tuple);
        CHECK(ec2 == error::invalid_url);
    });
}

TEST_CASE("use_future and plain callbacks complete with the same results", "[client]") {
    asio::io_context io;
    script_server server(io.get_executor(), echo_script);
    callsavvy::client c(io.get_executor(), options_for(server));
    auto fut = c.async_call("getSummary", {{"a", 1}}, asio::use_future);
    json::object via_callback;
    c.async_call("getSummary", {{"a", 2}}, [&](callsavvy::error_code ec, json::object d) {
        CHECK_FALSE(ec);
        via_callback = std::move(d);
    });
    cstest::run_until(io, [&] { return fut.wait_for(0s) == std::future_status::ready && !via_callback.empty(); });
    c.close();
    CHECK(fut.get().at("echo").at("a") == 1);
    CHECK(via_callback.at("echo").at("a") == 2);
}

TEST_CASE("auth breaker: after repeated 401s calls fail with unauthorized without being sent", "[client]") {
    namespace testing = callsavvy::testing;
    asio::io_context io;
    testing::mock_server m(io.get_executor()); // knows only the sandbox key pair
    auto wrong_keys = [&](std::string public_key) {
        callsavvy::client_options o;
        o.keys = {std::move(public_key), "TEST-a-private-key-the-server-refuses"};
        o.base_url = m.base_url();
        o.proxy.from_environment = false;
        o.call_deadline = 10s;
        return o;
    };
    SECTION("calls one after another; after the cool-down one goes through, and its 401 opens it again") {
        auto o = wrong_keys("TEST-breaker-sequential");
        o.rate_limits.enabled = false;
        o.auth_breaker = {3, 300ms};
        callsavvy::client c(io.get_executor(), o);
        cstest::run_test(io, [&]() -> asio::awaitable<void> {
            for (int i = 0; i < 3; ++i) {
                callsavvy::diagnostics d;
                auto [ec, data] = co_await c.async_call("getSummary", {}, d, as_tuple);
                CHECK(ec == error::unauthorized);
                CHECK(d.http_status == 401);
                CHECK(d.attempts == 1);
            }
            const auto opened = std::chrono::steady_clock::now();
            CHECK(m.journal().size() == 3);
            for (const char* resource : {"getSummary", "listLeads", "createLead"}) {
                INFO(resource);
                callsavvy::diagnostics d;
                auto [ec, data] = co_await c.async_call(resource, {}, d, as_tuple);
                CHECK(ec == error::unauthorized);
                CHECK(ec == condition::auth);
                CHECK(d.http_status == 0);
                CHECK(d.attempts == 0);
                CHECK(d.detail.find("not sent") != std::string::npos);
            }
            try {
                co_await c.async_call("getSummary", {});
                FAIL("no exception");
            } catch (const callsavvy::api_error& e) {
                CHECK(e.code() == error::unauthorized);
                CHECK(e.http_status() == 0);
            }
            REQUIRE(std::chrono::steady_clock::now() - opened < 250ms); // all of that within the cool-down
            CHECK(m.journal().size() == 3);
            // Half-open after the cool-down: one call is sent; its 401 opens the breaker again at once.
            asio::steady_timer t(co_await asio::this_coro::executor, 350ms);
            co_await t.async_wait(asio::use_awaitable);
            callsavvy::diagnostics d;
            auto [ec, data] = co_await c.async_call("getSummary", {}, d, as_tuple);
            CHECK(ec == error::unauthorized);
            CHECK(d.http_status == 401);
            CHECK(m.journal().size() == 4);
            auto [ec2, data2] = co_await c.async_call("getSummary", {}, d, as_tuple);
            CHECK(ec2 == error::unauthorized);
            CHECK(d.attempts == 0);
            CHECK(m.journal().size() == 4);
            c.close();
        });
    }
    SECTION("a batch parked in the rate limiter when the breaker opens is not sent either") {
        auto o = wrong_keys("TEST-breaker-batch");
        o.rate_limits.per_endpoint = {1, 150ms}; // one request per window: the rest of the batch waits
        o.rate_limits.safety_margin = 20ms;
        o.auth_breaker = {2, 10s};
        callsavvy::client c(io.get_executor(), o);
        constexpr std::size_t n = 6;
        std::vector<callsavvy::diagnostics> diags(n);
        std::vector<callsavvy::error_code> results;
        for (auto& d : diags)
            c.async_call("getSummary", {}, d, [&](callsavvy::error_code ec, json::object) { results.push_back(ec); });
        cstest::run_until(
            io, [&] { return results.size() == n; }, 10s, "the batch to end");
        for (const auto& ec : results) CHECK(ec == error::unauthorized);
        CHECK(m.count("getSummary") == 2);
        std::size_t sent = 0, refused = 0;
        for (const auto& d : diags) {
            sent += d.attempts == 1 && d.http_status == 401 ? 1 : 0;
            refused += d.attempts == 0 && d.http_status == 0 ? 1 : 0;
        }
        CHECK(sent == 2);
        CHECK(refused == n - 2);
        c.close();
    }
    m.stop();
}

TEST_CASE("keys the server echoes back are redacted from the diagnostics and api_error::what()", "[client]") {
    struct row {
        const char* name;
        const char* resource;
        int status;
        std::function<std::string(const std::string& pub, const std::string& priv)> body;
        callsavvy::error_code expected;
        bool in_message, in_body, in_detail; // where the echoed keys land
    };
    const row rows[] = {
        {"an error envelope", "getSummary", 400,
         [](const std::string& pub, const std::string& priv) {
             return callsavvy::make_error_envelope("getSummary",
                                                   "Invalid parameter: Public-Key " + pub + ", Private-Key " + priv);
         },
         error::bad_request, true, true, false},
        {"a 5xx to a state-changing call", "createLead", 503,
         [](const std::string& pub, const std::string& priv) {
             return callsavvy::make_error_envelope("createLead", "upstream got Private-Key: " + priv + " for " + pub);
         },
         error::outcome_unknown, true, true, false},
        {"a 200 naming another resource", "getSummary", 200,
         [](const std::string& pub, const std::string& priv) {
             json::object env{{"resource", pub + "/" + priv}, {"status", "success"}, {"data", json::object{}}};
             return json::serialize(env);
         },
         error::resource_mismatch, false, true, true},
        {"a 200 whose status is not success", "getSummary", 200,
         [](const std::string& pub, const std::string& priv) {
             json::object env{{"resource", "getSummary"}, {"status", priv}, {"message", pub}};
             return json::serialize(env);
         },
         error::bad_envelope, true, true, true},
        {"a body that is not JSON", "getSummary", 200,
         [](const std::string& pub, const std::string& priv) {
             return "<html>Public-Key: " + pub + "<br>Private-Key: " + priv + "</html>";
         },
         error::invalid_json, false, true, false},
    };
    for (const row& r : rows) {
        DYNAMIC_SECTION(r.name) {
            asio::io_context io;
            script_server server(io.get_executor(), [&](peer& p) -> asio::awaitable<void> {
                while (auto req = co_await p.read_request()) {
                    const std::string pub(req->headers.find("Public-Key").value_or(""));
                    const std::string priv(req->headers.find("Private-Key").value_or(""));
                    co_await p.respond(r.status, r.body(pub, priv));
                }
            });
            callsavvy::client c(io.get_executor(), options_for(server));
            auto keys_absent = [](std::string_view text) {
                return text.find(test_keys.public_key) == std::string_view::npos &&
                       text.find(test_keys.private_key) == std::string_view::npos;
            };
            auto redacted = [](std::string_view text) { return text.find("[redacted]") != std::string_view::npos; };
            cstest::run_test(io, [&]() -> asio::awaitable<void> {
                callsavvy::diagnostics d;
                auto [ec, data] = co_await c.async_call(r.resource, {}, d, as_tuple);
                CHECK(ec == r.expected);
                INFO("server_message: " << d.server_message);
                INFO("body: " << d.body);
                INFO("detail: " << d.detail);
                CHECK(keys_absent(d.server_message));
                CHECK(keys_absent(d.body));
                CHECK(keys_absent(d.detail));
                CHECK(redacted(d.server_message) == r.in_message);
                CHECK(redacted(d.body) == r.in_body);
                CHECK(redacted(d.detail) == r.in_detail);
                try {
                    co_await c.async_call(r.resource, {});
                    FAIL("no exception");
                } catch (const callsavvy::api_error& e) {
                    INFO("what(): " << e.what());
                    CHECK(e.code() == r.expected);
                    CHECK(keys_absent(e.what()));
                    CHECK(redacted(e.what()) == (r.in_message || r.in_detail));
                    CHECK(keys_absent(e.body()));
                    CHECK(keys_absent(e.server_message()));
                }
                c.close();
            });
        }
    }
}

TEST_CASE("keys echoed into a typed response that fails to decode are redacted from the diagnostics", "[client]") {
    // The typed call's decode_failed path puts the data object into diagnostics::body after the attempt's
    // redaction: it redacts again.
    asio::io_context io;
    script_server server(io.get_executor(), [&](peer& p) -> asio::awaitable<void> {
        while (auto req = co_await p.read_request()) {
            json::object data;
            data["business_id"] = json::array{1, 2}; // not a string: the typed decode fails
            data["echo"] = std::string(req->headers.find("Private-Key").value_or(""));
            co_await p.respond(200, success("getSummary", data));
        }
    });
    callsavvy::client c(io.get_executor(), options_for(server));
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        callsavvy::diagnostics d;
        const callsavvy::api::get_summary_request req{}; // named: g++ 12 and braced temporaries in co_await
        auto [ec, summary] = co_await c.async_get_summary(req, d, as_tuple);
        CHECK(ec == error::decode_failed);
        INFO("body: " << d.body);
        CHECK(d.body.find(test_keys.private_key) == std::string::npos);
        c.close();
    });
}
