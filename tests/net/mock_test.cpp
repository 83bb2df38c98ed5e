// The mock Callsavvy server through a raw HTTP path (a plain socket writing request bytes, responses read
// with callsavvy's parser) and through the client: every status of spec §1 with its envelope and message,
// bad input (413, 431, 408, garbage), keep-alive and pipelining, both rate-limit modes (checked against a
// replay of the documented rule over the journal, whose times are the ones the limiter used), every fault,
// the journal; and the webhook sender against a plain loopback receiver that checks the Standard Webhooks
// signature itself with OpenSSL's HMAC.
#include <callsavvy/client.hpp>
#include <callsavvy/testing/mock_server.hpp>
#include <callsavvy/testing/webhook_sender.hpp>

#include "support/mock_client.hpp"
#include "support/pki.hpp"
#include "support/run.hpp"
#include "support/script_server.hpp"

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
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

using tuple_token = asio::experimental::as_tuple_t<asio::use_awaitable_t<>>;
constexpr tuple_token as_tuple = asio::experimental::as_tuple(asio::use_awaitable);

// ---------------------------------------------------------------------------------------------------------
// The raw HTTP path

/// The bytes of one POST to the mock, keys as given (an empty key leaves its header out).
std::string post(std::string_view resource, std::string_view body, const mock::api_key& k = mock::sandbox_key(),
                 std::string_view extra_headers = "") {
    std::string r =
        "POST /v1/" + std::string(resource) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";
    if (!k.public_key.empty()) r += "Public-Key: " + k.public_key + "\r\n";
    if (!k.private_key.empty()) r += "Private-Key: " + k.private_key + "\r\n";
    r += extra_headers;
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    r += body;
    return r;
}

struct raw_reply {
    error_code ec{}; ///< set when no whole response arrived (eof: closed before any byte of one)
    http::response res{};
    bool chunked = false;
};

/// One plain TCP connection to the server; responses are read with callsavvy's response parser, and bytes
/// beyond one response stay for the next read (pipelining).
class raw_conn {
public:
    explicit raw_conn(const asio::any_io_executor& ex) : socket_(ex) {}

    asio::awaitable<void> connect(std::uint16_t port) {
        const asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
        co_await socket_.async_connect(ep, asio::use_awaitable);
    }

    asio::awaitable<error_code> write(std::string bytes) {
        auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(bytes), as_tuple);
        (void)n;
        co_return ec;
    }

    asio::awaitable<raw_reply> read() {
        raw_reply out;
        http::response_parser p;
        for (;;) {
            if (!pending_.empty()) {
                error_code pec;
                const std::size_t used = p.feed(pending_, pec);
                pending_.erase(0, used);
                if (pec) {
                    out.ec = pec;
                    co_return out;
                }
                if (p.done()) break;
            }
            auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buf_), as_tuple);
            if (ec) {
                error_code fec;
                p.finish(fec);
                if (!fec && p.done()) break;
                out.ec = fec ? fec : ec;
                co_return out;
            }
            pending_.append(buf_.data(), n);
        }
        out.chunked = p.chunked();
        out.res = p.release();
        co_return out;
    }

    /// One request, one response.
    asio::awaitable<raw_reply> call(std::string_view resource, std::string_view body = "{}") {
        const error_code wec = co_await write(post(resource, body));
        if (wec) {
            raw_reply r;
            r.ec = wec;
            co_return r;
        }
        co_return co_await read();
    }

    /// True when the server has closed: the next read ends (EOF or reset) without a byte.
    asio::awaitable<bool> closed_by_peer() {
        if (!pending_.empty()) co_return false;
        auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buf_), as_tuple);
        co_return ec&& n == 0;
    }

    void close() {
        error_code ignored;
        socket_.close(ignored);
    }

private:
    asio::ip::tcp::socket socket_;
    std::string pending_;
    std::array<char, 16 * 1024> buf_{};
};

/// A fresh connection, one request's bytes, one response.
asio::awaitable<raw_reply> roundtrip(std::uint16_t port, std::string bytes) {
    raw_conn c(co_await asio::this_coro::executor);
    co_await c.connect(port);
    co_await c.write(std::move(bytes));
    co_return co_await c.read();
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
}

/// The envelope of an answer (spec §1).
struct envelope {
    std::string resource;
    std::string status;
    std::string message;
    json::object data;
    bool parsed = false;
};

