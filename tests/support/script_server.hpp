// tests/support/script_server.hpp — a loopback HTTP(S) server whose every accepted connection runs a test's
// coroutine script, on the test's own executor. Client tests use it to produce exact byte sequences, stalls,
// abrupt closes and TLS failures deterministically: client and server share one single-threaded io_context,
// so there are no threads to race and no sleeps to tune.
//
// Lifetime rules: construct the io_context before the server (the server's sockets belong to it); the
// server's destructor calls stop(), after which every connection ends at its next resumption. State shared
// with the detached connection coroutines is reference-counted, so it stays valid even if the io_context
// runs (or is destroyed) after the script_server object is gone.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/error.hpp>

#include "support/pki.hpp"

#include <callsavvy/http/message.hpp>
#include <callsavvy/http/parser.hpp>

#include "support/asio.hpp"

#include <openssl/ssl.h>

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace cstest {

namespace asio = callsavvy::asio;

struct server_options {
    bool tls = false; // TLS with `cert` (default: test_pki().localhost)
    const key_pair* cert = nullptr;
    bool require_client_cert = false;  // TLS only: demand a client certificate signed by the test CA
    std::string address = "127.0.0.1"; // or "::1"
};

class peer;

namespace detail {
struct server_state;
inline asio::awaitable<void> run_connection(std::shared_ptr<server_state> state, std::shared_ptr<peer> p);

struct server_state {
    using script_fn = std::function<asio::awaitable<void>(peer&)>;

    server_state(asio::any_io_executor executor, script_fn s, server_options o)
        : ex(std::move(executor)), script(std::move(s)), options(std::move(o)), acceptor(ex),
          stop_timer(ex, asio::steady_timer::time_point::max()) {}

    asio::any_io_executor ex;
    script_fn script;
    server_options options;
    asio::ip::tcp::acceptor acceptor;
    std::optional<asio::ssl::context> tls;
    // Never expires; stall() waits on it and stop() cancels it, which wakes every staller at once.
    asio::steady_timer stop_timer;
    bool stopped = false;
    std::size_t connections = 0;
    std::size_t requests = 0;
    std::vector<std::weak_ptr<peer>> peers; // weak: a connection's coroutine owns its peer
    std::string script_error;               // first exception that escaped a script before stop()
};

} // namespace detail

// One accepted connection, handed to the script. Every operation throws callsavvy::system_error on I/O errors
// (including operation_aborted once the server is stopped), which simply ends the script.
class peer {
public:
    peer(std::shared_ptr<detail::server_state> state, asio::ip::tcp::socket socket) : state_(std::move(state)) {
        if (state_->tls) tls_.emplace(std::move(socket), *state_->tls);
        else
            plain_.emplace(std::move(socket));
    }
    peer(const peer&) = delete;
    peer& operator=(const peer&) = delete;

    // Reads one HTTP request with callsavvy's parser. std::nullopt when the client closed (TCP FIN, TLS
    // close_notify, or a TLS close without close_notify) before sending any byte of a request; throws if it
    // closed inside one or sent something the parser rejects. Pipelined bytes stay for the next call.
    asio::awaitable<std::optional<callsavvy::http::request>> read_request() {
        bool fresh = !pending_.empty();
        for (;;) {
            if (fresh) {
                callsavvy::error_code ec;
                const std::size_t used = parser_.feed(pending_, ec);
                if (ec) throw callsavvy::system_error(ec, "cstest::peer::read_request");
                pending_.erase(0, used);
                if (parser_.done()) co_return take_request();
            }
            const std::size_t n = co_await read_into(buffer_.data(), buffer_.size());
            if (n == 0) {
                if (!parser_.started() && pending_.empty()) co_return std::nullopt;
                callsavvy::error_code ec;
                parser_.finish(ec);
                if (!ec && parser_.done()) co_return take_request();
                if (!ec) ec = callsavvy::http::error::partial_message;
                throw callsavvy::system_error(ec, "cstest::peer::read_request: connection closed inside a request");
            }
            pending_.append(buffer_.data(), n);
            fresh = true;
        }
    }

    // Raw bytes as they arrive (bytes left over by read_request first); "" once the client has closed.
    asio::awaitable<std::string> read_some() {
        if (!pending_.empty()) co_return std::exchange(pending_, std::string());
        const std::size_t n = co_await read_into(buffer_.data(), buffer_.size());
        co_return std::string(buffer_.data(), n);
    }

    // Reads and discards until the client closes; then tls_close_notify_received() tells how it closed.
    asio::awaitable<void> wait_closed() {
        pending_.clear();
        // Not `while (co_await ... != 0) {}`: g++ 12 miscompiles a co_await in a loop condition with an empty body.
        for (;;) {
            const std::size_t n = co_await read_into(buffer_.data(), buffer_.size());
            if (n == 0) break;
        }
    }

    // Exactly these bytes, in one write.
    asio::awaitable<void> write(std::string_view bytes) {
        if (tls_) co_await asio::async_write(*tls_, asio::buffer(bytes), asio::use_awaitable);
        else
            co_await asio::async_write(*plain_, asio::buffer(bytes), asio::use_awaitable);
    }

    // A well-formed HTTP/1.1 response, keep-alive, framed by Content-Length (no body and no Content-Length
    // for 1xx/204/304). Written by hand rather than with callsavvy's serializer so the client's parser is
    // tested against an independent producer. An empty content_type leaves Content-Type out.
    asio::awaitable<void> respond(int status, std::string_view body,
                                  std::string_view content_type = "application/json") {
        std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
        const std::string_view reason = callsavvy::http::reason_phrase(status);
        out += reason.empty() ? std::string_view("Status") : reason;
        out += "\r\n";
        const bool has_body = !callsavvy::http::status_has_no_body(status);
        if (has_body && !content_type.empty()) {
            out += "Content-Type: ";
            out += content_type;
            out += "\r\n";
        }
        if (has_body) out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
        out += "\r\n";
        if (has_body) out += body;
        co_await write(out);
    }

    // Abrupt close. TCP: shutdown and close. TLS: the socket closes without close_notify, which the client
    // sees as a truncated stream (asio::ssl::error::stream_truncated).
    void close() {
        callsavvy::error_code ignored;
        auto& s = socket();
        if (plain_ && s.is_open()) s.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        s.close(ignored);
    }

    // Never answers: returns only when the server is stopped.
    asio::awaitable<void> stall() {
        if (state_->stopped) co_return;
        callsavvy::error_code ignored;
        co_await state_->stop_timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }

    // After a read reported the client's close (read_request → nullopt, read_some → "", wait_closed):
    // whether that close came with a TLS close_notify (asio: eof) rather than a bare TCP close
    // (asio: ssl::error::stream_truncated). Always false for plain TCP.
    bool tls_close_notify_received() const { return tls_.has_value() && eof_ == eof_kind::clean; }

    // Whether a read has seen the client close the connection.
    bool client_closed() const { return eof_ != eof_kind::none; }

    bool is_open() const { return plain_ ? plain_->is_open() : tls_->next_layer().is_open(); }

    // Plain TCP only (nullopt for TLS), without reading or waiting: how many bytes a read would return right
    // now (bytes an earlier read_request left over included), or nullopt once the client has closed and
    // nothing is left. A script that polls this between handlers sees the stream as it stands between two of
    // the client's writes, which a blocking read (returning whatever arrived meanwhile) cannot show.
    std::optional<std::size_t> readable_now() {
        if (!pending_.empty()) return pending_.size();
        if (!plain_ || eof_ != eof_kind::none || !plain_->is_open()) return std::nullopt;
        char c = 0;
        const auto r = ::recv(plain_->native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r == 0) return std::nullopt; // the client closed
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return std::size_t{0};
            return std::nullopt;
        }
        callsavvy::error_code ec;
        const std::size_t n = plain_->available(ec);
        if (ec) return std::nullopt;
        return n;
    }

    asio::ip::tcp::endpoint remote_endpoint() const {
        callsavvy::error_code ignored;
        return plain_ ? plain_->remote_endpoint(ignored) : tls_->next_layer().remote_endpoint(ignored);
    }

    // The TLS stream, for scripts that need more (e.g. the client's certificate); nullptr for plain TCP.
    asio::ssl::stream<asio::ip::tcp::socket>* tls_stream() { return tls_ ? &*tls_ : nullptr; }

private:
    friend asio::awaitable<void> detail::run_connection(std::shared_ptr<detail::server_state>, std::shared_ptr<peer>);
    enum class eof_kind { none, clean, truncated };

    asio::ip::tcp::socket& socket() { return plain_ ? *plain_ : tls_->next_layer(); }

    callsavvy::http::request take_request() {
        callsavvy::http::request r = parser_.release();
        parser_.reset();
        ++state_->requests;
        return r;
    }

    // Returns 0 at the client's close and remembers how it closed; throws on any other error.
    asio::awaitable<std::size_t> read_into(char* data, std::size_t size) {
        if (eof_ != eof_kind::none) co_return 0;
        callsavvy::error_code ec;
        std::size_t n = 0;
        if (tls_)
            n = co_await tls_->async_read_some(asio::buffer(data, size), asio::redirect_error(asio::use_awaitable, ec));
        else
            n = co_await plain_->async_read_some(asio::buffer(data, size),
                                                 asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::eof) {
            eof_ = eof_kind::clean;
            co_return 0;
        }
        if (ec == asio::ssl::error::stream_truncated) {
            eof_ = eof_kind::truncated;
            co_return 0;
        }
        if (ec) throw callsavvy::system_error(ec, "cstest::peer read");
        co_return n;
    }

    std::shared_ptr<detail::server_state> state_;
    std::optional<asio::ip::tcp::socket> plain_;
    std::optional<asio::ssl::stream<asio::ip::tcp::socket>> tls_;
    callsavvy::http::request_parser parser_;
    std::string pending_; // received, not yet consumed by the parser
    std::array<char, 16 * 1024> buffer_{};
    eof_kind eof_ = eof_kind::none;
};

