// The webhook listener (webhook/listener.hpp) against the mock's webhook sender and raw sockets on loopback:
// all 13 events delivered, decoded and, for the lookups, answered with every field; every bad input answered
// with its status and reported while the listener keeps serving; a handler that throws gets a 5xx and the
// next event is fine; a lookup past its deadline gets its fallback; graceful shutdown never acknowledges an
// event that was not handled; a slow client delays nobody; HTTPS; duplicates; many threads.
// No co_await inside a Catch2 assertion: g++ 12 evaluates it there more than once (each delivery would be
// sent three times).
#include <callsavvy/testing/webhook_sender.hpp>
#include <callsavvy/webhook/listener.hpp>

#include "support/pki.hpp"
#include "support/run.hpp"

#include "support/asio.hpp"
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include <sys/resource.h>
#include <vector>

using namespace std::chrono_literals;
namespace json = boost::json;
namespace wh = callsavvy::webhook;
using callsavvy::testing::webhook_sender;
using callsavvy::testing::webhook_sender_options;

namespace {

std::string url_of(const wh::listener& l, std::string_view path = "/", std::string_view userinfo = {},
                   bool tls = false) {
    return std::string(tls ? "https://" : "http://") + std::string(userinfo) + (userinfo.empty() ? "" : "@") +
           (tls ? "localhost" : "127.0.0.1") + ":" + std::to_string(l.port()) + std::string(path);
}

// The reports the observer saw, in order.
struct reports {
    std::vector<wh::delivery_report> seen;
    std::function<void(const wh::delivery_report&)> hook() {
        return [this](const wh::delivery_report& r) { seen.push_back(r); };
    }
    const wh::delivery_report& last() const {
        REQUIRE_FALSE(seen.empty());
        return seen.back();
    }
};

// Sends raw bytes on a fresh connection and returns the status of the answer (0 when closed unanswered).
asio::awaitable<int> raw_status(std::uint16_t port, std::string bytes) {
    auto ex = co_await asio::this_coro::executor;
    asio::ip::tcp::socket s(ex);
    co_await s.async_connect({asio::ip::make_address("127.0.0.1"), port}, asio::use_awaitable);
    co_await asio::async_write(s, asio::buffer(bytes), asio::use_awaitable);
    callsavvy::http::response_parser p;
    std::array<char, 4096> buf{};
    while (!p.done()) {
        auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), callsavvy::detail::use_nothrow);
        if (ec) co_return 0;
        callsavvy::error_code pec;
        p.feed(std::string_view(buf.data(), n), pec);
        if (pec) co_return -1;
    }
    co_return p.get().status;
}

constexpr std::string_view call_summary_sample =
    R"({"event":"callSummary","call_direction":"Incoming","call_department":"Support","caller_number":"+2348012345678",)"
    R"("recording_url":"https://rec.example/1.mp3","call_duration":"65","call_status":"finished","agent":"A-7"})";

asio::awaitable<void> no_op(wh::call_summary) { co_return; }

} // namespace