envelope envelope_of(const raw_reply& r) {
    envelope e;
    error_code ec;
    json::value v = json::parse(r.res.body, ec);
    if (ec || !v.is_object()) return e;
    const auto& o = v.as_object();
    e.parsed = true;
    if (const auto* x = o.if_contains("resource"); x && x->is_string()) e.resource = std::string(x->get_string());
    if (const auto* x = o.if_contains("status"); x && x->is_string()) e.status = std::string(x->get_string());
    if (const auto* x = o.if_contains("message"); x && x->is_string()) e.message = std::string(x->get_string());
    if (const auto* x = o.if_contains("data"); x && x->is_object()) e.data = x->get_object();
    return e;
}

std::string header(const raw_reply& r, std::string_view name) {
    return std::string(r.res.headers.find(name).value_or(""));
}

/// Checks an error answer: status, JSON content type, error envelope naming `resource` with `message`.
void check_error(const raw_reply& r, int status, std::string_view resource, std::string_view message) {
    INFO("answer: " << r.res.status << " " << r.res.body << " (" << r.ec.message() << ")");
    REQUIRE_FALSE(r.ec);
    CHECK(r.res.status == status);
    CHECK(header(r, "Content-Type") == "application/json");
    const envelope e = envelope_of(r);
    CHECK(e.parsed);
    CHECK(e.status == "error");
    CHECK(e.resource == resource);
    CHECK(e.message == message);
    CHECK(e.data.empty());
}

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
long first_unexplained(const std::vector<mock::journal_entry>& j, const limits_model& m, clock_type::time_point epoch) {
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
bool explained_by_fixed_windows(const std::vector<mock::journal_entry>& j, const limits_model& m,
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

std::vector<int> statuses_of(const std::vector<raw_reply>& rs) {
    std::vector<int> out;
    for (const auto& r : rs) out.push_back(r.ec ? -1 : r.res.status);
    return out;
}

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

TEST_CASE("mock raw: 403 when the source address is not on the allow-list", "[mock]") {
    asio::io_context io;
    mock::mock_options o;
    o.allowed_sources = {"10.1.2.3", "192.0.2.7"};
    mock::mock_server m(io.get_executor(), o);
    const mock::api_key nope{"nope", "nope"};
    raw_reply refused, still_refused, allowed, wrong_key;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        refused = co_await roundtrip(m.port(), post("listUsers", "{}"));
        m.allow_sources({"::1"});
        still_refused = co_await roundtrip(m.port(), post("listUsers", "{}"));
        m.allow_sources({"10.1.2.3", "127.0.0.1"});
        allowed = co_await roundtrip(m.port(), post("listUsers", "{}"));
        wrong_key = co_await roundtrip(m.port(), post("listUsers", "{}", nope));
    });
    check_error(refused, 403, "listUsers", "IP address not whitelisted");
    check_error(still_refused, 403, "listUsers", "IP address not whitelisted");
    REQUIRE_FALSE(allowed.ec);
    CHECK(allowed.res.status == 200);
    CHECK(envelope_of(allowed).data.at("users").as_array().size() == 2);
    check_error(wrong_key, 401, "listUsers", "Invalid API credentials");
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
// Bad input: the connection at fault is answered and closed, everyone else is served on

TEST_CASE("mock raw: an oversized body is answered 413 and its connection closed", "[mock]") {
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

TEST_CASE("mock raw: a client that sends a whole oversized body still reads its 413", "[mock]") {
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

TEST_CASE("mock raw: oversized headers are answered 431", "[mock]") {
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

TEST_CASE("mock raw: a slow client gets 408 and loses its connection; others are served meanwhile", "[mock]") {
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

TEST_CASE("mock raw: garbage bytes are answered 400 and that connection closed; another keeps being served", "[mock]") {
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

TEST_CASE("mock raw: keep-alive carries many requests; Connection: close ends the connection", "[mock]") {
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

TEST_CASE("mock raw: pipelined requests in one write are answered in order", "[mock]") {
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

// =========================================================================================================
// The webhook sender against a plain loopback receiver

TEST_CASE("webhook sender: the signature helper matches the Standard Webhooks test vector", "[webhook-sender]") {
    // From the Standard Webhooks specification's reference implementations.
    const std::string id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const std::string body = R"({"test": 2432232314})";
    const std::string want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    CHECK(expected_signature(webhook_secret, id, "1614265330", body) == want); // this file's own HMAC
    CHECK(callsavvy::webhook::sign(webhook_secret, id, 1614265330, body) == want);
}

TEST_CASE("webhook sender: raw events over HTTP with Basic credentials and a signature", "[webhook-sender]") {
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

TEST_CASE("webhook sender: HTTPS to a receiver with the test certificate", "[webhook-sender]") {
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

TEST_CASE("webhook sender: a receiver that never answers times out; a closed port fails", "[webhook-sender]") {
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

TEST_CASE("webhook sender: bulk deliveries over kept-alive and fresh connections", "[webhook-sender]") {
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