namespace detail {

// One connection: TLS handshake (if any), the script, then close. A failed handshake (the client refusing
// our certificate, a plain-text client) ends the connection quietly: that is the client's test to judge.
inline asio::awaitable<void> run_connection(std::shared_ptr<detail::server_state> state, std::shared_ptr<peer> p) {
    try {
        bool handshake_ok = true;
        if (p->tls_) {
            callsavvy::error_code ec;
            co_await p->tls_->async_handshake(asio::ssl::stream_base::server,
                                              asio::redirect_error(asio::use_awaitable, ec));
            handshake_ok = !ec;
        }
        if (handshake_ok) co_await state->script(*p);
    } catch (const std::exception& e) {
        if (!state->stopped && state->script_error.empty()) state->script_error = e.what();
    } catch (...) {
        // Catch2 signals a failed REQUIRE with a type outside std::exception; the failure is already
        // recorded by Catch2, the connection just ends.
        if (!state->stopped && state->script_error.empty()) state->script_error = "script aborted (non-std exception)";
    }
    // A finished script closes its connection: for plain TCP with a FIN after everything written, for TLS
    // without close_notify (a script that wants close_notify behaviour tests it explicitly).
    p->close();
}

inline asio::awaitable<void> accept_loop(std::shared_ptr<server_state> state) {
    for (;;) {
        callsavvy::error_code ec;
        asio::ip::tcp::socket socket =
            co_await state->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (state->stopped) co_return;
        if (ec) {
            // Anything but a stop (e.g. EMFILE) would repeat at once; give up accepting and say why.
            if (state->script_error.empty()) state->script_error = "accept failed: " + ec.message();
            co_return;
        }
        socket.set_option(asio::ip::tcp::no_delay(true), ec);
        ++state->connections;
        auto p = std::make_shared<peer>(state, std::move(socket));
        std::erase_if(state->peers, [](const std::weak_ptr<peer>& w) { return w.expired(); });
        state->peers.push_back(p);
        asio::co_spawn(state->ex, run_connection(state, std::move(p)), asio::detached);
    }
}

inline asio::ssl::context make_server_tls_context(const server_options& o) {
    const key_pair& cert = o.cert ? *o.cert : test_pki().localhost;
    asio::ssl::context ctx(asio::ssl::context::tls_server);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression);
    ctx.use_certificate_chain(asio::buffer(cert.cert_pem));
    ctx.use_private_key(asio::buffer(cert.key_pem), asio::ssl::context::pem);
    if (o.require_client_cert) {
        ctx.add_certificate_authority(asio::buffer(test_pki().ca_pem));
        ctx.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
        // Tell clients which CA we accept (what client-certificate selection looks at).
        if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(test_pki().ca_file.c_str()))
            SSL_CTX_set_client_CA_list(ctx.native_handle(), names);
        // Without a session id context, OpenSSL fails any resumed handshake on a verifying server
        // ("session id context uninitialized"), which would look like a client bug.
        static constexpr unsigned char sid_ctx[] = "cstest";
        SSL_CTX_set_session_id_context(ctx.native_handle(), sid_ctx, sizeof sid_ctx - 1);
    }
    return ctx;
}

} // namespace detail

