// callsavvy/net/server.hpp — the server side of HTTP/1.1 on Asio, shared by the mock Callsavvy server and the
// webhook listener: accept (plain or TLS) on the shared transport (net/stream.hpp), read requests with the
// shared codec under limits and deadlines, run a coroutine handler per request and write its reply in one
// write; overload policies, graceful shutdown, and an event hook for everything the server decides itself.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/error.hpp>
#include <callsavvy/http/error.hpp>
#include <callsavvy/http/parser.hpp>
#include <callsavvy/http/serializer.hpp>
#include <callsavvy/net/stream.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE

/// What the server does once max_connections connections are open.
enum class overload_policy {
    pause_accepting, ///< accept nothing until a connection closes; new clients wait in the listen backlog
    answer_503,      ///< accept, answer 503 with Retry-After (after the TLS handshake on HTTPS), then close
};

/// Something the server decided by itself, reported through server_options::on_event. It carries no request
/// data beyond the peer's address (no header, no body), so nothing a credential could be in.
struct server_event {
    enum class kind {
        accepted,           ///< a connection was accepted and will be served
        rejected_by_filter, ///< the accept filter refused the connection; closed before anything was read
        rejected_overload,  ///< max_connections were open (answer_503: `status` is 503; 0: closed unanswered)
        request_rejected,   ///< the server answered a request itself (400, 408, 413, 431) and closed
        handler_failed,     ///< the handler threw, or its reply could not be sent; answered 500
        accept_failed,      ///< accept() failed; out of descriptors or memory, accepting pauses accept_backoff
    };
    kind what = kind::accepted;
    std::uint64_t connection_id = 0; ///< 0 for accept_failed
    asio::ip::tcp::endpoint remote{};
    int status = 0;       ///< the status the server answered, 0 when it answered nothing
    std::string reason{}; ///< request_rejected: the codec's finding; handler_failed: the exception's what()
    error_code ec{};      ///< request_rejected: the codec's or the deadline's error; accept_failed: accept's
};

struct server_options {
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;                             ///< 0: an ephemeral port
    std::shared_ptr<asio::ssl::context> tls{};          ///< set: HTTPS with this context's certificate
    http::limits limits{};                              ///< request limits: 413 for the body, 431 for the headers
    std::chrono::milliseconds handshake_timeout{10000}; ///< a TLS handshake must end within this
    /// A request must arrive whole within this, counted from its first byte; late: 408 and close.
    std::chrono::milliseconds read_timeout{10000};
    std::chrono::milliseconds idle_timeout{60000}; ///< a keep-alive connection without a request closes after this
    /// An answer (and a TLS close) must leave within this: a client that stops reading loses its connection.
    std::chrono::milliseconds write_timeout{10000};
    /// After an error answer (400, 408, 413, 431, 503), what the client still sends is read and dropped for at
    /// most this long and this many bytes before closing, so the answer is not destroyed by a reset.
    std::chrono::milliseconds linger_timeout{2000};
    std::size_t linger_bytes = 4 * 1024 * 1024;
    /// Connections served at once (at least 1). answer_503 also answers at most this many refused ones at a
    /// time; beyond that a refused connection is closed unanswered.
    std::size_t max_connections = 4096;
    overload_policy on_overload = overload_policy::pause_accepting;
    std::chrono::seconds overload_retry_after{1}; ///< answer_503's Retry-After
    /// After accept() ran out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), the next accept waits
    /// this long (or until a connection closes): retrying at once would spin on the connection still queued.
    std::chrono::milliseconds accept_backoff{50};
    /// Called on the strand of the connection concerned (accept events and accept_failed: the acceptor's), so
    /// events of different connections may arrive on several threads at once; one connection's are in order.
    /// Never called after stop(). An exception it throws is dropped.
    std::function<void(const server_event&)> on_event{};
};

