// callsavvy/net/connection.hpp — one client connection on the shared transport (net/stream.hpp): resolve with
// every address tried in turn, TCP with TCP_NODELAY, an optional HTTP CONNECT tunnel, an optional verified
// TLS session, and request/response exchanges (one write per request, the answer read through the shared
// HTTP/1.1 parser). The client's pool and the webhook sender own connections; users never name them.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/error.hpp>
#include <callsavvy/http/parser.hpp>
#include <callsavvy/http/serializer.hpp>
#include <callsavvy/net/proxy.hpp>
#include <callsavvy/net/stream.hpp>
#include <callsavvy/net/tls.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

CALLSAVVY_BEGIN_NAMESPACE
namespace detail {

/// Where a connection goes: the origin server, optionally through a proxy.
struct route {
    std::string host; ///< origin host (no brackets for IPv6)
    std::uint16_t port = 0;
    bool tls = false;
    std::optional<proxy_endpoint> proxy;
};

/// How one request/response exchange ended.
struct exchange_result {
    error_code ec{};
    bool written = false;  ///< the whole request was handed to the kernel (the server may process it)
    bool answered = false; ///< a whole response was parsed
};

class connection {
public:
    using tcp = asio::ip::tcp;
    using clock = std::chrono::steady_clock;

    explicit connection(const asio::any_io_executor& ex) : stream_(ex), resolver_(ex), watchdog_(ex, *this) {}
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Resolves, connects (every resolved address in turn), tunnels through the proxy and handshakes TLS.
    asio::awaitable<error_code> async_open(const route& r, asio::ssl::context* tls_ctx, bool verify_tls,
                                           std::string& detail) {
        const std::string& host = r.proxy ? r.proxy->host : r.host;
        const std::uint16_t port = r.proxy ? r.proxy->port : r.port;
        auto [rec, results] = co_await resolver_.async_resolve(host, std::to_string(port), use_nothrow);
        if (rec) {
            if (rec == asio::error::operation_aborted) co_return rec;
            detail = host + ": " + rec.message();
            co_return make_error_code(error::resolve_failed);
        }
        auto [cec, ep] = co_await asio::async_connect(stream_.socket(), results, use_nothrow);
        if (cec) {
            if (cec == asio::error::operation_aborted) co_return cec;
            detail = (r.proxy ? "proxy " : "") + host + ":" + std::to_string(port) + ": " + cec.message();
            co_return make_error_code(error::connect_failed);
        }
        error_code ec;
        // Requests are written whole in one write; without this, Nagle + delayed ACK add 40 ms per call.
        stream_.socket().set_option(tcp::no_delay(true), ec);
        if (r.proxy) {
            if (auto pec = co_await tunnel(*r.proxy, r, detail)) co_return pec;
        }
        if (r.tls) {
            if (tls_ctx == nullptr) co_return make_error_code(error::tls_handshake_failed);
            auto& tls = stream_.start_tls(*tls_ctx);
            if (!prepare_tls_session(tls.native_handle(), r.host, verify_tls, detail))
                co_return make_error_code(error::tls_handshake_failed);
            auto [hec] = co_await tls.async_handshake(asio::ssl::stream_base::client, use_nothrow);
            if (hec) {
                if (hec == asio::error::operation_aborted) co_return hec;
                const error e = classify_tls_failure(tls.native_handle(), detail);
                if (detail.empty()) detail = hec.message();
                co_return make_error_code(e);
            }
        }
        open_ = true;
        reusable_ = true;
        co_return error_code{};
    }

    /// Writes the request (head and body in one write) and reads its whole response into `p`.
    asio::awaitable<exchange_result> async_exchange(std::string_view head, std::string_view body,
                                                    http::response_parser& p) {
        exchange_result r;
        r.ec = co_await stream_.write(head, body);
        if (r.ec) {
            close();
            co_return r;
        }
        r.written = true;
        r.ec = co_await reader_.read(stream_, p);
        if (r.ec) {
            close();
            co_return r;
        }
        r.answered = true;
        ++requests;
        // Bytes beyond the response were never asked for: the connection's framing cannot be trusted again.
        // After 101 Switching Protocols what follows is not HTTP.
        if (reader_.buffered() || !p.keep_alive() || p.get().status == 101) reusable_ = false;
        co_return r;
    }

    /// True when an idle pooled connection shows neither EOF nor stray bytes (in the kernel, in OpenSSL or in
    /// the read buffer), so a request written on it will not meet a connection the server already closed.
    /// `probe_socket` false skips the kernel's part (a system call): for a request that may be sent again.
    bool looks_alive(bool probe_socket = true) {
        return open_ && reusable_ && !reader_.buffered() && stream_.quiet(probe_socket);
    }

    /// Ends whatever is pending (a resolve included) and closes the socket.
    void close() noexcept {
        open_ = false;
        reusable_ = false;
        resolver_.cancel();
        stream_.close();
    }
    /// The watchdog's gentler action is the same here: a client connection is never answered after a timeout.
    void cancel() noexcept { close(); }

    /// Sends TLS close_notify (bounded: a peer that never answers costs at most `bound`) and closes.
    asio::awaitable<void> async_close_gracefully(std::chrono::milliseconds bound = std::chrono::seconds(1)) {
        if (stream_.is_tls() && open_) {
            open_ = false;
            watchdog_.arm(bound);
            co_await stream_.shutdown();
            watchdog_.disarm();
        }
        close();
    }

    /// Bounds what the connection waits on (an attempt: connect, write and read); expiry closes it.
    watchdog& deadline() noexcept { return watchdog_; }

    bool is_open() const noexcept { return open_; }
    bool reusable() const noexcept { return open_ && reusable_; }
    bool is_tls() const noexcept { return stream_.is_tls(); }
    std::uint64_t bytes_sent() const noexcept { return stream_.bytes_sent(); }
    std::uint64_t bytes_received() const noexcept { return stream_.bytes_received(); }
    std::uint64_t writes() const noexcept { return stream_.writes(); }
    clock::time_point last_used{};
    std::uint64_t requests = 0; ///< exchanges completed on this connection
    /// Where the client renders each request's head: kept with the connection so its capacity is reused.
    std::string& head_buffer() noexcept { return head_buffer_; }

private:
    asio::awaitable<error_code> tunnel(const proxy_endpoint& px, const route& r, std::string& detail) {
        const std::string req = connect_request(r.host, r.port, px);
        http::response_parser p;
        p.expect_no_body();
        const auto x = co_await async_exchange(req, {}, p);
        if (x.ec) {
            if (x.ec == asio::error::operation_aborted) co_return x.ec;
            detail = "proxy: " + x.ec.message();
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
        requests = 0;
        reader_.clear();
        co_return error_code{};
    }

    stream stream_;
    tcp::resolver resolver_;
    message_reader reader_;
    watchdog watchdog_;
    std::string head_buffer_{};
    bool open_ = false;
    bool reusable_ = true;
};

} // namespace detail
CALLSAVVY_END_NAMESPACE