class script_server {
public:
    using script = std::function<asio::awaitable<void>(peer&)>;

    // Binds and listens at once (port() is valid on return, on an ephemeral port of options.address) and
    // starts accepting on `ex`; each accepted connection runs `s` in its own coroutine.
    script_server(asio::any_io_executor ex, script s, server_options o = {})
        : state_(std::make_shared<detail::server_state>(std::move(ex), std::move(s), std::move(o))) {
        auto& st = *state_;
        if (st.options.tls) st.tls.emplace(detail::make_server_tls_context(st.options));
        const asio::ip::tcp::endpoint endpoint(asio::ip::make_address(st.options.address), 0);
        st.acceptor.open(endpoint.protocol());
        st.acceptor.bind(endpoint);
        st.acceptor.listen();
        port_ = st.acceptor.local_endpoint().port();
        asio::co_spawn(st.ex, detail::accept_loop(state_), asio::detached);
    }
    ~script_server() {
        callsavvy::detail::in_destructor([this] { stop(); });
    }
    script_server(const script_server&) = delete;
    script_server& operator=(const script_server&) = delete;

    std::uint16_t port() const { return port_; }

    // TLS on 127.0.0.1 is named "localhost", the name the test certificate carries, so host-name checks pass.
    std::string base_url() const {
        const auto& o = state_->options;
        std::string host = o.address.find(':') != std::string::npos ? "[" + o.address + "]"
                           : o.tls && o.address == "127.0.0.1"      ? std::string("localhost")
                                                                    : o.address;
        return (o.tls ? "https://" : "http://") + host + ":" + std::to_string(port_) + "/v1/";
    }

    std::size_t connections() const { return state_->connections; }
    std::size_t requests() const { return state_->requests; }

    // Connections whose server side is still open: a script ends (and closes) when it returns, so scripts
    // that loop on read_request until std::nullopt make this count the client's open connections.
    std::size_t open_connections() const {
        return static_cast<std::size_t>(std::count_if(state_->peers.begin(), state_->peers.end(), [](const auto& w) {
            auto p = w.lock();
            return p && p->is_open();
        }));
    }

    // The first exception that escaped a script (or the accept loop) before stop(); "" if none. Lets a test
    // assert that the server side went as scripted.
    const std::string& script_error() const { return state_->script_error; }

    // Closes the acceptor and every connection and wakes every stall(); idempotent. Safe after the
    // io_context stopped running: the aborted operations are only queued.
    void stop() {
        auto& st = *state_;
        if (st.stopped) return;
        st.stopped = true;
        callsavvy::error_code ignored;
        st.acceptor.close(ignored);
        st.stop_timer.cancel();
        for (auto& w : st.peers)
            if (auto p = w.lock()) p->close();
        st.peers.clear();
    }

private:
    std::shared_ptr<detail::server_state> state_;
    std::uint16_t port_ = 0;
};

} // namespace cstest