TEST_CASE("listener: every event of the catalog is delivered, decoded and, for a lookup, answered in full",
          "[listener]") {
    asio::io_context io;
    wh::listener l(io.get_executor(), {});
    std::map<std::string, json::object> got; // event name -> what the typed handler saw, re-encoded
    l.on<wh::caller_information>([&](wh::caller_information e) -> asio::awaitable<wh::caller_information_reply> {
        got["callerInformation"] = wh::encode(e);
        CHECK(e.caller_number == "+2348012345678");
        CHECK(e.call_status->str() == "routing");
        co_return wh::caller_information_reply{.caller_name = "Ada", .caller_email = "ada@example.com"};
    });
    l.on<wh::call_summary>([&](wh::call_summary e) -> asio::awaitable<void> {
        got["callSummary"] = wh::encode(e);
        CHECK(e.call_duration == 65); // sent as the string "65"
        CHECK(e.call_direction->str() == "Incoming");
        CHECK(e.extra.at("agent") == "A-7"); // an unknown field is kept
        co_return;
    });
    l.on<wh::auto_dialer_queue_state>([&](wh::auto_dialer_queue_state e) -> asio::awaitable<void> {
        CHECK(e.total == 100);
        CHECK(e.completed == 40); // a JSON number
        CHECK(e.queue_state->str() == "running");
        got["autoDialerQueueState"] = wh::encode(e);
        co_return;
    });
    l.on<wh::new_ticket_opened>([&](wh::new_ticket_opened e) -> asio::awaitable<void> {
        got["newTicketOpened"] = wh::encode(e);
        co_return;
    });
    l.on<wh::ticket_escalated>([&](wh::ticket_escalated e) -> asio::awaitable<void> {
        CHECK(e.escalation_level == 2);
        got["ticketEscalated"] = wh::encode(e);
        co_return;
    });
    l.on<wh::new_chat>([&](wh::new_chat e) -> asio::awaitable<void> {
        got["newChat"] = wh::encode(e);
        co_return;
    });
    l.on<wh::new_lead>([&](wh::new_lead e) -> asio::awaitable<void> {
        got["newLead"] = wh::encode(e);
        co_return;
    });
    l.on<wh::lead_status_changed>([&](wh::lead_status_changed e) -> asio::awaitable<void> {
        got["leadStatusChanged"] = wh::encode(e);
        co_return;
    });
    l.on<wh::chatbot_reply>([&](wh::chatbot_reply e) -> asio::awaitable<wh::chatbot_reply_reply> {
        got["chatbotReply"] = wh::encode(e);
        co_return wh::chatbot_reply_reply{.reply = "Hello " + e.visitor_name.value_or("?")};
    });
    l.on<wh::ai_content>([&](wh::ai_content e) -> asio::awaitable<wh::ai_content_reply> {
        got["aiContent"] = wh::encode(e);
        co_return wh::ai_content_reply{.content = "about " + e.prompt.value_or("")};
    });
    l.on<wh::ai_workflow>([&](wh::ai_workflow e) -> asio::awaitable<wh::ai_workflow_reply> {
        got["aiWorkflow"] = wh::encode(e);
        wh::ai_workflow_reply r;
        r.output = json::object{{"step_done", e.step.value_or("")}};
        co_return r;
    });
    l.on<wh::calendar_guest_validation>([&](wh::calendar_guest_validation e) -> asio::awaitable<wh::validation_reply> {
        got["calendarGuestValidation"] = wh::encode(e);
        co_return wh::validation_reply{.valid = true};
    });
    l.on<wh::form_field_validation>([&](wh::form_field_validation e) -> asio::awaitable<wh::validation_reply> {
        got["formFieldValidation"] = wh::encode(e);
        co_return wh::validation_reply{.status = wh::reply_status("error"), .valid = false, .message = "too short"};
    });
    l.start();
    webhook_sender sender(io.get_executor(), url_of(l));

    // The spec's samples: every value a string, as Callsavvy documents them (one number as a number).
    const std::vector<std::string> samples = {
        R"({"event":"callerInformation","call_department":"Sales","caller_number":"+2348012345678","call_status":"routing"})",
        std::string(call_summary_sample),
        R"({"event":"autoDialerQueueState","task_id":"TASK1","queue_state":"running","total":"100","completed":40,"failed":"3"})",
        R"({"event":"newTicketOpened","ticket_id":"T1","ticket_department":"Support","ticket_subject":"Help","sender_email":"s@example.com","ticket_status":"New"})",
        R"({"event":"ticketEscalated","ticket_id":"T1","ticket_department":"Support","last_ticket_update":"2026-11-25T06:21:24Z","escalation_level":"2"})",
        R"({"event":"newChat","chat_id":"CH1","chat_department":"Support","visitor_name":"Vera","visitor_email":"v@example.com","message":"Hi"})",
        R"({"event":"newLead","lead_id":"L1","lead_name":"Lee","lead_phone":"+1","lead_email":"l@example.com","lead_source":"web"})",
        R"({"event":"leadStatusChanged","lead_id":"L1","old_status":"new","new_status":"won","changed_by":"U1"})",
        R"({"event":"chatbotReply","chat_id":"CH1","visitor_message":"Hi","visitor_name":"Vera"})",
        R"({"event":"aiContent","request_id":"R1","prompt":"cats","context":"blog"})",
        R"({"event":"aiWorkflow","workflow_id":"W1","step":"classify","payload":{"text":"hello"}})",
        R"({"event":"calendarGuestValidation","calendar_id":"C1","guest_name":"G","guest_email":"g@example.com","guest_phone":"+1","slot_start":"2026-12-01T10:00:00Z"})",
        R"({"event":"formFieldValidation","form_id":"F1","field_name":"name","field_value":"x"})",
    };
    std::map<std::string, json::object> replies;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        for (const auto& body : samples) {
            auto r = co_await sender.deliver(body);
            const std::string name(json::parse(body).at("event").as_string());
            INFO(name << ": " << r.status << " " << r.body);
            CHECK_FALSE(r.ec);
            CHECK(r.status == 200);
            if (!r.body.empty()) replies[name] = json::parse(r.body).as_object();
        }
        l.stop();
    });
    CHECK(got.size() == 13);
    CHECK(got["callSummary"].at("caller_number") == "+2348012345678");
    REQUIRE(replies.size() == 6); // exactly the lookups answered with a body
    CHECK(
        replies["callerInformation"] ==
        json::parse(R"({"status":"success","caller_name":"Ada","caller_email":"ada@example.com","customer_info":""})"));
    CHECK(replies["chatbotReply"] == json::parse(R"({"status":"success","reply":"Hello Vera"})"));
    CHECK(replies["aiContent"] == json::parse(R"({"status":"success","content":"about cats"})"));
    CHECK(replies["aiWorkflow"].at("output") == json::parse(R"({"step_done":"classify"})"));
    CHECK(replies["calendarGuestValidation"] == json::parse(R"({"status":"success","valid":true,"message":""})"));
    CHECK(replies["formFieldValidation"] == json::parse(R"({"status":"error","valid":false,"message":"too short"})"));
    const auto stats = l.statistics();
    CHECK(stats.all.ok == 13);
    CHECK(stats.by_event.at("callSummary").ok == 1);
}

