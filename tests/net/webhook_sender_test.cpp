// testing/webhook_sender.hpp: the webhook sender against plain loopback receivers (tests/support's scripted
// server) that check the Standard Webhooks signature themselves with OpenSSL's HMAC: single and bulk
// deliveries, HTTP and HTTPS, Basic credentials from the URL, the per-delivery timeout, connection reuse.
#include <callsavvy/testing/webhook_sender.hpp>

#include "support/pki.hpp"
#include "support/raw_http.hpp"
#include "support/run.hpp"
#include "support/script_server.hpp"

#include "support/asio.hpp"
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;
namespace http = callsavvy::http;
namespace mock = callsavvy::testing;
namespace json = boost::json;

namespace {

using cstest::raw::sleep_for;

// ---------------------------------------------------------------------------------------------------------
// Standard Webhooks signatures, computed independently of callsavvy with OpenSSL

std::string b64_encode(std::string_view in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::string b64_decode(std::string_view in) {
    std::string out(3 * in.size() / 4 + 3, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
    if (n < 0) return {};
    std::size_t len = static_cast<std::size_t>(n);
    // EVP_DecodeBlock counts the zero bytes that padding stands for.
    for (auto it = in.rbegin(); it != in.rend() && *it == '='; ++it) --len;
    out.resize(len);
    return out;
}

std::string expected_signature(std::string_view secret, std::string_view id, std::string_view timestamp,
                               std::string_view body) {
    if (secret.starts_with("whsec_")) secret.remove_prefix(6);
    const std::string key = b64_decode(secret);
    const std::string signed_content = std::string(id) + "." + std::string(timestamp) + "." + std::string(body);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(signed_content.data()), signed_content.size(), mac, &len);
    return "v1," + b64_encode(std::string_view(reinterpret_cast<const char*>(mac), len));
}

// The example secret of the Standard Webhooks specification.
constexpr std::string_view webhook_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What a receiver saw of one delivery.
struct received {
    std::string target, content_type, authorization, id, timestamp, signature, body, connection;
};

received record(const http::request& r) {
    auto h = [&](std::string_view n) { return std::string(r.headers.find(n).value_or("")); };
    return {r.target,        h("Content-Type"),      h("Authorization"),
            h("webhook-id"), h("webhook-timestamp"), h("webhook-signature"),
            r.body,          h("Connection")};
}

bool signature_ok(const received& r) {
    if (r.id.empty() || r.timestamp.empty()) return false;
    // The header may carry several space-separated signatures; ours must be one of them.
    const std::string want = expected_signature(webhook_secret, r.id, r.timestamp, r.body);
    std::string_view rest = r.signature;
    while (!rest.empty()) {
        const auto cut = rest.find(' ');
        if (rest.substr(0, cut) == want) return true;
        rest = cut == std::string_view::npos ? std::string_view{} : rest.substr(cut + 1);
    }
    return false;
}

} // namespace

// =========================================================================================================
// The webhook sender against a plain loopback receiver

TEST_CASE("webhook sender: the signature helper matches the Standard Webhooks test vector", "[webhook_sender]") {
    // From the Standard Webhooks specification's reference implementations.
    const std::string id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const std::string body = R"({"test": 2432232314})";
    const std::string want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    CHECK(expected_signature(webhook_secret, id, "1614265330", body) == want); // this file's own HMAC
    CHECK(callsavvy::webhook::sign(webhook_secret, id, 1614265330, body) == want);
}

TEST_CASE("webhook sender: raw events over HTTP with Basic credentials and a signature", "[webhook_sender]") {
    asio::io_context io;
    std::vector<received> seen;
    cstest::script_server receiver(io.get_executor(), [&](cstest::peer& p) -> asio::awaitable<void> {
        while (auto req = co_await p.read_request()) {
            seen.push_back(record(*req));
            const json::value event = json::parse(req->body);
            const auto name = event.at("event").as_string();
            if (name == "callerInformation")
                co_await p.respond(
                    200,
                    R"({"status":"success","caller_name":"Ada","caller_email":"ada@example.com","customer_info":"VIP"})");
            else if (name == "newTicketOpened")
                co_await p.respond(503, "try later", "text/plain");
            else
                co_await p.respond(204, "");
        }
    });
    mock::webhook_sender_options so;
    so.signing_secret = std::string(webhook_secret);
    mock::webhook_sender sender(
        io.get_executor(), "http://alice:s3cr%40t@127.0.0.1:" + std::to_string(receiver.port()) + "/hooks/callsavvy",
        so);
    const std::string lookup =
        R"({"event":"callerInformation","call_department":"Support","caller_number":"+2348012345678","call_status":"routing"})";
    const std::string summary =
        R"({"event":"callSummary","call_direction":"Incoming","call_department":"Sales","caller_number":"+2348012345678","recording_url":"https://rec.example/1.mp3","call_duration":"65","call_status":"finished"})";
    const std::string ticket =
        R"({"event":"newTicketOpened","ticket_id":"T-9","ticket_department":"Support","ticket_subject":"Help","sender_email":"x@example.com","ticket_status":"New"})";
    mock::delivery_result r1, r2, r3;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        r1 = co_await sender.deliver(lookup);
        r2 = co_await sender.deliver(summary, "evt_custom_1");
        r3 = co_await sender.deliver(ticket);
    });
    REQUIRE_FALSE(r1.ec);
    CHECK(r1.status == 200);
    CHECK(json::parse(r1.body).at("caller_name") == "Ada");
    REQUIRE_FALSE(r2.ec);
    CHECK(r2.status == 204);
    CHECK(r2.body.empty());
    CHECK(r2.delivery_id == "evt_custom_1");
    REQUIRE_FALSE(r3.ec);
    CHECK(r3.status == 503);
    CHECK(r3.body == "try later");

    REQUIRE(seen.size() == 3);
    CHECK(receiver.connections() == 1); // kept alive between deliveries
    const std::vector<std::string> bodies{lookup, summary, ticket};
    const std::vector<std::string> ids{r1.delivery_id, "evt_custom_1", r3.delivery_id};
    const auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    for (std::size_t i = 0; i < seen.size(); ++i) {
        INFO("delivery " << i);
        CHECK(seen[i].target == "/hooks/callsavvy");
        CHECK(seen[i].content_type == "application/json");
        CHECK(seen[i].authorization == "Basic " + b64_encode("alice:s3cr@t"));
        CHECK(seen[i].body == bodies[i]); // the raw event, byte for byte
        CHECK(seen[i].id == ids[i]);
        REQUIRE_FALSE(seen[i].timestamp.empty());
        CHECK(seen[i].timestamp.find_first_not_of("0123456789") == std::string::npos);
        CHECK(std::abs(std::stoll(seen[i].timestamp) - now) < 300);
        CHECK(seen[i].signature.starts_with("v1,"));
        CHECK(signature_ok(seen[i]));
        // A signature over anything else does not match.
        received forged = seen[i];
        forged.body += " ";
        CHECK_FALSE(signature_ok(forged));
    }
    CHECK(r1.delivery_id != r3.delivery_id);
}

