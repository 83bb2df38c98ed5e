// callsavvy/net/server.hpp — the server side of HTTP/1.1 on Asio, shared by the mock Callsavvy server and
// the webhook listener: accept on a given address (plain or TLS), read requests with the shared codec
// (keep-alive, pipelining, hard limits, a deadline per request against slow clients, an idle timeout),
// hand each to a coroutine handler and write its reply in one write. Protocol errors are answered (400,
// 408, 413, 431) and that connection closed; everyone else is served on.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/error.hpp>
#include <callsavvy/http/parser.hpp>
#include <callsavvy/http/serializer.hpp>
#include <callsavvy/net/connection.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>

CALLSAVVY_BEGIN_NAMESPACE

struct server_options {
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;                        ///< 0: an ephemeral port
    std::shared_ptr<asio::ssl::context> tls{};     ///< set: HTTPS with this context's certificate
    http::limits limits{};                         ///< request limits; a larger body is answered 413
    std::chrono::milliseconds read_timeout{10000}; ///< a request must arrive whole within this
    std::chrono::milliseconds idle_timeout{60000}; ///< an idle keep-alive connection closes after this
    /// An answer (and a TLS close) must leave within this: a client that stops reading loses its connection.
    std::chrono::milliseconds write_timeout{10000};
    /// After an error answer (400, 408, 413, 431), what the client still sends is read and dropped for at most
    /// this long and this many bytes before closing, so the answer is not destroyed by a reset.
    std::chrono::milliseconds linger_timeout{2000};
    std::size_t linger_bytes = 4 * 1024 * 1024;
    std::size_t max_connections = 4096; ///< connections beyond this are closed at accept
};

/// A request as the handler sees it.
struct server_request {
    http::request message{};
    asio::ip::tcp::endpoint remote{};
    std::uint64_t connection_id = 0; ///< 1 for the first connection the server accepted
    std::uint64_t sequence = 0;      ///< requests this connection carried before this one
};

/// What the handler wants done: an answer, possibly delayed, chunked or cut short, or no answer at all.
struct server_reply {
    enum class action { respond, close, stall };
    http::response response{};
    action what = action::respond;
    std::chrono::milliseconds delay{0}; ///< wait this long before answering
    bool chunked = false;               ///< send the body with Transfer-Encoding: chunked
    bool truncate = false;              ///< promise the whole body, send half, close
    bool close_after = false;           ///< close the connection after this answer
};

class http_server {
public:
    using handler_type = std::function<asio::awaitable<server_reply>(server_request&)>;
    /// Builds the answer to a request the server rejected itself (malformed, too large, too slow).
    using error_responder = std::function<http::response(int status, std::string_view reason)>;
    /// Called at accept; returning false closes the connection before anything is read.
    using accept_filter = std::function<bool(const asio::ip::tcp::endpoint& remote)>;

    http_server(asio::any_io_executor ex, server_options o, handler_type handler, error_responder on_error = {})
        : state_(std::make_shared<state>(ex, std::move(o), std::move(handler), std::move(on_error))) {
        auto& st = *state_;
        const asio::ip::tcp::endpoint ep(asio::ip::make_address(st.opts.address), st.opts.port);
        st.acceptor.open(ep.protocol());
        st.acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true));
        st.acceptor.bind(ep);
        st.acceptor.listen();
        local_ = st.acceptor.local_endpoint();
        asio::co_spawn(st.ex, accept_loop(state_), asio::detached);
    }
    ~http_server() {
        detail::in_destructor([this] { stop(); });
    }
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    std::uint16_t port() const noexcept { return local_.port(); }
    const asio::ip::tcp::endpoint& local_endpoint() const noexcept { return local_; }
    bool is_tls() const noexcept { return state_->opts.tls != nullptr; }
    std::uint64_t connections_accepted() const noexcept { return state_->accepted; }
    std::size_t open_connections() const noexcept { return state_->conns.size(); }
    void set_accept_filter(accept_filter f) { state_->filter = std::move(f); }

    /// Closes the acceptor and every connection; stalled replies end. Idempotent.
    void stop() {
        auto& st = *state_;
        if (st.stopped) return;
        st.stopped = true;
        error_code ec;
        st.acceptor.close(ec);
        st.stop_timer.cancel();
        for (auto* c : st.conns) c->close();
    }