TEST_CASE("listener: every bad input gets its status, is reported, and the listener keeps serving", "[listener]") {
    asio::io_context io;
    reports seen;
    wh::listener_options o;
    o.path = "/hooks/s3cr3t-path";
    o.server.limits.max_body_bytes = 2048;
    o.observer = seen.hook();
    wh::listener l(io.get_executor(), o);
    int handled = 0;
    l.on<wh::call_summary>([&](wh::call_summary) -> asio::awaitable<void> {
        ++handled;
        co_return;
    });
    l.start();
    webhook_sender good(io.get_executor(), url_of(l, "/hooks/s3cr3t-path"));
    webhook_sender wrong_path(io.get_executor(), url_of(l, "/hooks/guess"));
    struct bad_case {
        const char* what;
        int status;
        wh::outcome outcome;
        std::string body;
    };
    const std::vector<bad_case> cases = {
        {"invalid JSON", 400, wh::outcome::rejected, "{not json"},
        {"not an object", 400, wh::outcome::rejected, "[1,2,3]"},
        {"no event", 400, wh::outcome::rejected, R"({"caller_number":"+1"})"},
        {"invalid field value", 400, wh::outcome::rejected,
         R"({"event":"callSummary","call_duration":"about a minute"})"},
        {"oversized", 413, wh::outcome::rejected, R"({"event":"callSummary","pad":")" + std::string(4096, 'x') + "\"}"},
    };
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        for (const auto& c : cases) {
            INFO(c.what);
            auto r = co_await good.deliver(c.body);
            CHECK(r.status == c.status);
            CHECK(seen.last().status == c.status);
            CHECK(seen.last().what == c.outcome);
            auto ok = co_await good.deliver(std::string(call_summary_sample)); // the next delivery is fine
            CHECK(ok.status == 200);
        }
        // The invalid field was reported with the raw body and the field's name.
        const auto& invalid = seen.seen[6];
        CHECK(invalid.detail.find("call_duration") != std::string::npos);
        CHECK(invalid.body.find("about a minute") != std::string::npos);

        auto r = co_await wrong_path.deliver(std::string(call_summary_sample));
        CHECK(r.status == 404);
        CHECK(r.body.empty()); // nothing for a prober
        CHECK(seen.last().reason == wh::rejection::wrong_path);
        const int get = co_await raw_status(l.port(), "GET /hooks/s3cr3t-path HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(get == 405);
        CHECK(seen.last().reason == wh::rejection::method_not_allowed);
        auto ok = co_await good.deliver(std::string(call_summary_sample));
        CHECK(ok.status == 200);
        l.stop();
    });
    CHECK(handled == 6);
    CHECK(l.statistics().all.rejected == 7);
    CHECK(l.statistics().all.ok == 6);
}

