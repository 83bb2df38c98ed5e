// callsavvy/net/stream.hpp — the one transport under the client, the server side and the webhook sender: a
// TCP socket with an optional TLS session over it, read and written the same way whichever it is, a read
// buffer that keeps bytes beyond one message (pipelining, stray bytes), one write per message, and a
// watchdog that bounds whatever the stream waits on. Users never name these types.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/error.hpp>
#include <callsavvy/http/parser.hpp>

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

CALLSAVVY_BEGIN_NAMESPACE
namespace detail {

/// Awaiting with this token yields (error_code, result...) instead of throwing: the I/O paths are written
/// with errors as values, so no exception is thrown on any expected failure.
inline constexpr auto use_nothrow = asio::experimental::as_tuple(asio::use_awaitable);

/// A TCP socket, optionally with TLS over it. Opening (connect or accept, handshakes) is the owner's; the
/// stream reads, writes and closes the same way for both roles.
class stream {
public:
    using tcp = asio::ip::tcp;
    using tls_stream = asio::ssl::stream<tcp::socket&>;

    explicit stream(const asio::any_io_executor& ex) : socket_(ex) {}
    explicit stream(tcp::socket s) : socket_(std::move(s)) {}
    stream(const stream&) = delete;
    stream& operator=(const stream&) = delete;

    tcp::socket& socket() noexcept { return socket_; }
    /// Puts a TLS session over the socket; the caller runs the handshake for its role.
    tls_stream& start_tls(asio::ssl::context& ctx) { return tls_.emplace(socket_, ctx); }
    tls_stream* tls() noexcept { return tls_ ? &*tls_ : nullptr; }
    bool is_tls() const noexcept { return tls_.has_value(); }
    bool is_open() const noexcept { return socket_.is_open(); }

    asio::awaitable<std::tuple<error_code, std::size_t>> read_some(asio::mutable_buffer b) {
        auto r =
            tls_ ? co_await tls_->async_read_some(b, use_nothrow) : co_await socket_.async_read_some(b, use_nothrow);
        bytes_received_ += std::get<1>(r);
        co_return r;
    }

    /// Writes head and body as ONE write: a gathered write on TCP; on TLS, whose stream writes one buffer per
    /// record, the two are joined into a reused buffer first. A message in two writes meets Nagle + delayed
    /// ACK (40 ms) and lets a peer see a head without its body.
    asio::awaitable<error_code> write(std::string_view head, std::string_view body = {}) {
        error_code ec;
        std::size_t n = 0;
        ++writes_;
        if (tls_) {
            if (body.empty()) {
                std::tie(ec, n) = co_await asio::async_write(*tls_, asio::buffer(head), use_nothrow);
            } else {
                out_.assign(head);
                out_.append(body);
                std::tie(ec, n) = co_await asio::async_write(*tls_, asio::buffer(out_), use_nothrow);
            }
        } else {
            const std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body)};
            std::tie(ec, n) = co_await asio::async_write(socket_, bufs, use_nothrow);
        }
        bytes_sent_ += n;
        co_return ec;
    }

    /// TLS: sends close_notify (bounded by the owner's watchdog: a peer that never answers it must not hold
    /// the connection); then closes. Plain TCP: closes.
    asio::awaitable<void> shutdown() {
        if (tls_ && socket_.is_open()) {
            auto [ec] = co_await tls_->async_shutdown(use_nothrow);
            (void)ec; // the peer may close without answering close_notify; the socket closes next either way
        }
        close();
    }

    /// Half-closes the sending side of a plain TCP stream (a lingering close after an error answer); TLS has
    /// no half-close, so there it does nothing.
    void shutdown_send() noexcept {
        if (tls_) return;
        error_code ec;
        socket_.shutdown(tcp::socket::shutdown_send, ec);
    }

    /// Ends what is pending with operation_aborted; the socket stays open (a 408 can still be written).
    void cancel() noexcept {
        error_code ec;
        socket_.cancel(ec);
    }

    /// Ends what is pending and closes the socket.
    void close() noexcept {
        error_code ec;
        socket_.shutdown(tcp::socket::shutdown_both, ec);
        socket_.close(ec);
    }

    /// True when the peer sent nothing and did not close: no byte is waiting in the kernel, and on TLS none
    /// inside OpenSSL either. A TLS read takes whatever the socket holds, so a record that came behind the
    /// last answer sits in OpenSSL's buffer or its BIO, invisible to the kernel check. `probe_kernel` false:
    /// only what is already in user space is looked at, and no system call is made.
    bool quiet(bool probe_kernel = true) {
        if (!socket_.is_open()) return false;
        if (tls_) {
            SSL* ssl = tls_->native_handle();
            if (SSL_has_pending(ssl) != 0 || BIO_ctrl_pending(SSL_get_rbio(ssl)) != 0) return false;
        }
        if (!probe_kernel) return true;
        char c = 0;
        const auto r = ::recv(socket_.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r >= 0) return false; // 0: EOF, the peer closed; > 0: unsolicited bytes (or a TLS alert)
        return errno == EAGAIN || errno == EWOULDBLOCK;
    }

    std::uint64_t bytes_sent() const noexcept { return bytes_sent_; }
    std::uint64_t bytes_received() const noexcept { return bytes_received_; }
    std::uint64_t writes() const noexcept { return writes_; }

private:
    tcp::socket socket_;
    std::optional<tls_stream> tls_;
    std::string out_;
    std::uint64_t bytes_sent_ = 0;
    std::uint64_t bytes_received_ = 0;
    std::uint64_t writes_ = 0;
};