/// A request as the handler sees it.
struct server_request {
    http::request message{};
    asio::ip::tcp::endpoint remote{};
    std::uint64_t connection_id = 0; ///< 1 for the first connection the server accepted
    std::uint64_t sequence = 0;      ///< requests this connection carried before this one
};

/// What the handler wants done. The serializer adds Content-Length (unless the response has a Content-Length
/// or Transfer-Encoding of its own, which is then sent as given); the server adds `Connection: close` when it
/// closes after the answer.
struct server_reply {
    enum class action {
        respond, ///< write `response`
        close,   ///< close the connection without answering
    };
    http::response response{};
    action what = action::respond;
    bool close_after = false; ///< close the connection after this answer
};

/// How a graceful shutdown went.
struct shutdown_result {
    std::size_t finished = 0;    ///< handlers that completed after the shutdown began (their reply said close)
    std::size_t cancelled = 0;   ///< handlers still running when the grace period ended: terminal cancellation
    std::size_t idle_closed = 0; ///< connections closed at once, with no request under way
};

/// The server. Runs on the given executor; every connection on its own strand of it, so the io_context may run
/// on several threads. Handlers of different connections run concurrently; one connection's requests run one
/// after another, in the order they arrived (pipelined answers leave in order). A handler runs under a
/// cancellation slot the server owns: stop() (or a graceful shutdown's end of grace) emits terminal
/// cancellation into it, so whatever it awaits ends at once. Every member function may be called from any
/// thread. After async_shutdown() completed no handler, responder, filter or event hook runs any more; after
/// stop() alone, handlers may still be unwinding on other threads of a multi-threaded io_context.
class http_server {
public:
    using handler_type = std::function<asio::awaitable<server_reply>(server_request&)>;
    /// Builds the answer to a request the server rejected itself (malformed, too large, too slow, overload,
    /// a failed handler). Called on the connection's strand; an exception it throws gives a plain-text answer.
    using error_responder = std::function<http::response(int status, std::string_view reason)>;
    /// Called at accept on the acceptor's strand; returning false closes the connection before anything is read.
    using accept_filter = std::function<bool(const asio::ip::tcp::endpoint& remote)>;

    http_server(asio::any_io_executor ex, server_options o, handler_type handler, error_responder on_error = {})
        : state_(std::make_shared<state>(std::move(ex), std::move(o), std::move(handler), std::move(on_error))) {
        auto& st = *state_;
        const asio::ip::tcp::endpoint ep(asio::ip::make_address(st.opts.address), st.opts.port);
        st.acceptor.open(ep.protocol());
        st.acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true));
        st.acceptor.bind(ep);
        st.acceptor.listen();
        local_ = st.acceptor.local_endpoint();
        asio::co_spawn(st.strand, accept_loop(state_), asio::detached);
    }
    ~http_server() {
        detail::in_destructor([this] { stop(); });
    }
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    std::uint16_t port() const noexcept { return local_.port(); }
    const asio::ip::tcp::endpoint& local_endpoint() const noexcept { return local_; }
    bool is_tls() const noexcept { return state_->opts.tls != nullptr; }
    std::uint64_t connections_accepted() const noexcept { return state_->accepted.load(); }
    /// Connections being served or refused (answer_503) right now.
    std::size_t open_connections() const {
        const std::lock_guard<std::mutex> lock(state_->mutex);
        return state_->serving + state_->refusing;
    }
    /// accept() calls that failed (out of descriptors, memory, or a connection aborted before it was taken).
    std::uint64_t accept_failures() const noexcept { return state_->accept_failures.load(); }
    void set_accept_filter(accept_filter f) {
        auto p = f ? std::make_shared<const accept_filter>(std::move(f)) : nullptr;
        const std::lock_guard<std::mutex> lock(state_->mutex);
        state_->filter = std::move(p);
    }

    /// At once: closes the acceptor and every connection, and emits terminal cancellation into every running
    /// handler. Nothing is answered any more. Idempotent.
    void stop() { state::stop(state_); }

    /// Graceful shutdown: stops accepting; idle connections (no request under way) close now; a connection in
    /// the middle of a request finishes it (the handler completes, its reply goes out with Connection: close)
    /// and closes. When `grace` has passed, what is left ends as with stop(). Completes with a shutdown_result
    /// once every connection is gone (a handler that ignores cancellation holds it until it returns). The wait
    /// itself is not cancellable: stop() ends it sooner. Any completion token; use_awaitable by default.
    template <class CompletionToken = asio::use_awaitable_t<>>
    auto async_shutdown(std::chrono::milliseconds grace, CompletionToken&& token = {}) {
        return asio::async_initiate<CompletionToken, void(shutdown_result)>(initiate_shutdown{state_}, token, grace);
    }