private:
    struct conn;
    struct state {
        state(const asio::any_io_executor& e, server_options o, handler_type h, error_responder r)
            : ex(e), opts(std::move(o)), handler(std::move(h)), on_error(std::move(r)), acceptor(e),
              stop_timer(e, std::chrono::steady_clock::time_point::max()) {}
        asio::any_io_executor ex;
        server_options opts;
        handler_type handler;
        error_responder on_error;
        accept_filter filter;
        asio::ip::tcp::acceptor acceptor;
        asio::steady_timer stop_timer;
        std::list<conn*> conns;
        std::uint64_t accepted = 0;
        bool stopped = false;
    };

    struct conn : std::enable_shared_from_this<conn> {
        conn(asio::ip::tcp::socket s, const asio::any_io_executor& ex) : socket(std::move(s)), timer(ex) {}
        asio::ip::tcp::socket socket;
        std::optional<asio::ssl::stream<asio::ip::tcp::socket&>> tls;
        asio::steady_timer timer;
        bool timed_out = false;
        std::uint64_t armed = 0; ///< which arming a timer completion belongs to
        void close() {
            error_code ec;
            socket.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
            socket.close(ec);
        }
        void arm(std::chrono::milliseconds d) {
            timed_out = false;
            timer.expires_after(d);
            // Cancel rather than close: the read ends, and a 408 can still be written before closing.
            // A completion already queued when the timer was re-armed, disarmed or destroyed cannot be
            // cancelled any more: the generation and the weak pointer make it a no-op then.
            timer.async_wait([weak = weak_from_this(), gen = ++armed](error_code ec) {
                const auto self = weak.lock();
                if (ec || !self || self->armed != gen) return;
                self->timed_out = true;
                error_code ignored;
                self->socket.cancel(ignored);
            });
        }
        void disarm() {
            ++armed;
            timer.cancel();
        }
        asio::awaitable<std::tuple<error_code, std::size_t>> read_some(asio::mutable_buffer b) {
            if (tls) co_return co_await tls->async_read_some(b, detail::use_nothrow);
            co_return co_await socket.async_read_some(b, detail::use_nothrow);
        }
        asio::awaitable<error_code> write(std::string_view bytes) {
            error_code ec;
            std::size_t n = 0;
            if (tls) std::tie(ec, n) = co_await asio::async_write(*tls, asio::buffer(bytes), detail::use_nothrow);
            else
                std::tie(ec, n) = co_await asio::async_write(socket, asio::buffer(bytes), detail::use_nothrow);
            co_return ec;
        }
    };

    static asio::awaitable<void> accept_loop(std::shared_ptr<state> st) {
        for (;;) {
            auto [ec, socket] = co_await st->acceptor.async_accept(detail::use_nothrow);
            if (st->stopped) co_return;
            if (ec) {
                if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) co_return;
                continue; // e.g. EMFILE: the next accept may succeed once connections close
            }
            ++st->accepted;
            error_code ignored;
            const auto remote = socket.remote_endpoint(ignored);
            if (st->conns.size() >= st->opts.max_connections || (st->filter && !st->filter(remote))) {
                socket.close(ignored);
                continue;
            }
            socket.set_option(asio::ip::tcp::no_delay(true), ignored);
            asio::co_spawn(st->ex, serve(st, std::move(socket), remote, st->accepted), asio::detached);
        }
    }

    static http::response fallback_error(int status, std::string_view reason) {
        http::response r;
        r.status = status;
        r.reason = std::string(http::reason_phrase(status));
        r.headers.add("Content-Type", "text/plain");
        r.body = std::string(reason);
        return r;
    }

    static asio::awaitable<void> serve(std::shared_ptr<state> st, asio::ip::tcp::socket socket,
                                       asio::ip::tcp::endpoint remote, std::uint64_t id) {
        const auto c = std::make_shared<conn>(std::move(socket), st->ex);
        st->conns.push_back(c.get());
        const auto registration = std::prev(st->conns.end());
        try {
            co_await serve_requests(*st, *c, remote, id);
        } catch (const std::exception&) {
            // A handler that throws loses its connection, never the server.
        }
        c->disarm();
        c->close();
        st->conns.erase(registration);
    }

    static asio::awaitable<void> serve_requests(state& st, conn& c, const asio::ip::tcp::endpoint& remote,
                                                std::uint64_t id) {
        if (st.opts.tls) {
            c.tls.emplace(c.socket, *st.opts.tls);
            c.arm(st.opts.read_timeout);
            auto [ec] = co_await c.tls->async_handshake(asio::ssl::stream_base::server, detail::use_nothrow);
            if (ec) co_return;
        }
        std::array<char, 16 * 1024> buf{};
        std::string pending;
        http::request_parser parser(st.opts.limits);
        for (std::uint64_t seq = 0; !st.stopped; ++seq) {
            // Idle until the first byte of the next request, then read_timeout for the whole of it.
            c.arm(pending.empty() ? st.opts.idle_timeout : st.opts.read_timeout);
            bool armed_for_request = !pending.empty();
            error_code perr;
            for (;;) {
                if (!pending.empty()) {
                    const std::size_t used = parser.feed(pending, perr);
                    pending.erase(0, used);
                    if (perr || parser.done()) break;
                }
                auto [ec, n] = co_await c.read_some(asio::buffer(buf));
                if (ec) {
                    // A slow client gets 408 if it started a request; an idle or closed one just loses the connection.
                    if (c.timed_out && (parser.started() || !pending.empty()))
                        co_await answer_error(st, c, 408, "request not received in time");
                    co_return;
                }
                pending.append(buf.data(), n);
                if (!armed_for_request) {
                    c.arm(st.opts.read_timeout);
                    armed_for_request = true;
                }
            }
            c.disarm();
            if (perr) {
                int status = 400;
                if (perr == http::error::body_too_large) status = 413;
                else if (perr == http::error::headers_too_large || perr == http::error::too_many_headers)
                    status = 431;
                co_await answer_error(st, c, status, perr.message());
                co_return;
            }
            if (st.stopped) co_return; // read before stop(): the handler's owner may be gone already
            server_request req;
            req.message = parser.release();
            parser.reset();
            req.remote = remote;
            req.connection_id = id;
            req.sequence = seq;
            const bool keep_alive = req.message.keep_alive();
            server_reply reply = co_await st.handler(req);
            if (reply.what == server_reply::action::close) co_return;
            if (reply.what == server_reply::action::stall) {
                if (st.stopped) co_return; // stop() already woke the stalls: this one would never end
                auto [ec] = co_await st.stop_timer.async_wait(detail::use_nothrow);
                (void)ec;
                co_return;
            }
            if (reply.delay.count() > 0) {
                asio::steady_timer t(st.ex, reply.delay);
                auto [ec] = co_await t.async_wait(detail::use_nothrow);
                if (ec || st.stopped) co_return;
            }
            const bool close = reply.close_after || !keep_alive || reply.truncate;
            if (close) reply.response.headers.set("Connection", "close");
            std::string out;
            if (reply.chunked) {
                reply.response.headers.erase("Content-Length");
                reply.response.headers.set("Transfer-Encoding", "chunked");
                http::append_head(reply.response, out);
                const std::string_view body = reply.response.body;
                const std::size_t half = body.size() / 2;
                out += http::chunk(body.substr(0, half));
                out += http::chunk(body.substr(half));
                out += http::last_chunk();
            } else {
                reply.response.headers.set("Content-Length", std::to_string(reply.response.body.size()));
                http::append_head(reply.response, out);
                out += reply.truncate ? std::string_view(reply.response.body).substr(0, reply.response.body.size() / 2)
                                      : std::string_view(reply.response.body);
            }
            c.arm(st.opts.write_timeout);
            const error_code wec = co_await c.write(out);
            if (!wec && close && c.tls) {
                auto [ec] = co_await c.tls->async_shutdown(detail::use_nothrow);
                (void)ec;
            }
            c.disarm();
            if (wec || close) co_return;
        }
    }

    static asio::awaitable<void> answer_error(state& st, conn& c, int status, std::string_view reason) {
        if (st.stopped) co_return; // the error responder's owner may be gone already
        http::response r = st.on_error ? st.on_error(status, reason) : fallback_error(status, reason);
        r.headers.set("Connection", "close");
        r.headers.set("Content-Length", std::to_string(r.body.size()));
        std::string out;
        http::append_head(r, out);
        out += r.body;
        c.arm(st.opts.write_timeout);
        const error_code wec = co_await c.write(out);
        c.disarm();
        if (wec) co_return;
        // A lingering close: the client may still be sending (the rest of a body too large, say). Closing
        // now with unread bytes would reset the connection, and a reset can destroy the answer in flight.
        error_code ignored;
        if (!c.tls) c.socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
        c.arm(st.opts.linger_timeout);
        std::array<char, 16 * 1024> sink{};
        for (std::size_t drained = 0; drained < st.opts.linger_bytes && !st.stopped;) {
            auto [ec, n] = co_await c.read_some(asio::buffer(sink));
            if (ec) break;
            drained += n;
        }
        c.disarm();
    }

    std::shared_ptr<state> state_;
    asio::ip::tcp::endpoint local_{};
};

CALLSAVVY_END_NAMESPACE