TEST_CASE("listener: credentials, sources and signatures are checked on the raw bytes", "[listener]") {
    asio::io_context io;
    const std::string secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    reports seen;
    SECTION("Basic credentials") {
        wh::listener_options o;
        o.verify.basic = wh::basic_credentials{.user = "callsavvy", .password = "correct horse"};
        o.observer = seen.hook();
        wh::listener l(io.get_executor(), o);
        l.on<wh::call_summary>(no_op);
        l.start();
        webhook_sender none(io.get_executor(), url_of(l));
        webhook_sender wrong(io.get_executor(), url_of(l, "/", "callsavvy:wrong"));
        webhook_sender right(io.get_executor(), url_of(l, "/", "callsavvy:correct%20horse"));
        cstest::run_test(io, [&]() -> asio::awaitable<void> {
            const auto r1 = co_await none.deliver(std::string(call_summary_sample));
            CHECK(r1.status == 401);
            CHECK(seen.last().reason == wh::rejection::missing_credentials);
            const auto r2 = co_await wrong.deliver(std::string(call_summary_sample));
            CHECK(r2.status == 401);
            CHECK(seen.last().reason == wh::rejection::wrong_credentials);
            CHECK(seen.last().detail.find("wrong") != std::string::npos);
            CHECK(seen.last().detail.find("correct horse") == std::string::npos);
            const auto r3 = co_await right.deliver(std::string(call_summary_sample));
            CHECK(r3.status == 200);
            l.stop();
        });
    }
    SECTION("source allow-list") {
        wh::listener_options o;
        o.verify.allowed_sources = {"10.0.0.0/8", "2001:db8::/32"};
        o.observer = seen.hook();
        wh::listener l(io.get_executor(), o);
        l.on<wh::call_summary>(no_op);
        l.start();
        webhook_sender s(io.get_executor(), url_of(l));
        cstest::run_test(io, [&]() -> asio::awaitable<void> {
            auto r = co_await s.deliver(std::string(call_summary_sample));
            CHECK(r.status == 403);
            CHECK(seen.last().reason == wh::rejection::source_not_allowed);
            l.stop();
        });
    }
    SECTION("signatures, with the secret rotated") {
        wh::listener_options o;
        o.verify.signing_secrets = {"whsec_b2xkIHNlY3JldCBvbGQgc2VjcmV0", secret};
        o.observer = seen.hook();
        wh::listener l(io.get_executor(), o);
        l.on<wh::call_summary>(no_op);
        l.start();
        webhook_sender unsigned_sender(io.get_executor(), url_of(l));
        webhook_sender_options other;
        other.signing_secret = "whsec_c29tZW9uZSBlbHNlJ3Mgc2VjcmV0";
        webhook_sender forged(io.get_executor(), url_of(l), other);
        webhook_sender_options mine;
        mine.signing_secret = secret;
        webhook_sender signer(io.get_executor(), url_of(l), mine);
        cstest::run_test(io, [&]() -> asio::awaitable<void> {
            const auto r4 = co_await unsigned_sender.deliver(std::string(call_summary_sample));
            CHECK(r4.status == 401);
            CHECK(seen.last().reason == wh::rejection::missing_signature_header);
            const auto r5 = co_await forged.deliver(std::string(call_summary_sample));
            CHECK(r5.status == 401);
            CHECK(seen.last().reason == wh::rejection::no_matching_signature);
            auto r = co_await signer.deliver(std::string(call_summary_sample), "msg_rotated_1");
            CHECK(r.status == 200);
            CHECK(seen.last().delivery_id == "msg_rotated_1");
            l.stop();
        });
    }
}

