// tests/support/raw_http.hpp — talking to an http_server (or the mock on it) the raw way: request bytes
// written on a plain socket, responses read with callsavvy's parser (bytes beyond one response stay for the
// next read, so pipelining can be checked), and the mock's envelope taken apart.
#pragma once

#include <callsavvy/testing/mock_server.hpp>

#include "support/asio.hpp"
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cstest {

namespace asio = callsavvy::asio;

using tuple_token = asio::experimental::as_tuple_t<asio::use_awaitable_t<>>;
inline constexpr tuple_token as_tuple = asio::experimental::as_tuple(asio::use_awaitable);

namespace http = callsavvy::http;
namespace mock = callsavvy::testing;
namespace json = boost::json;
using callsavvy::error_code;

/// The helpers, in a namespace of their own so that a test file takes them all with one using-directive.
namespace raw {

using cstest::as_tuple;

/// The bytes of one POST to the mock, keys as given (an empty key leaves its header out).
inline std::string post(std::string_view resource, std::string_view body, const mock::api_key& k = mock::sandbox_key(),
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

    asio::awaitable<void> connect(std::uint16_t port, const char* address = "127.0.0.1") {
        const asio::ip::tcp::endpoint ep(asio::ip::make_address(address), port);
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

    asio::ip::tcp::socket& socket() noexcept { return socket_; }

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
inline asio::awaitable<raw_reply> roundtrip(std::uint16_t port, std::string bytes, const char* address = "127.0.0.1") {
    raw_conn c(co_await asio::this_coro::executor);
    co_await c.connect(port, address);
    co_await c.write(std::move(bytes));
    co_return co_await c.read();
}

inline asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
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

inline envelope envelope_of(const raw_reply& r) {
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

inline std::string header(const raw_reply& r, std::string_view name) {
    return std::string(r.res.headers.find(name).value_or(""));
}

/// Checks an error answer: status, JSON content type, error envelope naming `resource` with `message`.
inline void check_error(const raw_reply& r, int status, std::string_view resource, std::string_view message) {
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

inline std::vector<int> statuses_of(const std::vector<raw_reply>& rs) {
    std::vector<int> out;
    for (const auto& r : rs) out.push_back(r.ec ? -1 : r.res.status);
    return out;
}

} // namespace raw
} // namespace cstest
