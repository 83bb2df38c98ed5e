// callsavvy/net/connection.hpp — one client connection: resolve with every address tried in turn, TCP with
// TCP_NODELAY, an optional HTTP CONNECT tunnel, an optional verified TLS session, each request written in
// one write, and the response read through the shared HTTP/1.1 parser. Users never name it; the client's
// pool owns connections.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/error.hpp>
#include <callsavvy/http/parser.hpp>
#include <callsavvy/http/serializer.hpp>
#include <callsavvy/net/proxy.hpp>
#include <callsavvy/net/tls.hpp>

#include <asio/awaitable.hpp>
#include <asio/connect.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

CALLSAVVY_BEGIN_NAMESPACE
namespace detail {

/// Awaiting with this token yields (error_code, result...) instead of throwing: the call path is written
/// with errors as values, so no exception is thrown on any expected failure.
inline constexpr auto use_nothrow = asio::experimental::as_tuple(asio::use_awaitable);

/// Where a connection goes: the origin server, optionally through a proxy.
struct route {
    std::string host; ///< origin host (no brackets for IPv6)
    std::uint16_t port = 0;
    bool tls = false;
    std::optional<proxy_endpoint> proxy;
};

class connection {
public:
    using tcp = asio::ip::tcp;
    using clock = std::chrono::steady_clock;

    explicit connection(const asio::any_io_executor& ex) : socket_(ex), resolver_(ex) {}
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Resolves, connects (every resolved address in turn), tunnels through the proxy and handshakes TLS.
    asio::awaitable<error_code> async_open(const route& r, asio::ssl::context* tls_ctx, bool verify_tls,
                                           std::string& detail) {
        const std::string& host = r.proxy ? r.proxy->host : r.host;
        const std::uint16_t port = r.proxy ? r.proxy->port : r.port;
        auto [rec, results] = co_await resolver_.async_resolve(host, std::to_string(port), use_nothrow);
        if (rec) {
            detail = (rec == asio::error::operation_aborted ? "" : host + ": " + rec.message());
            co_return rec == asio::error::operation_aborted ? rec : make_error_code(error::resolve_failed);
        }
        auto [cec, ep] = co_await asio::async_connect(socket_, results, use_nothrow);
        if (cec) {
            if (cec == asio::error::operation_aborted) co_return cec;
            detail = (r.proxy ? "proxy " : "") + host + ":" + std::to_string(port) + ": " + cec.message();
            co_return make_error_code(error::connect_failed);
        }
        error_code ec;
        // Requests are written whole in one write; without this, Nagle + delayed ACK add 40 ms per call.
        socket_.set_option(tcp::no_delay(true), ec);
        if (r.proxy) {
            if (auto pec = co_await tunnel(*r.proxy, r, detail)) co_return pec;
        }
        if (r.tls) {
            if (tls_ctx == nullptr) co_return make_error_code(error::tls_handshake_failed);
            tls_.emplace(socket_, *tls_ctx);
            if (!prepare_tls_session(tls_->native_handle(), r.host, verify_tls, detail))
                co_return make_error_code(error::tls_handshake_failed);
            auto [hec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, use_nothrow);
            if (hec) {
                if (hec == asio::error::operation_aborted) co_return hec;
                const error e = classify_tls_failure(tls_->native_handle(), detail);
                if (detail.empty()) detail = hec.message();
                co_return make_error_code(e);
            }
        }
        open_ = true;
        co_return error_code{};
    }