TEST_CASE("listener: a handler that throws gets a 5xx so the event comes again; the next one is fine", "[listener]") {
    asio::io_context io;
    reports seen;
    wh::listener_options o;
    o.observer = seen.hook();
    wh::listener l(io.get_executor(), o);
    int calls = 0;
    l.on<wh::call_summary>([&](wh::call_summary) -> asio::awaitable<void> {
        if (++calls == 1) throw std::runtime_error("database unavailable");
        co_return;
    });
    l.start();
    webhook_sender s(io.get_executor(), url_of(l));
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        auto first = co_await s.deliver(std::string(call_summary_sample));
        CHECK(first.status == 500);
        CHECK(seen.last().what == wh::outcome::handler_error);
        CHECK(seen.last().detail == "the handler threw: database unavailable");
        auto second = co_await s.deliver(std::string(call_summary_sample));
        CHECK(second.status == 200);
        CHECK(seen.last().what == wh::outcome::ok);
        l.stop();
    });
    CHECK(l.statistics().by_event.at("callSummary").handler_error == 1);
    CHECK(l.statistics().by_event.at("callSummary").ok == 1);
}

TEST_CASE("listener: a lookup past its deadline is answered with its fallback, never left hanging", "[listener]") {
    for (const bool error_status : {false, true}) {
        DYNAMIC_SECTION((error_status ? "error status" : "fallback reply")) {
            asio::io_context io;
            reports seen;
            wh::listener_options o;
            o.lookup_deadline = 100ms;
            o.on_lookup_timeout =
                error_status ? wh::lookup_timeout_answer::error_status : wh::lookup_timeout_answer::fallback_reply;
            o.observer = seen.hook();
            wh::listener l(io.get_executor(), o);
            bool handler_cancelled = false;
            l.on<wh::caller_information>(
                [&](wh::caller_information) -> asio::awaitable<wh::caller_information_reply> {
                    asio::steady_timer t(co_await asio::this_coro::executor, 5s);
                    auto [ec] = co_await t.async_wait(callsavvy::detail::use_nothrow);
                    handler_cancelled = ec == asio::error::operation_aborted;
                    co_return wh::caller_information_reply{.caller_name = "too late"};
                },
                wh::caller_information_reply{.customer_info = "unknown caller"});
            l.start();
            webhook_sender s(io.get_executor(), url_of(l));
            cstest::run_test(io, [&]() -> asio::awaitable<void> {
                const auto start = std::chrono::steady_clock::now();
                auto r = co_await s.deliver(R"({"event":"callerInformation","caller_number":"+1"})");
                CHECK(std::chrono::steady_clock::now() - start < 2s);
                if (error_status) {
                    CHECK(r.status == 503);
                } else {
                    CHECK(r.status == 200);
                    CHECK(
                        json::parse(r.body) ==
                        json::parse(
                            R"({"status":"success","caller_name":"","caller_email":"","customer_info":"unknown caller"})"));
                }
                CHECK(seen.last().what == wh::outcome::timed_out);
                asio::steady_timer t(co_await asio::this_coro::executor, 50ms);
                co_await t.async_wait(asio::use_awaitable);
                l.stop();
            });
            CHECK(handler_cancelled); // the late handler was told to stop
        }
    }
}

TEST_CASE("listener: graceful shutdown finishes handlers in flight, and acknowledges nothing it cut short",
          "[listener]") {
    for (const bool enough_grace : {true, false}) {
        DYNAMIC_SECTION((enough_grace ? "handler finishes within the grace" : "grace ends first")) {
            asio::io_context io;
            wh::listener l(io.get_executor(), {});
            bool started = false, finished = false;
            l.on<wh::call_summary>([&](wh::call_summary) -> asio::awaitable<void> {
                started = true;
                asio::steady_timer t(co_await asio::this_coro::executor, 300ms);
                co_await t.async_wait(asio::use_awaitable); // throws when cancelled
                finished = true;
            });
            l.start();
            webhook_sender s(io.get_executor(), url_of(l));
            std::optional<callsavvy::testing::delivery_result> result;
            asio::co_spawn(
                io, [&]() -> asio::awaitable<void> { result = co_await s.deliver(std::string(call_summary_sample)); },
                asio::detached);
            cstest::run_until(io, [&] { return started; });
            std::optional<callsavvy::shutdown_result> done;
            l.async_shutdown(enough_grace ? 2000ms : 50ms, [&](callsavvy::shutdown_result r) { done = r; });
            cstest::run_until(io, [&] { return done && result; });
            if (enough_grace) {
                CHECK(finished);
                CHECK(result->status == 200);
                CHECK(done->finished == 1);
            } else {
                CHECK_FALSE(finished);
                CHECK(result->status != 200); // cut short: not acknowledged, so the sender keeps it
                CHECK(done->cancelled == 1);
                CHECK(l.statistics().all.ok == 0);
            }
        }
    }
}