TEST_CASE("webhook sender: HTTPS to a receiver with the test certificate", "[webhook_sender]") {
    asio::io_context io;
    std::vector<received> seen;
    cstest::server_options tls_opts;
    tls_opts.tls = true;
    cstest::script_server receiver(
        io.get_executor(),
        [&](cstest::peer& p) -> asio::awaitable<void> {
            while (auto req = co_await p.read_request()) {
                seen.push_back(record(*req));
                co_await p.respond(200, R"({"status":"success","reply":"Hi Vera"})");
            }
        },
        tls_opts);
    mock::webhook_sender_options so;
    so.signing_secret = std::string(webhook_secret);
    so.tls.ca_file = cstest::test_pki().ca_file.string();
    mock::webhook_sender sender(io.get_executor(), "https://localhost:" + std::to_string(receiver.port()) + "/cb", so);
    // Without the CA the receiver's certificate is not trusted.
    mock::webhook_sender untrusting(io.get_executor(), "https://localhost:" + std::to_string(receiver.port()) + "/cb");
    const std::string event =
        R"({"event":"chatbotReply","chat_id":"CH1","visitor_message":"Hello","visitor_name":"Vera"})";
    mock::delivery_result ok, refused;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        ok = co_await sender.deliver(event);
        refused = co_await untrusting.deliver(event);
    });
    REQUIRE_FALSE(ok.ec);
    CHECK(ok.status == 200);
    CHECK(json::parse(ok.body).at("reply") == "Hi Vera");
    CHECK(refused.ec);
    CHECK(refused.status == 0);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].target == "/cb");
    CHECK(seen[0].authorization.empty()); // no credentials in the URL, none sent
    CHECK(seen[0].body == event);
    CHECK(seen[0].id == ok.delivery_id);
    CHECK(signature_ok(seen[0]));
}