/// Reads whole HTTP messages from a stream through the shared parser, keeping what arrives beyond one message
/// for the next (pipelined requests) or for the caller to see (stray bytes after a response).
class message_reader {
public:
    /// Waits until at least one byte is buffered (the idle part of a keep-alive connection). Fails with
    /// error::connection_closed when the peer closed first.
    asio::awaitable<error_code> fill(stream& s) {
        if (begin_ != end_) co_return error_code{};
        auto [ec, n] = co_await s.read_some(asio::buffer(in_));
        if (ec) co_return is_eof(ec) ? make_error_code(error::connection_closed) : ec;
        begin_ = 0;
        end_ = n;
        co_return error_code{};
    }

    /// Reads one whole message into `p`. The peer closing first fails with error::connection_closed (the
    /// parser's started() tells whether it closed inside the message), except for a response whose body is
    /// delimited by the close, which the close completes.
    template <class Parser>
    asio::awaitable<error_code> read(stream& s, Parser& p) {
        while (!p.done()) {
            if (begin_ == end_) {
                auto [ec, n] = co_await s.read_some(asio::buffer(in_));
                if (ec) {
                    if (!is_eof(ec)) co_return ec;
                    if (!p.started()) co_return make_error_code(error::connection_closed);
                    error_code fec;
                    p.finish(fec);
                    co_return fec ? make_error_code(error::connection_closed) : error_code{};
                }
                begin_ = 0;
                end_ = n;
            }
            error_code pec;
            begin_ += p.feed(std::string_view(in_.data() + begin_, end_ - begin_), pec);
            if (pec) co_return pec;
        }
        co_return error_code{};
    }

    /// Bytes received beyond the last message.
    bool buffered() const noexcept { return begin_ != end_; }
    void clear() noexcept { begin_ = end_ = 0; }

private:
    static bool is_eof(const error_code& ec) {
        return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
    }

    std::array<char, 16 * 1024> in_{};
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

/// One deadline for whatever a stream (or a connection) waits on: armed for a phase (connect, a request's
/// read, a write), disarmed after it. On expiry it cancels the target's operations (the owner may still
/// answer, e.g. 408) or closes it. A completion that was already queued when the watchdog was re-armed,
/// disarmed or destroyed is a no-op: the generation and the weak reference see to it.
///
/// Re-arming is lazy: a wait already under way that ends no later than the new deadline is kept, and when
/// it ends it waits again for what is left. A server arms and suspends its connection's watchdog several
/// times per request; each change of the earliest timer would otherwise cost a timer update in the kernel
/// (timerfd_settime) per phase.
class watchdog {
public:
    enum class on_expiry { cancel, close };
    using clock = std::chrono::steady_clock;
    using duration = clock::duration;

    /// `target` has cancel() and close(), both noexcept, and outlives the watchdog.
    template <class Target>
    watchdog(const asio::any_io_executor& ex, Target& target) : state_(std::make_shared<shared_state>(ex)) {
        state_->target = &target;
        state_->act = [](void* t, on_expiry what) noexcept {
            if (what == on_expiry::close) static_cast<Target*>(t)->close();
            else
                static_cast<Target*>(t)->cancel();
        };
    }
    watchdog(const watchdog&) = delete;
    watchdog& operator=(const watchdog&) = delete;

    void arm(duration d, on_expiry what = on_expiry::close) {
        auto& s = *state_;
        s.expired = false;
        s.what = what;
        s.armed = true;
        s.deadline = clock::now() + d;
        if (s.waiting && s.wait_until <= s.deadline) return; // that wait ends first and waits again
        shared_state::wait(state_);
    }

    /// Nothing is watched until the next arm(); a wait under way is left to end by itself (and then finds
    /// nothing armed). For a pause between two phases that follow each other soon.
    void suspend() noexcept { state_->armed = false; }

    /// Nothing is watched, and the timer is cancelled: for the end of a connection's use, so that no wait
    /// keeps the io_context busy.
    void disarm() noexcept {
        auto& s = *state_;
        s.armed = false;
        if (!s.waiting) return;
        s.waiting = false;
        ++s.generation;
        s.timer.cancel();
    }

    /// The last armed deadline passed before disarm() or suspend().
    bool expired() const noexcept { return state_->expired; }

private:
    struct shared_state {
        explicit shared_state(const asio::any_io_executor& ex) : timer(ex) {}
        asio::steady_timer timer;
        void* target = nullptr;
        void (*act)(void*, on_expiry) noexcept = nullptr;
        clock::time_point deadline{};
        clock::time_point wait_until{}; ///< the wait under way, when `waiting`
        std::uint64_t generation = 0;   ///< of the wait under way: an older completion is stale
        bool armed = false;
        bool waiting = false;
        bool expired = false;
        on_expiry what = on_expiry::close;

        /// Waits until `deadline` (cancelling a wait under way, whose completion is then stale).
        static void wait(const std::shared_ptr<shared_state>& s) {
            s->waiting = true;
            s->wait_until = s->deadline;
            const std::uint64_t gen = ++s->generation;
            s->timer.expires_at(s->deadline);
            s->timer.async_wait(expiry{s, gen});
        }
    };

    struct expiry {
        std::weak_ptr<shared_state> weak;
        std::uint64_t gen;
        void operator()(const error_code& ec) const {
            const auto st = weak.lock();
            if (!st || st->generation != gen) return; // the watchdog is gone, or a newer wait replaced this one
            st->waiting = false;
            if (ec || !st->armed) return;
            if (clock::now() < st->deadline) { // re-armed since this wait began: wait for what is left
                shared_state::wait(st);
                return;
            }
            st->armed = false;
            st->expired = true;
            st->act(st->target, st->what);
        }
    };

    std::shared_ptr<shared_state> state_;
};

} // namespace detail
CALLSAVVY_END_NAMESPACE