TEST_CASE("listener: a slow client does not delay a normal delivery, and is dropped", "[listener]") {
    asio::io_context io;
    wh::listener_options o;
    o.server.read_timeout = 300ms;
    wh::listener l(io.get_executor(), o);
    l.on<wh::call_summary>(no_op);
    l.start();
    webhook_sender s(io.get_executor(), url_of(l));
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        // A slow-loris client: a head promising 1000 bytes, then a trickle that never completes it.
        asio::ip::tcp::socket slow(ex);
        co_await slow.async_connect({asio::ip::make_address("127.0.0.1"), l.port()}, asio::use_awaitable);
        co_await asio::async_write(
            slow,
            asio::buffer(std::string_view("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"event\":")),
            asio::use_awaitable);
        const auto start = std::chrono::steady_clock::now();
        auto r = co_await s.deliver(std::string(call_summary_sample));
        CHECK(r.status == 200);
        CHECK(std::chrono::steady_clock::now() - start < 200ms);
        // The slow one gets 408 once its read deadline passes.
        std::string answer(512, '\0');
        auto [ec, n] = co_await slow.async_read_some(asio::buffer(answer), callsavvy::detail::use_nothrow);
        CHECK_FALSE(ec);
        CHECK(n > 12);
        CHECK(answer.substr(0, 12) == "HTTP/1.1 408");
        l.stop();
    });
}

TEST_CASE("listener: 2000 concurrent deliveries while 200 slow clients hold sockets: each handled once and "
          "acknowledged",
          "[listener][load]") {
    // Both ends live in this process: 2000 + 2000 sockets for the deliveries, 2 x 200 for the slow clients.
    rlimit files{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &files) == 0);
    constexpr rlim_t needed = 5000;
    if (files.rlim_cur < needed) {
        files.rlim_cur = std::min<rlim_t>(files.rlim_max, 8192);
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &files) == 0);
    }
    REQUIRE(files.rlim_cur >= needed);

    constexpr std::size_t deliveries = 2000;
    constexpr std::size_t slow_clients = 200;
    asio::io_context io;
    wh::listener_options o;
    o.server.read_timeout = 60s; // the slow clients keep their sockets for the whole test
    wh::listener l(io.get_executor(), o);
    std::map<std::string, int> handled; // by caller number
    std::size_t in_handlers = 0, most_in_handlers = 0;
    l.on<wh::call_summary>([&](wh::call_summary e) -> asio::awaitable<void> {
        ++in_handlers;
        most_in_handlers = std::max(most_in_handlers, in_handlers);
        // A handler that takes a while, so that many are in flight at once.
        asio::steady_timer t(co_await asio::this_coro::executor, 20ms);
        co_await t.async_wait(asio::use_awaitable);
        --in_handlers;
        ++handled[e.caller_number.value_or("")];
    });
    l.start();
    webhook_sender s(io.get_executor(), url_of(l));
    std::vector<std::string> events;
    events.reserve(deliveries);
    for (std::size_t i = 0; i < deliveries; ++i) {
        json::object e = json::parse(call_summary_sample).as_object();
        e["caller_number"] = "+23480" + std::to_string(10000000 + i);
        events.push_back(json::serialize(e));
    }
    callsavvy::testing::bulk_result result{};
    std::size_t slow_still_open = 0;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        std::vector<asio::ip::tcp::socket> slow;
        slow.reserve(slow_clients);
        const std::string_view partial = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"event\":";
        for (std::size_t i = 0; i < slow_clients; ++i) {
            slow.emplace_back(ex);
            co_await slow.back().async_connect({asio::ip::make_address("127.0.0.1"), l.port()}, asio::use_awaitable);
            co_await asio::async_write(slow.back(), asio::buffer(partial), asio::use_awaitable);
        }
        result = co_await s.deliver_bulk(std::move(events), deliveries);
        // The slow clients are still connected and unanswered: nothing of theirs was mistaken for an event.
        for (auto& c : slow) {
            callsavvy::error_code ec;
            if (c.available(ec) == 0 && !ec) ++slow_still_open;
        }
        l.stop();
    });
    CHECK(result.sent == deliveries);
    CHECK(result.acknowledged == deliveries);
    CHECK(result.failed == 0);
    CHECK(result.connections == deliveries);
    CHECK(slow_still_open == slow_clients);
    CHECK(handled.size() == deliveries);
    std::size_t twice = 0;
    for (const auto& [number, count] : handled)
        if (count != 1) ++twice;
    CHECK(twice == 0);
    CHECK(most_in_handlers > 100); // the deliveries really overlapped
    const auto stats = l.statistics();
    CHECK(stats.all.ok == deliveries);
    CHECK(stats.all.rejected == 0);
}