    /// Writes head and body as one write: a gathered write on TCP, one TLS record sequence on TLS (the
    /// TLS stream writes one buffer per call, so the two are joined into a reused buffer first).
    asio::awaitable<error_code> async_write(std::string_view head, std::string_view body) {
        std::size_t n = 0;
        error_code ec;
        ++writes_;
        if (tls_) {
            out_.assign(head);
            out_.append(body);
            std::tie(ec, n) = co_await asio::async_write(*tls_, asio::buffer(out_), use_nothrow);
        } else {
            const std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body)};
            std::tie(ec, n) = co_await asio::async_write(socket_, bufs, use_nothrow);
        }
        bytes_sent_ += n;
        co_return ec;
    }

    /// Reads one whole response into `p`. Sets `got_bytes` once any byte of it arrived.
    asio::awaitable<error_code> async_read_response(http::response_parser& p, bool& got_bytes) {
        got_bytes = false;
        while (!p.done()) {
            if (in_begin_ == in_end_) {
                auto [ec, n] = co_await read_some();
                if (ec) {
                    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
                        reusable_ = false;
                        error_code fec;
                        if (!p.started()) co_return make_error_code(error::connection_closed);
                        p.finish(fec);
                        if (fec) co_return make_error_code(error::connection_closed);
                        break;
                    }
                    co_return ec;
                }
                in_begin_ = 0;
                in_end_ = n;
                bytes_received_ += n;
            }
            got_bytes = true;
            error_code pec;
            const std::size_t used = p.feed(std::string_view(in_.data() + in_begin_, in_end_ - in_begin_), pec);
            in_begin_ += used;
            if (pec) {
                reusable_ = false;
                co_return pec;
            }
        }
        // Bytes beyond the response were never asked for: the connection's framing cannot be trusted again.
        if (in_begin_ != in_end_) reusable_ = false;
        if (!p.get().keep_alive()) reusable_ = false;
        co_return error_code{};
    }

    /// True when an idle pooled connection shows neither EOF nor stray bytes, so a request written on it
    /// will not meet a connection the server already closed (the one failure seen before writing).
    bool looks_alive() {
        if (!open_ || !reusable_ || !socket_.is_open()) return false;
        char c = 0;
        const auto r = ::recv(socket_.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r == 0) return false; // EOF: the server closed the idle connection
        if (r > 0) return false;  // unsolicited bytes (or a TLS alert): not a clean idle connection
        return errno == EAGAIN || errno == EWOULDBLOCK;
    }

    /// Cancels whatever is pending and closes the socket; pending operations complete with operation_aborted.
    void close() noexcept {
        open_ = false;
        reusable_ = false;
        error_code ec;
        resolver_.cancel();
        socket_.shutdown(tcp::socket::shutdown_both, ec);
        socket_.close(ec);
    }

    /// Sends TLS close_notify (bounded by the caller) and closes.
    asio::awaitable<void> async_close_gracefully() {
        if (tls_ && open_) {
            open_ = false;
            auto [ec] = co_await tls_->async_shutdown(use_nothrow);
            (void)ec; // the peer may close without answering close_notify; either way the socket closes next
        }
        close();
    }

    bool is_open() const noexcept { return open_; }
    bool reusable() const noexcept { return open_ && reusable_; }
    void mark_not_reusable() noexcept { reusable_ = false; }
    bool is_tls() const noexcept { return tls_.has_value(); }
    std::uint64_t bytes_sent() const noexcept { return bytes_sent_; }
    std::uint64_t bytes_received() const noexcept { return bytes_received_; }
    std::uint64_t writes() const noexcept { return writes_; }
    clock::time_point last_used{};
    std::uint64_t requests = 0; ///< requests completed on this connection

private:
    asio::awaitable<std::tuple<error_code, std::size_t>> read_some() {
        if (tls_) co_return co_await tls_->async_read_some(asio::buffer(in_), use_nothrow);
        co_return co_await socket_.async_read_some(asio::buffer(in_), use_nothrow);
    }

    asio::awaitable<error_code> tunnel(const proxy_endpoint& px, const route& r, std::string& detail) {
        const std::string req = connect_request(r.host, r.port, px);
        auto [wec, wn] = co_await asio::async_write(socket_, asio::buffer(req), use_nothrow);
        bytes_sent_ += wn;
        if (wec) {
            detail = "proxy: " + wec.message();
            co_return wec == asio::error::operation_aborted ? wec : make_error_code(error::proxy_failed);
        }
        http::response_parser p;
        p.expect_no_body();
        bool got = false;
        if (auto ec = co_await async_read_response(p, got)) {
            if (ec == asio::error::operation_aborted) co_return ec;
            detail = "proxy: " + ec.message();
            co_return make_error_code(error::proxy_failed);
        }
        const int status = p.get().status;
        if (status / 100 != 2) {
            // 407 asks for credentials; some proxies (tinyproxy) answer wrong credentials with 401.
            const bool auth = status == 407 || status == 401;
            detail = "proxy answered " + std::to_string(status) +
                     (auth ? (px.authorization.empty() ? " (proxy authentication required)"
                                                       : " (proxy credentials rejected)")
                           : "") +
                     " to CONNECT " + r.host + ":" + std::to_string(r.port);
            co_return make_error_code(error::proxy_failed);
        }
        reusable_ = true;
        in_begin_ = in_end_ = 0;
        co_return error_code{};
    }

    tcp::socket socket_;
    tcp::resolver resolver_;
    std::optional<asio::ssl::stream<tcp::socket&>> tls_;
    std::array<char, 16 * 1024> in_{};
    std::size_t in_begin_ = 0;
    std::size_t in_end_ = 0;
    std::string out_;
    std::uint64_t bytes_sent_ = 0;
    std::uint64_t bytes_received_ = 0;
    std::uint64_t writes_ = 0;
    bool open_ = false;
    bool reusable_ = true;
};

} // namespace detail
CALLSAVVY_END_NAMESPACE