private:
    using clock = std::chrono::steady_clock;
    enum class mode { running, draining, stopped };

    /// One connection; touched only on its strand (`ex`), except for the registry that holds it.
    struct conn {
        enum class phase { handshake, idle, reading, handling, writing, lingering };
        conn(asio::ip::tcp::socket s, std::uint64_t i, asio::ip::tcp::endpoint r)
            : ex(s.get_executor()), stream(std::move(s)), watchdog(ex, *this), id(i), remote(std::move(r)) {}
        conn(const conn&) = delete;
        conn& operator=(const conn&) = delete;

        asio::any_io_executor ex;
        detail::stream stream;
        detail::message_reader reader;
        detail::watchdog watchdog;
        asio::cancellation_signal signal; ///< bound to the connection's coroutine, and so to its handler
        std::uint64_t id;
        asio::ip::tcp::endpoint remote;
        phase at = phase::handshake;
        bool killed = false;      ///< stop() reached it
        bool closed_idle = false; ///< a graceful shutdown closed it between requests
        bool done = false;        ///< its coroutine ended

        // The watchdog's actions: cancel keeps the socket open so a 408 can still be written.
        void cancel() noexcept { stream.cancel(); }
        void close() noexcept { stream.close(); }

        void kill() {
            if (done) return;
            killed = true;
            signal.emit(asio::cancellation_type::terminal);
            stream.close();
        }
        /// Closes the connection now unless a request is under way; true when it did.
        bool close_if_idle() {
            if (done || (at != phase::idle && at != phase::handshake)) return false;
            closed_idle = true;
            stream.close();
            return true;
        }
    };

    struct state {
        state(asio::any_io_executor e, server_options o, handler_type h, error_responder r)
            : ex(std::move(e)), strand(asio::make_strand(ex)), opts(std::move(o)), handler(std::move(h)),
              on_error(std::move(r)), acceptor(strand), resume_accept(strand) {}

        asio::any_io_executor ex;                   ///< each connection's strand is made from it
        asio::strand<asio::any_io_executor> strand; ///< the acceptor's: accept loop, resume_accept, drain_waiters
        server_options opts;
        handler_type handler;
        error_responder on_error;
        asio::ip::tcp::acceptor acceptor;
        asio::steady_timer resume_accept; ///< a paused accept loop or an accept back-off waits on it
        std::vector<asio::steady_timer*> drain_waiters;

        std::atomic<mode> at{mode::running};
        std::atomic<std::uint64_t> accepted{0};
        std::atomic<std::uint64_t> accept_failures{0};
        std::atomic<std::size_t> finished{0};
        std::atomic<std::size_t> cancelled{0};
        std::atomic<std::size_t> idle_closed{0};

        mutable std::mutex mutex; // guards what follows
        std::unordered_map<std::uint64_t, std::shared_ptr<conn>> conns;
        std::size_t serving = 0;  ///< admitted to be served (registered in conns once their coroutine starts)
        std::size_t refusing = 0; ///< being answered 503
        std::shared_ptr<const accept_filter> filter;

        bool closing() const noexcept { return at.load() != mode::running; }
        bool stopped() const noexcept { return at.load() == mode::stopped; }

        std::size_t open() const {
            const std::lock_guard<std::mutex> lock(mutex);
            return serving + refusing;
        }

        void report(const server_event& e) const noexcept {
            if (!opts.on_event || stopped()) return;
            try {
                opts.on_event(e);
            } catch (...) {} // an observer must not take a connection down
        }

        http::response error_response(int status, std::string_view reason) const {
            if (on_error) {
                try {
                    return on_error(status, reason);
                } catch (...) {} // the plain answer below still goes out
            }
            return plain_error(status, reason);
        }

        /// Wakes the accept loop (a slot is free) and graceful shutdowns (a connection is gone). Acceptor strand.
        void wake() {
            resume_accept.cancel();
            for (auto* w : drain_waiters) w->cancel();
        }

        static void stop(const std::shared_ptr<state>& st) {
            std::vector<std::shared_ptr<conn>> live;
            {
                const std::lock_guard<std::mutex> lock(st->mutex);
                if (st->at.load() == mode::stopped) return;
                st->at.store(mode::stopped);
                live.reserve(st->conns.size());
                for (const auto& [id, c] : st->conns) live.push_back(c);
            }
            asio::dispatch(st->strand, [st] {
                error_code ignored;
                st->acceptor.close(ignored);
                st->wake();
            });
            for (auto& c : live) asio::dispatch(c->ex, [c] { c->kill(); });
        }
    };

    enum class admission { serve, refuse, drop };

    static bool out_of_resources(const error_code& ec) {
        return ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
               ec == asio::error::no_memory ||
               (ec.category() == asio::error::get_system_category() && ec.value() == ENFILE);
    }

    static admission admit(state& st) {
        const std::lock_guard<std::mutex> lock(st.mutex);
        if (st.serving < st.opts.max_connections) {
            ++st.serving;
            return admission::serve;
        }
        if (st.opts.on_overload == overload_policy::answer_503 && st.refusing < st.opts.max_connections) {
            ++st.refusing;
            return admission::refuse;
        }
        return admission::drop;
    }

    /// A filter that throws refuses the connection: the accept loop must outlive any callback.
    static bool allowed(const accept_filter& f, const asio::ip::tcp::endpoint& remote) noexcept {
        try {
            return f(remote);
        } catch (...) {
            return false;
        }
    }

    static bool at_capacity(const state& st) {
        const std::lock_guard<std::mutex> lock(st.mutex);
        return st.serving >= st.opts.max_connections;
    }

    static asio::awaitable<void> accept_loop(std::shared_ptr<state> st) {
        while (!st->closing()) {
            if (st->opts.on_overload == overload_policy::pause_accepting && at_capacity(*st)) {
                // Checked and awaited in one step of the acceptor's strand, where a closing connection's wake()
                // runs too: the wake-up cannot fall between the two.
                st->resume_accept.expires_at(clock::time_point::max());
                auto [ec] = co_await st->resume_accept.async_wait(detail::use_nothrow);
                (void)ec; // woken, or stopped: the loop condition tells
                continue;
            }
            const asio::any_io_executor conn_ex = asio::make_strand(st->ex);
            auto [ec, socket] = co_await st->acceptor.async_accept(conn_ex, detail::use_nothrow);
            if (st->closing()) co_return; // the socket closes with it
            if (ec) {
                if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) co_return;
                ++st->accept_failures;
                server_event e;
                e.what = server_event::kind::accept_failed;
                e.ec = ec;
                st->report(e);
                if (out_of_resources(ec)) {
                    // The connection that failed is still queued: accepting again at once fails again at once.
                    st->resume_accept.expires_after(st->opts.accept_backoff);
                    auto [wec] = co_await st->resume_accept.async_wait(detail::use_nothrow);
                    (void)wec; // the back-off passed, or a connection closed (a descriptor is free), or stopped
                }
                continue;
            }
            const std::uint64_t id = ++st->accepted;
            error_code ignored;
            server_event e;
            e.connection_id = id;
            e.remote = socket.remote_endpoint(ignored);
            std::shared_ptr<const accept_filter> filter;
            {
                const std::lock_guard<std::mutex> lock(st->mutex);
                filter = st->filter;
            }
            if (filter && !allowed(*filter, e.remote)) {
                socket.close(ignored);
                e.what = server_event::kind::rejected_by_filter;
                st->report(e);
                continue;
            }
            const admission a = admit(*st);
            if (a == admission::drop) {
                socket.close(ignored);
                e.what = server_event::kind::rejected_overload;
                st->report(e);
                continue;
            }
            socket.set_option(asio::ip::tcp::no_delay(true), ignored);
            auto c = std::make_shared<conn>(std::move(socket), id, e.remote);
            e.what = a == admission::serve ? server_event::kind::accepted : server_event::kind::rejected_overload;
            e.status = a == admission::serve ? 0 : 503;
            st->report(e);
            // The completion handler keeps the connection (and the signal its slot lives in) alive until the
            // coroutine is wholly done.
            asio::co_spawn(c->ex, run(st, c, a == admission::refuse),
                           asio::bind_cancellation_slot(c->signal.slot(), [c](std::exception_ptr) {}));
        }
    }

    /// A connection's whole life: registered (so stop() and shutdowns reach it) unless the server is closing
    /// already, served or refused, closed, unregistered.
    static asio::awaitable<void> run(std::shared_ptr<state> st, std::shared_ptr<conn> c, bool refused) {
        bool registered = false;
        {
            const std::lock_guard<std::mutex> lock(st->mutex);
            if (!st->closing()) {
                st->conns.emplace(c->id, c);
                registered = true;
            }
        }
        if (!registered) ++st->idle_closed; // accepted just as the server began closing: nothing under way
        else {
            try {
                if (refused) co_await refuse(*st, *c);
                else
                    co_await serve(*st, *c);
            } catch (const std::exception&) {
                // Only the unexpected gets here (std::bad_alloc, say): it costs this connection, never the server.
            }
        }
        c->done = true;
        c->watchdog.disarm();
        c->stream.close();
        {
            const std::lock_guard<std::mutex> lock(st->mutex);
            if (registered) st->conns.erase(c->id);
            --(refused ? st->refusing : st->serving);
        }
        asio::post(st->strand, [st] { st->wake(); });
    }

    static asio::awaitable<bool> handshake(state& st, conn& c) {
        if (!st.opts.tls) co_return true;
        auto& tls = c.stream.start_tls(*st.opts.tls);
        c.watchdog.arm(st.opts.handshake_timeout);
        auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::server, detail::use_nothrow);
        c.watchdog.disarm();
        co_return !ec && !c.killed;
    }

    static asio::awaitable<void> refuse(state& st, conn& c) {
        // Awaited in a statement of its own: g++ 12 miscompiled `if (!co_await handshake(...))` here (SIGILL).
        const bool ready = co_await handshake(st, c);
        if (!ready) co_return;
        c.at = conn::phase::reading; // an answer is under way: a graceful shutdown lets it finish
        co_await answer_error(st, c, 503, "too many connections"); // reported at accept
    }

    static int status_for(const error_code& ec) {
        if (ec == http::error::body_too_large) return 413;
        if (ec == http::error::headers_too_large || ec == http::error::too_many_headers) return 431;
        return 400;
    }

    static asio::awaitable<void> serve(state& st, conn& c) {
        const bool ready = co_await handshake(st, c);
        if (!ready) co_return;
        http::request_parser parser(st.opts.limits);
        for (std::uint64_t seq = 0; !c.killed; ++seq) {
            if (st.closing()) { // a shutdown began between two requests: nothing is under way
                ++st.idle_closed;
                co_return;
            }
            // Idle until the first byte of the next request (a pipelined one is there already), then
            // read_timeout for the whole of it.
            c.at = conn::phase::idle;
            c.watchdog.arm(st.opts.idle_timeout);
            error_code ec = co_await c.reader.fill(c.stream);
            // Closed, idle too long, or a shutdown closed it (perhaps just after bytes it will not serve arrived).
            if (ec || c.closed_idle) co_return;
            c.at = conn::phase::reading;
            c.watchdog.arm(st.opts.read_timeout, detail::watchdog::on_expiry::cancel);
            ec = co_await c.reader.read(c.stream, parser);
            const bool late = c.watchdog.expired();
            c.watchdog.suspend(); // the handler has no deadline of the server's; the next phase re-arms it
            if (ec) {
                if (c.killed) co_return;
                if (late) co_await reject(st, c, 408, "request not received in time", ec);
                else if (ec.category() == http::error_category())
                    co_await reject(st, c, status_for(ec), ec.message(), ec);
                co_return; // else the client closed or reset mid-request: nobody to answer
            }
            server_request req;
            req.message = parser.release();
            parser.reset();
            req.remote = c.remote;
            req.connection_id = c.id;
            req.sequence = seq;
            if (st.stopped()) co_return; // the handler's owner may be gone already
            c.at = conn::phase::handling;
            server_reply reply;
            std::string failure;
            bool failed = false;
            try {
                reply = co_await st.handler(req);
            } catch (const std::exception& x) {
                failed = true;
                failure = x.what();
            } catch (...) {
                failed = true;
                failure = "the handler threw a non-standard exception";
            }
            if (c.killed) {
                ++st.cancelled;
                co_return;
            }
            if (st.closing()) ++st.finished;
            if (st.stopped() || (!failed && reply.what == server_reply::action::close)) co_return;
            // The request was read whole, so a failed handler costs only its own answer: the connection's
            // framing still holds and the next request is served.
            const bool close = reply.close_after || !req.message.keep_alive() || st.closing();
            std::string head;
            if (!failed) {
                if (close) reply.response.headers.set("Connection", "close");
                error_code hec;
                head = http::serialize_head(reply.response, hec);
                if (hec) {
                    failed = true;
                    failure = "the reply cannot be sent: " + hec.message();
                }
            }
            if (failed) {
                server_event e = event_for(c, server_event::kind::handler_failed);
                e.status = 500;
                e.reason = std::move(failure);
                st.report(e);
                reply.response = st.error_response(500, "internal server error");
                head = head_of(reply.response, 500, "internal server error", close);
            }
            c.at = conn::phase::writing;
            c.watchdog.arm(st.opts.write_timeout);
            ec = co_await c.stream.write(head, reply.response.body);
            if (!ec && close) co_await c.stream.shutdown(); // TLS: close_notify, bounded by the same deadline
            c.watchdog.suspend();
            if (ec || close) co_return;
        }
    }

    static server_event event_for(const conn& c, server_event::kind k) {
        server_event e;
        e.what = k;
        e.connection_id = c.id;
        e.remote = c.remote;
        return e;
    }

    static http::response plain_error(int status, std::string_view reason) {
        http::response r;
        r.status = status;
        r.headers.add("Content-Type", "text/plain");
        r.body = std::string(reason);
        return r;
    }

    /// The head of an answer the server writes itself; a responder's answer that cannot be sent is replaced by
    /// the plain one.
    static std::string head_of(http::response& r, int status, std::string_view reason, bool close) {
        if (close) r.headers.set("Connection", "close");
        error_code ec;
        std::string head = http::serialize_head(r, ec);
        if (!ec) return head;
        r = plain_error(status, reason);
        return head_of(r, status, reason, close);
    }

    /// Answers what the server rejected itself, then closes lingering: the client may still be sending (the rest
    /// of a body too large, say), and closing with unread bytes would reset the connection, which can destroy
    /// the answer in flight.
    static asio::awaitable<void> reject(state& st, conn& c, int status, std::string reason, error_code why) {
        server_event e = event_for(c, server_event::kind::request_rejected);
        e.status = status;
        e.reason = reason;
        e.ec = why;
        st.report(e);
        co_await answer_error(st, c, status, reason);
    }

    static asio::awaitable<void> answer_error(state& st, conn& c, int status, std::string_view reason) {
        if (st.stopped()) co_return; // the error responder's owner may be gone already
        http::response r = st.error_response(status, reason);
        if (status == 503 && !r.headers.find("Retry-After"))
            r.headers.set("Retry-After", std::to_string(st.opts.overload_retry_after.count()));
        const std::string head = head_of(r, status, reason, true);
        c.at = conn::phase::writing;
        c.watchdog.arm(st.opts.write_timeout);
        const error_code wec = co_await c.stream.write(head, r.body);
        c.watchdog.disarm();
        if (wec) co_return;
        c.at = conn::phase::lingering;
        c.stream.shutdown_send();
        c.watchdog.arm(st.opts.linger_timeout);
        const std::uint64_t start = c.stream.bytes_received();
        while (!c.killed && c.stream.bytes_received() - start < st.opts.linger_bytes) {
            c.reader.clear();
            const error_code ec = co_await c.reader.fill(c.stream);
            if (ec) break; // the client closed: the answer has arrived
        }
        c.watchdog.disarm();
    }

    static asio::awaitable<shutdown_result> shut_down(std::shared_ptr<state> st, std::chrono::milliseconds grace) {
        {
            std::vector<std::shared_ptr<conn>> live;
            {
                const std::lock_guard<std::mutex> lock(st->mutex);
                if (st->at.load() == mode::running) {
                    st->at.store(mode::draining);
                    for (const auto& [id, c] : st->conns) live.push_back(c);
                }
            }
            error_code ignored;
            st->acceptor.close(ignored);
            st->resume_accept.cancel();
            for (auto& c : live) {
                asio::dispatch(c->ex, [c, st] {
                    if (c->close_if_idle()) ++st->idle_closed;
                });
            }
        }
        asio::steady_timer wake(st->strand);
        st->drain_waiters.push_back(&wake);
        const auto deadline = clock::now() + grace;
        bool escalated = false;
        // The count is read and the wait begun in one step of the acceptor's strand, where the connections'
        // wake() runs: a connection leaving in between cannot be missed.
        while (st->open() > 0) {
            if (!escalated && clock::now() >= deadline) {
                escalated = true;
                state::stop(st);
            }
            wake.expires_at(escalated ? clock::time_point::max() : deadline);
            auto [ec] = co_await wake.async_wait(detail::use_nothrow);
            (void)ec; // a connection left, or the grace period passed
        }
        st->drain_waiters.erase(std::find(st->drain_waiters.begin(), st->drain_waiters.end(), &wake));
        shutdown_result r;
        r.finished = st->finished.load();
        r.cancelled = st->cancelled.load();
        r.idle_closed = st->idle_closed.load();
        co_return r;
    }

    struct initiate_shutdown {
        std::shared_ptr<state> st;

        template <class Handler>
        void operator()(Handler&& handler, std::chrono::milliseconds grace) const {
            auto work = asio::make_work_guard(asio::get_associated_executor(handler, st->ex));
            asio::co_spawn(st->strand, shut_down(st, grace),
                           [h = std::forward<Handler>(handler), work = std::move(work)](std::exception_ptr,
                                                                                        shutdown_result r) mutable {
                               // Completes on the waiter's own executor, never inside the acceptor's strand.
                               auto ex = work.get_executor();
                               asio::post(ex, [h = std::move(h), r]() mutable { std::move(h)(r); });
                               work.reset();
                           });
        }
    };

    std::shared_ptr<state> state_;
    asio::ip::tcp::endpoint local_{};
};

CALLSAVVY_END_NAMESPACE