TEST_CASE("listener: HTTPS with the application's certificate", "[listener][tls]") {
    asio::io_context io;
    const auto& pki = cstest::test_pki();
    auto tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    tls->use_certificate_chain(asio::buffer(pki.localhost.cert_pem));
    tls->use_private_key(asio::buffer(pki.localhost.key_pem), asio::ssl::context::pem);
    wh::listener_options o;
    o.server.tls = tls;
    wh::listener l(io.get_executor(), o);
    int handled = 0;
    l.on<wh::call_summary>([&](wh::call_summary e) -> asio::awaitable<void> {
        handled += e.call_duration == 65 ? 1 : 0;
        co_return;
    });
    l.start();
    webhook_sender_options so;
    so.tls.ca_file = pki.ca_file.string();
    webhook_sender s(io.get_executor(), url_of(l, "/", {}, true), so);
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 3; ++i) {
            const auto r = co_await s.deliver(std::string(call_summary_sample));
            CHECK(r.status == 200);
        }
        l.stop();
    });
    CHECK(handled == 3);
}

TEST_CASE("listener: events without a handler reach the fallback as raw JSON, or are acknowledged and reported",
          "[listener]") {
    asio::io_context io;
    SECTION("fallback handler") {
        wh::listener l(io.get_executor(), {});
        std::vector<wh::raw_event> raw;
        l.on_unhandled([&](wh::raw_event e) -> asio::awaitable<std::optional<json::object>> {
            raw.push_back(e);
            if (e.info != nullptr && e.info->lookup) co_return json::object{{"reply", "from the fallback"}};
            co_return std::nullopt;
        });
        l.start();
        webhook_sender s(io.get_executor(), url_of(l));
        cstest::run_test(io, [&]() -> asio::awaitable<void> {
            const auto r6 = co_await s.deliver(R"({"event":"callRecordingReady","url":"https://x"})");
            CHECK(r6.status == 200);
            auto lookup = co_await s.deliver(R"({"event":"chatbotReply","chat_id":"C1"})");
            CHECK(lookup.status == 200);
            CHECK(json::parse(lookup.body) == json::parse(R"({"status":"success","reply":"from the fallback"})"));
            l.stop();
        });
        REQUIRE(raw.size() == 2);
        CHECK(raw[0].name == "callRecordingReady");
        CHECK(raw[0].info == nullptr);
        CHECK(raw[0].body.at("url") == "https://x");
        CHECK(raw[1].info->number == 9);
    }
    SECTION("no fallback: acknowledged and reported; strict: 503") {
        for (const bool strict : {false, true}) {
            reports seen;
            wh::listener_options o;
            o.strict = strict;
            o.observer = seen.hook();
            wh::listener l(io.get_executor(), o);
            l.start();
            webhook_sender s(io.get_executor(), url_of(l));
            cstest::run_test(io, [&]() -> asio::awaitable<void> {
                auto unknown = co_await s.deliver(R"({"event":"somethingNew","x":1})");
                CHECK(unknown.status == (strict ? 503 : 200));
                CHECK(seen.last().what == wh::outcome::unhandled);
                CHECK(seen.last().event == "somethingNew");
                auto lookup = co_await s.deliver(R"({"event":"formFieldValidation","form_id":"F"})");
                if (!strict) // a lookup nobody handles still gets every field it must carry
                    CHECK(json::parse(lookup.body) ==
                          json::parse(R"({"status":"success","valid":false,"message":""})"));
                l.stop();
            });
            CHECK(l.statistics().by_event.at("somethingNew").unhandled == 1);
        }
    }
}

TEST_CASE("listener: a signed event delivered twice is handled once; a failed first delivery runs again",
          "[listener]") {
    asio::io_context io;
    wh::listener_options o;
    const std::string secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    o.verify.signing_secrets = {secret};
    wh::listener l(io.get_executor(), o);
    int runs = 0;
    l.on<wh::chatbot_reply>([&](wh::chatbot_reply) -> asio::awaitable<wh::chatbot_reply_reply> {
        if (++runs == 1) throw std::runtime_error("first try fails");
        co_return wh::chatbot_reply_reply{.reply = "run " + std::to_string(runs)};
    });
    l.start();
    webhook_sender_options so;
    so.signing_secret = secret;
    webhook_sender s(io.get_executor(), url_of(l), so);
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        const std::string body = R"({"event":"chatbotReply","chat_id":"C1"})";
        const auto r7 = co_await s.deliver(body, "msg_1");
        CHECK(r7.status == 500);
        auto second = co_await s.deliver(body, "msg_1"); // the redelivery after the 5xx runs again
        CHECK(second.status == 200);
        auto third = co_await s.deliver(body, "msg_1"); // handled: answered again, not run
        CHECK(third.status == 200);
        CHECK(third.body == second.body);
        l.stop();
    });
    CHECK(runs == 2);
    CHECK(l.statistics().all.duplicate == 1);
}