TEST_CASE("webhook sender: a receiver that never answers times out; a closed port fails", "[webhook_sender]") {
    asio::io_context io;
    std::size_t received_requests = 0;
    cstest::script_server receiver(io.get_executor(), [&](cstest::peer& p) -> asio::awaitable<void> {
        if (co_await p.read_request()) ++received_requests;
        co_await p.stall();
    });
    mock::webhook_sender_options so;
    so.timeout = 200ms;
    mock::webhook_sender sender(io.get_executor(), "http://127.0.0.1:" + std::to_string(receiver.port()) + "/slow", so);
    std::uint16_t closed_port = 0;
    {
        asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        closed_port = a.local_endpoint().port();
    }
    mock::webhook_sender nobody(io.get_executor(), "http://127.0.0.1:" + std::to_string(closed_port) + "/x", so);
    const std::string event = R"({"event":"newChat","chat_id":"CH9"})";
    mock::delivery_result slow, refused;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        slow = co_await sender.deliver(event);
        refused = co_await nobody.deliver(event);
    });
    CHECK(slow.ec == callsavvy::error::attempt_timeout);
    CHECK(slow.status == 0);
    CHECK(received_requests == 1);
    CHECK(refused.ec);
    CHECK(refused.status == 0);
}

TEST_CASE("webhook sender: bulk deliveries over kept-alive and fresh connections", "[webhook_sender]") {
    for (const bool keep_alive : {true, false}) {
        INFO("keep_alive " << keep_alive);
        asio::io_context io;
        std::vector<received> seen;
        std::size_t in_flight = 0, max_in_flight = 0;
        cstest::script_server receiver(io.get_executor(), [&](cstest::peer& p) -> asio::awaitable<void> {
            while (auto req = co_await p.read_request()) {
                seen.push_back(record(*req));
                max_in_flight = std::max(max_in_flight, ++in_flight);
                co_await sleep_for(1ms); // let the other deliveries overlap this one
                --in_flight;
                co_await p.respond(200, "");
                if (req->headers.contains_token("Connection", "close")) co_return;
            }
        });
        mock::webhook_sender_options so;
        so.signing_secret = std::string(webhook_secret);
        so.keep_alive = keep_alive;
        mock::webhook_sender sender(io.get_executor(), "http://127.0.0.1:" + std::to_string(receiver.port()) + "/bulk",
                                    so);
        std::vector<std::string> events;
        for (int i = 0; i < 50; ++i)
            events.push_back(
                R"({"event":"newLead","lead_id":"L)" + std::to_string(i) +
                R"(","lead_name":"Lead","lead_phone":"+2348000000000","lead_email":"l@example.com","lead_source":"web"})");
        mock::bulk_result r;
        cstest::run_test(io, [&]() -> asio::awaitable<void> { r = co_await sender.deliver_bulk(events, 4); });
        CHECK(r.sent == 50);
        CHECK(r.acknowledged == 50);
        CHECK(r.failed == 0);
        CHECK(r.statuses[200] == 50);
        CHECK(r.statuses.size() == 1);
        REQUIRE(seen.size() == 50);
        CHECK(max_in_flight <= 4);
        CHECK(max_in_flight >= 2);
        if (keep_alive) {
            CHECK(r.connections <= 4);
            CHECK(receiver.connections() <= 4);
        } else {
            CHECK(r.connections == 50);
            CHECK(receiver.connections() == 50);
        }
        std::set<std::string> bodies, ids;
        std::size_t signed_ok = 0;
        for (const auto& s : seen) {
            bodies.insert(s.body);
            ids.insert(s.id);
            if (signature_ok(s)) ++signed_ok;
        }
        CHECK(bodies == std::set<std::string>(events.begin(), events.end())); // each event once
        CHECK(ids.size() == 50);
        CHECK(signed_ok == 50);

        // A second bulk on the same sender counts its own connections; overlapping single deliveries each
        // get an answer (one uses the kept-alive connection, the others their own).
        mock::bulk_result again;
        std::vector<mock::delivery_result> singles(3);
        cstest::run_test(io, [&]() -> asio::awaitable<void> {
            again = co_await sender.deliver_bulk(std::vector<std::string>(events.begin(), events.begin() + 8), 2);
            const auto ex = co_await asio::this_coro::executor;
            for (std::size_t i = 0; i < singles.size(); ++i)
                asio::co_spawn(
                    ex, [&, i]() -> asio::awaitable<void> { singles[i] = co_await sender.deliver(events[i]); },
                    asio::detached);
            co_await sleep_for(1ms);
            for (int spins = 0; spins < 5000 && std::any_of(singles.begin(), singles.end(),
                                                            [](const auto& d) { return d.status == 0 && !d.ec; });
                 ++spins)
                co_await sleep_for(1ms);
        });
        CHECK(again.acknowledged == 8);
        if (keep_alive) CHECK(again.connections <= 2);
        else
            CHECK(again.connections == 8);
        for (const auto& d : singles) {
            CHECK_FALSE(d.ec);
            CHECK(d.status == 200);
        }
    }
}