TEST_CASE("listener: options that cannot be used are refused by name", "[listener]") {
    asio::io_context io;
    wh::listener_options bad_range;
    bad_range.verify.allowed_sources = {"10.0.0.0/33"};
    CHECK_THROWS_WITH(wh::listener(io.get_executor(), bad_range), Catch::Contains("verify.allowed_sources"));
    wh::listener_options bad_path;
    bad_path.path = "hooks";
    CHECK_THROWS_WITH(wh::listener(io.get_executor(), bad_path), Catch::Contains("path must start with '/'"));
    wh::listener_options bad_status;
    bad_status.handler_error_status = 200;
    CHECK_THROWS_WITH(wh::listener(io.get_executor(), bad_status), Catch::Contains("handler_error_status"));
    wh::listener started(io.get_executor(), {});
    started.start();
    CHECK_THROWS_AS(started.on<wh::call_summary>(no_op), std::logic_error);
    started.stop();
}

TEST_CASE("listener: IPv6", "[listener]") {
    asio::io_context io;
    wh::listener_options o;
    o.server.address = "::1";
    wh::listener l(io.get_executor(), o);
    l.on<wh::call_summary>(no_op);
    l.start();
    webhook_sender s(io.get_executor(), "http://[::1]:" + std::to_string(l.port()) + "/");
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        const auto r8 = co_await s.deliver(std::string(call_summary_sample));
        CHECK(r8.status == 200);
        l.stop();
    });
}

TEST_CASE("listener: a multi-threaded io_context, handlers serialized on the application's strand",
          "[listener][concurrency]") {
    asio::io_context io;
    auto app_strand = asio::make_strand(io);
    wh::listener_options o;
    o.handler_executor = app_strand;
    wh::listener l(io.get_executor(), o);
    int handled = 0; // touched only on app_strand
    l.on<wh::call_summary>([&](wh::call_summary) -> asio::awaitable<void> {
        ++handled;
        co_return;
    });
    l.start();
    webhook_sender s(asio::make_strand(io), url_of(l));
    std::atomic<bool> done{false};
    std::optional<callsavvy::testing::bulk_result> bulk;
    asio::co_spawn(
        s.get_executor(),
        [&]() -> asio::awaitable<void> {
            bulk = co_await s.deliver_bulk(std::vector<std::string>(200, std::string(call_summary_sample)), 16);
            l.stop();
            done = true;
        },
        asio::detached);
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) threads.emplace_back([&] { io.run_for(30s); });
    for (auto& t : threads) t.join();
    REQUIRE(done);
    CHECK(bulk->acknowledged == 200);
    CHECK(handled == 200);
    CHECK(l.statistics().all.ok == 200);
}
