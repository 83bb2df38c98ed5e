// callsavvy/client.hpp — the async Callsavvy client: `co_await client.async_call("getSummary", {})` and the
// same with any Asio completion token. It runs on the application's executor and owns no threads; a call
// goes from the request through a pooled keep-alive connection (TCP or verified TLS, optionally through a
// CONNECT proxy) to the checked envelope, with per-attempt timeouts, an overall deadline, cancellation and
// retries that never re-send a request the server may have processed.
//
// Thread safety: a client is not internally locked. Start every operation (and close()) from the client's
// executor; in a multi-threaded io_context give the client a strand. Completion handlers run on their own
// associated executor, as Asio's model says.
#pragma once

#include <callsavvy/api/endpoints.hpp>
#include <callsavvy/config.hpp>
#include <callsavvy/envelope.hpp>
#include <callsavvy/error.hpp>
#include <callsavvy/http/parser.hpp>
#include <callsavvy/http/serializer.hpp>
#include <callsavvy/http/url.hpp>
#include <callsavvy/json/mapping.hpp>
#include <callsavvy/limiter.hpp>
#include <callsavvy/net/connection.hpp>
#include <callsavvy/net/proxy.hpp>
#include <callsavvy/net/tls.hpp>
#include <callsavvy/retry.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE

/// The account's API key pair, sent as the Public-Key and Private-Key headers. Never logged or reported.
struct credentials {
    std::string public_key{};
    std::string private_key{};
};

/// How failed attempts are retried (which failures qualify is fixed by the retry-safety rules, not here).
struct retry_options {
    int max_attempts = 3; ///< attempts per call, the first included; 429s not counted
    /// 429s are always retried (they prove the request was not processed), at most this many times per call
    /// and within its deadline; then the call fails with error::rate_limited.
    int max_rate_limited_retries = 50;
    std::chrono::milliseconds backoff_base{200};  ///< exponential backoff with full jitter: base * 2^(n-1) ...
    std::chrono::milliseconds backoff_cap{10000}; ///< ... capped here
};

/// What the observer hook sees after every attempt: for logging and metrics. Holds no credentials.
struct call_event {
    std::string resource{};
    int attempt = 0;                               ///< 1 for the first attempt
    int http_status = 0;                           ///< 0 when no response arrived
    error_code ec{};                               ///< the attempt's outcome
    std::chrono::steady_clock::duration latency{}; ///< of this attempt
    std::uint64_t bytes_sent = 0;
    std::uint64_t bytes_received = 0;
    bool reused_connection = false;
    bool will_retry = false;
    std::chrono::steady_clock::duration limiter_wait{}; ///< time parked in the rate limiter before this attempt
};

struct client_options {
    credentials keys{};
    /// scheme://host[:port]/prefix/ — https by default; http only when given explicitly (tests, a local mock).
    std::string base_url = "https://api.callsavvy.com/v1/";
    /// One attempt: connect (resolve, TCP, proxy, TLS) + write + read.
    std::chrono::milliseconds attempt_timeout{30000};
    /// The whole call: waits for a connection, every attempt and every backoff. Zero: no deadline.
    std::chrono::milliseconds call_deadline{120000};
    std::size_t max_connections = 8;               ///< pooled keep-alive connections to the host
    std::chrono::milliseconds idle_timeout{30000}; ///< idle pooled connections older than this are closed
    http::limits response_limits{};                ///< bounds on each response's head and body
    tls_options tls{};
    proxy_options proxy{};
    retry_options retry{};
    std::string user_agent = "callsavvy-cpp/" CALLSAVVY_VERSION_STRING;
    std::function<void(const call_event&)> observer{};
    std::uint64_t jitter_seed = 0; ///< seed of the backoff jitter; 0 picks a random one
    /// Callsavvy's rate limits (spec §1), applied before each request so the server never has a reason to
    /// answer 429. Shared by every client in the process that uses the same public key: the first client
    /// created for a key sets the limits while any client of that key lives.
    rate_limit_options rate_limits{};
    /// Retries (other than after 429) draw from this budget; when it is spent, failures are reported at once.
    retry_budget_options retry_budget{};
    /// After this many 401/403 answers in a row, calls fail at once until the cool-down passes.
    auth_breaker_options auth_breaker{};
    /// Check typed requests against the catalog's rules before sending. The real server may be more
    /// permissive than the spec says; switch this off to let it decide.
    bool validate_requests = true;
};

namespace detail {

/// What the retry rules decide after a failed attempt.
enum class retry_decision { fail, retry, retry_now, outcome_unknown };

/// The retry-safety rules (spec §2): only what the server provably did not process, or what is read-only,
/// is sent again. `written`: the request's bytes may have reached the server.
inline retry_decision decide_retry(const error_code& ec, int http_status, bool written, bool read_only, bool reused,
                                   bool fresh_retry_used, int attempt, int max_attempts) {
    if (ec == asio::error::operation_aborted) return retry_decision::fail;
    const bool attempts_left = attempt < max_attempts;
    if (http_status != 0) {
        // An answer arrived. 429 proves the request was not processed (the caller bounds those retries
        // separately); a 5xx does not say whether the work was done, so a call that changes state reports
        // an unknown outcome and is never re-sent.
        if (http_status == 429) return retry_decision::retry;
        if (http_status >= 500) {
            if (!read_only) return retry_decision::outcome_unknown;
            return attempts_left ? retry_decision::retry : retry_decision::fail;
        }
        return retry_decision::fail;
    }
    if (ec.category() == callsavvy::error_category()) {
        switch (static_cast<error>(ec.value())) {
        case error::tls_certificate_untrusted:
        case error::tls_hostname_mismatch:
        case error::tls_certificate_invalid:
        case error::invalid_url:
        case error::client_closed:
        case error::validation_failed: return retry_decision::fail; // the same again would fail the same way
        default: break;
        }
    }
    if (ec.category() == http::error_category()) {
        // A broken answer is not a lost one: never re-sent. The request did arrive, so for a call that
        // changes state whether it was done is unknown.
        return written && !read_only ? retry_decision::outcome_unknown : retry_decision::fail;
    }
    if (!written) {
        // Connect failures, or a reused connection that failed on write: nothing reached the server whole.
        if (reused && !fresh_retry_used) return retry_decision::retry_now;
        return attempts_left ? retry_decision::retry : retry_decision::fail;
    }
    if (read_only) return attempts_left ? retry_decision::retry : retry_decision::fail;
    return retry_decision::outcome_unknown;
}

/// Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^(attempt-1))].
template <class Rng>
std::chrono::milliseconds backoff_delay(const retry_options& o, int attempt, Rng& rng) {
    const int shift = attempt - 1 < 20 ? attempt - 1 : 20;
    const auto ceiling =
        std::min<std::int64_t>(o.backoff_cap.count(), o.backoff_base.count() * (std::int64_t{1} << shift));
    if (ceiling <= 0) return std::chrono::milliseconds{0};
    std::uniform_int_distribution<std::int64_t> dist(0, ceiling);
    return std::chrono::milliseconds{dist(rng)};
}

/// Retry-After in whole seconds (spec §1); HTTP dates are not used by Callsavvy.
inline std::optional<std::chrono::seconds> parse_retry_after(std::optional<std::string_view> v) {
    if (!v || v->empty() || v->size() > 9) return std::nullopt;
    std::int64_t s = 0;
    for (char c : *v) {
        if (c < '0' || c > '9') return std::nullopt;
        s = s * 10 + (c - '0');
    }
    return std::chrono::seconds{s};
}

inline bool valid_resource(std::string_view r) {
    if (r.empty() || r.find("..") != std::string_view::npos) return false;
    for (char c : r) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                        c == '-' || c == '.' || c == '/';
        if (!ok) return false;
    }
    return r.front() != '/';
}

struct call_result {
    error_code ec{};
    boost::json::object data;
};

struct call_state;

class client_impl : public std::enable_shared_from_this<client_impl> {
public:
    using clock = std::chrono::steady_clock;

    client_impl(asio::any_io_executor ex, client_options o)
        : ex_(std::move(ex)), opts_(std::move(o)), sweep_timer_(ex_),
          rng_(opts_.jitter_seed != 0 ? opts_.jitter_seed : std::random_device{}()), budget_(opts_.retry_budget),
          breaker_(opts_.auth_breaker) {
        configure();
        // The server counts arrivals: the client reports when each granted request really leaves.
        opts_.rate_limits.count_from_send = true;
        if (opts_.rate_limits.enabled) limiter_ = limiter_for_key(ex_, opts_.keys.public_key, opts_.rate_limits);
    }

    const std::shared_ptr<rate_limiter>& limiter() const noexcept { return limiter_; }

    const asio::any_io_executor& executor() const noexcept { return ex_; }
    const client_options& options() const noexcept { return opts_; }

    /// Whatever the server sent back may echo the request's headers: the keys never leave in diagnostics.
    void redact(diagnostics& d) const {
        for (std::string* text : {&d.server_message, &d.body, &d.detail}) {
            detail::redact(*text, opts_.keys.public_key);
            detail::redact(*text, opts_.keys.private_key);
        }
    }

    asio::awaitable<call_result> call(std::string resource, std::string body, bool read_only, diagnostics& d);
    void close();
    bool closed() const noexcept { return closed_; }

    std::size_t open_connections() const noexcept { return open_; }
    std::size_t idle_connections() const noexcept { return idle_.size(); }

private:
    struct pool_waiter {
        explicit pool_waiter(const asio::any_io_executor& ex) : timer(ex, clock::time_point::max()) {}
        asio::steady_timer timer;
        std::unique_ptr<connection> conn; ///< handed over by release()
        bool slot = false;                ///< or: room to open a new connection
    };

    void configure();
    /// A connection for the next attempt: an idle one, a new one, or one handed over by a finishing call.
    /// `fresh`: never a reused one (the retry after a reused socket failed before the write).
    asio::awaitable<error_code> acquire(call_state& cs, std::unique_ptr<connection>& out, bool& reused, bool fresh);
    asio::awaitable<error_code> acquire_any(call_state& cs, std::unique_ptr<connection>& out, bool& reused, bool fresh);
    void release(std::unique_ptr<connection> c);
    void discard(std::unique_ptr<connection> c);
    void hand_slot_to_waiter();
    void arm_sweep();
    void sweep();
    void close_gracefully(std::unique_ptr<connection> c);

    asio::awaitable<call_result> call_body(std::shared_ptr<call_state> cs);
    asio::awaitable<call_result> attempt(std::shared_ptr<call_state> cs, connection* conn);
    asio::awaitable<error_code> wait_for_rate_limit(call_state& cs, acquire_position position);

    asio::any_io_executor ex_{};
    client_options opts_;
    http::url base_;
    route route_;
    std::shared_ptr<asio::ssl::context> tls_ctx_{};
    error_code config_ec_{};
    std::string config_detail_{};
    http::request template_;

    std::vector<std::unique_ptr<connection>> idle_{}; // most recently used last
    std::size_t open_ = 0;                            // connections opened and not yet discarded, idle or busy
    std::list<pool_waiter*> waiters_;
    std::list<call_state*> calls_;
    asio::steady_timer sweep_timer_;
    bool sweep_armed_ = false;
    bool closed_ = false;
    std::minstd_rand rng_{};
    std::shared_ptr<rate_limiter> limiter_{}; ///< null when rate limiting is off
    retry_budget budget_;
    auth_breaker breaker_;

    friend struct call_state;
};

/// One call in flight: what its timers and close() reach, and how far the current attempt got.
///
/// Timeouts, the deadline and close() interrupt a call by closing its connection or cancelling the timer it
/// waits on, from plain timer handlers. (Racing the call against a timer with awaitable_operators would be
/// shorter, but Asio 1.22's parallel_group forwards only the first cancellation it is asked for: a partial
/// cancellation that the call ignores on the wire would swallow a later terminal one.)
struct call_state {
    enum class stop { none, attempt_timeout, deadline, closed };

    call_state(client_impl& c, std::string res, std::string b, bool ro, diagnostics& diag)
        : client(c), resource(std::move(res)), body(std::move(b)), read_only(ro), d(diag), deadline_timer(c.executor()),
          attempt_timer(c.executor()) {}
    ~call_state() { slot_unused(); }
    call_state(const call_state&) = delete;
    call_state& operator=(const call_state&) = delete;

    /// The limiter's grant of the current attempt counts from the moment its first byte leaves...
    void slot_sent() {
        if (slot != nullptr) std::exchange(slot, nullptr)->sent(resource);
    }
    /// ... or, if the attempt ended before writing, is given back.
    void slot_unused() {
        if (slot != nullptr) std::exchange(slot, nullptr)->unused(resource);
    }

    /// Ends whatever the call is waiting on; the waiting coroutine then reads `attempt_stop`/`call_stop`.
    void interrupt() {
        if (active != nullptr) active->close();
        if (waiting != nullptr) waiting->cancel();
        if (waiting_signal != nullptr) waiting_signal->emit(asio::cancellation_type::terminal);
    }

    client_impl& client;
    std::string resource;
    std::string body;
    bool read_only;
    diagnostics& d;
    asio::steady_timer deadline_timer;
    asio::steady_timer attempt_timer;
    std::list<call_state*>::iterator registration;
    connection* active = nullptr;                        ///< the connection of the attempt in progress
    asio::steady_timer* waiting = nullptr;               ///< the timer a pool wait or a backoff parks on
    asio::cancellation_signal* waiting_signal = nullptr; ///< ends a wait in the rate limiter
    rate_limiter* slot = nullptr; ///< holds a grant of the rate limiter not yet sent or given back
    unsigned attempt_id = 0;
    stop attempt_stop = stop::none; ///< why the current attempt was interrupted
    stop call_stop = stop::none;    ///< why the whole call was interrupted
    bool written = false;           ///< the current attempt started writing the request
    bool got_bytes = false;         ///< the current attempt received response bytes
    int http_status = 0;            ///< of the current attempt
    std::optional<std::chrono::seconds> retry_after;
};

/// Publishes what a call waits on (for interrupt()) for exactly as long as it waits there, however the
/// wait ends: a pointer left behind would let close() touch a finished coroutine's frame.
template <class T>
struct published {
    published(T*& slot, T& value) : slot_(slot) { slot_ = &value; }
    ~published() { slot_ = nullptr; }
    published(const published&) = delete;
    published& operator=(const published&) = delete;

private:
    T*& slot_;
};

inline void client_impl::configure() {
    error_code ec{};
    auto u = http::parse_url(opts_.base_url, ec);
    if (ec || !u) {
        config_ec_ = make_error_code(error::invalid_url);
        config_detail_ = "base URL is not an http(s) URL";
        return;
    }
    base_ = *u;
    if (base_.path.empty() || base_.path.back() != '/') base_.path += '/';
    route_.host = base_.host;
    route_.port = base_.port;
    route_.tls = base_.is_https();
    route_.proxy = select_proxy(opts_.proxy, base_, ec);
    if (ec) {
        config_ec_ = make_error_code(error::invalid_url);
        config_detail_ = "proxy URL is not an http:// URL";
        return;
    }
    if (route_.tls) {
        tls_ctx_ = make_tls_context(opts_.tls, ec, config_detail_);
        if (!tls_ctx_) {
            config_ec_ = make_error_code(error::tls_handshake_failed);
            return;
        }
    }
    template_.method = "POST";
    template_.version = 11;
    template_.headers.add("Host", base_.host_header());
    template_.headers.add("Content-Type", "application/json");
    template_.headers.add("Accept", "application/json");
    template_.headers.add("User-Agent", opts_.user_agent);
    template_.headers.add("Public-Key", opts_.keys.public_key);
    template_.headers.add("Private-Key", opts_.keys.private_key);
}

inline asio::awaitable<error_code> client_impl::acquire(call_state& cs, std::unique_ptr<connection>& out, bool& reused,
                                                        bool fresh) {
    error_code ec = co_await acquire_any(cs, out, reused, fresh);
    if (!ec && fresh && reused) {
        // Its pool slot is kept for a new connection: the sockets kept idle as long as the one that just
        // failed are the likeliest to be stale too.
        out->close();
        out = std::make_unique<connection>(ex_);
        reused = false;
    }
    co_return ec;
}

inline asio::awaitable<error_code> client_impl::acquire_any(call_state& cs, std::unique_ptr<connection>& out,
                                                            bool& reused, bool fresh) {
    const auto now = clock::now();
    while (!idle_.empty() && !(fresh && open_ < opts_.max_connections)) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        if (now - c->last_used < opts_.idle_timeout && c->looks_alive()) {
            reused = true;
            out = std::move(c);
            co_return error_code{};
        }
        discard(std::move(c)); // closed by the server while idle, or expired: never written to
    }
    if (open_ < opts_.max_connections) {
        ++open_;
        reused = false;
        out = std::make_unique<connection>(ex_);
        co_return error_code{};
    }
    pool_waiter w(ex_);
    waiters_.push_back(&w);
    const auto it = std::prev(waiters_.end());
    error_code ec;
    {
        const published<asio::steady_timer> guard(cs.waiting, w.timer);
        std::tie(ec) = co_await w.timer.async_wait(use_nothrow);
    }
    (void)ec; // a grant cancels the timer too: what was handed over decides, not the error code
    const bool granted = w.conn != nullptr || w.slot;
    if (!granted) waiters_.erase(it);
    const bool cancelled =
        (co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none ||
        cs.call_stop != call_state::stop::none;
    if (granted && cancelled) {
        // Handed over at the moment this waiter was cancelled: pass it on rather than lose it.
        if (w.conn) release(std::move(w.conn));
        else {
            --open_;
            hand_slot_to_waiter();
        }
        co_return asio::error::operation_aborted;
    }
    if (!granted) co_return asio::error::operation_aborted;
    if (w.conn) {
        reused = true;
        out = std::move(w.conn);
    } else {
        reused = false;
        out = std::make_unique<connection>(ex_);
    }
    co_return error_code{};
}

inline void client_impl::release(std::unique_ptr<connection> c) {
    if (closed_ || !c->reusable()) {
        discard(std::move(c));
        return;
    }
    c->last_used = clock::now();
    if (!waiters_.empty()) {
        pool_waiter* w = waiters_.front();
        waiters_.pop_front();
        w->conn = std::move(c);
        w->timer.cancel();
        return;
    }
    idle_.push_back(std::move(c));
    arm_sweep();
}

inline void client_impl::discard(std::unique_ptr<connection> c) {
    c->close();
    --open_;
    hand_slot_to_waiter();
}

inline void client_impl::hand_slot_to_waiter() {
    if (waiters_.empty() || closed_ || open_ >= opts_.max_connections) return;
    pool_waiter* w = waiters_.front();
    waiters_.pop_front();
    ++open_;
    w->slot = true;
    w->timer.cancel();
}

inline void client_impl::arm_sweep() {
    if (sweep_armed_ || idle_.empty()) return;
    sweep_armed_ = true;
    sweep_timer_.expires_at(idle_.front()->last_used + opts_.idle_timeout);
    sweep_timer_.async_wait([weak = weak_from_this()](error_code ec) {
        if (auto self = weak.lock()) {
            self->sweep_armed_ = false;
            if (!ec) self->sweep();
        }
    });
}

inline void client_impl::sweep() {
    const auto now = clock::now();
    std::size_t expired = 0;
    while (expired < idle_.size() && now - idle_[expired]->last_used >= opts_.idle_timeout) ++expired;
    for (std::size_t i = 0; i < expired; ++i) {
        --open_;
        close_gracefully(std::move(idle_[i]));
    }
    idle_.erase(idle_.begin(), idle_.begin() + static_cast<std::ptrdiff_t>(expired));
    hand_slot_to_waiter();
    arm_sweep();
}

inline void client_impl::close_gracefully(std::unique_ptr<connection> c) {
    if (!c->is_tls()) {
        c->close();
        return;
    }
    using namespace asio::experimental::awaitable_operators;
    struct closer {
        static asio::awaitable<void> run(std::unique_ptr<connection> c) {
            asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::seconds(1));
            // close_notify is polite, not required: a peer that never answers it costs at most a second.
            co_await (c->async_close_gracefully() || t.async_wait(asio::use_awaitable));
            c->close();
        }
    };
    asio::co_spawn(ex_, closer::run(std::move(c)), asio::detached);
}

inline void client_impl::close() {
    if (closed_) return;
    closed_ = true;
    for (call_state* cs : calls_) {
        cs->call_stop = call_state::stop::closed;
        cs->deadline_timer.cancel();
        cs->interrupt();
    }
    for (auto& c : idle_) {
        --open_;
        close_gracefully(std::move(c));
    }
    idle_.clear();
    for (pool_waiter* w : waiters_) w->timer.cancel(); // not granted: each removes itself and ends aborted
    sweep_timer_.cancel();
}

inline asio::awaitable<call_result> client_impl::attempt(std::shared_ptr<call_state> cs, connection* conn) {
    cs->written = false;
    cs->got_bytes = false;
    cs->http_status = 0;
    cs->retry_after.reset();
    call_result r;
    if (!conn->is_open()) {
        r.ec = co_await conn->async_open(route_, tls_ctx_.get(), !opts_.tls.insecure_skip_verify, cs->d.detail);
        if (r.ec) {
            conn->close();
            co_return r;
        }
    }
    // From the first byte on the wire, only terminal cancellation is honoured: a partial request is lost work.
    co_await asio::this_coro::reset_cancellation_state(asio::enable_terminal_cancellation());
    if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none) {
        r.ec = asio::error::operation_aborted;
        co_return r;
    }
    http::request req = template_;
    req.target = base_.path + cs->resource;
    // The body is not copied into req: the head carries its length and the body is written beside it.
    req.headers.set("Content-Length", std::to_string(cs->body.size()));
    const std::string head = http::serialize_head(req);
    cs->slot_sent();
    cs->written = true;
    r.ec = co_await conn->async_write(head, cs->body);
    if (r.ec) {
        cs->written = false; // the write failed: the server cannot have a whole request to process
        conn->close();
        co_return r;
    }
    http::response_parser p(opts_.response_limits);
    bool got = false;
    r.ec = co_await conn->async_read_response(p, got);
    cs->got_bytes = got;
    if (r.ec) {
        conn->close();
        if (got) cs->d.detail = "connection ended inside the response";
        co_return r;
    }
    http::response res = p.release();
    cs->http_status = res.status;
    cs->retry_after = parse_retry_after(res.headers.find("Retry-After"));
    ++conn->requests;
    r.ec = check_envelope(cs->resource, res.status, res.body, r.data, cs->d);
    co_return r;
}

/// Parks the call in the rate limiter. The caller's cancellation (any type: nothing was written) and
/// interrupt() (deadline, close) both end the wait; the limiter hands a slot it granted at that moment on.
inline asio::awaitable<error_code> client_impl::wait_for_rate_limit(call_state& cs, acquire_position position) {
    asio::cancellation_signal signal;
    auto slot = (co_await asio::this_coro::cancellation_state).slot();
    if (slot.is_connected()) slot.assign([&signal](asio::cancellation_type t) { signal.emit(t); });
    error_code ec;
    {
        const published<asio::cancellation_signal> guard(cs.waiting_signal, signal);
        std::tie(ec) = co_await limiter_->async_acquire(cs.resource, position,
                                                        asio::bind_cancellation_slot(signal.slot(), use_nothrow));
    }
    if (slot.is_connected()) slot.clear();
    co_return ec;
}

inline asio::awaitable<call_result> client_impl::call_body(std::shared_ptr<call_state> cs) {
    diagnostics& d = cs->d;
    bool fresh_retry_used = false;
    bool fresh_next = false;      // the next attempt must not reuse a pooled connection
    int rate_limited = 0;         // 429 answers so far: always retried, never counted as attempts
    std::size_t budget_spent = 0; // what this call's retries took from the retry budget
    acquire_position position = acquire_position::back;
    call_result last;
    for (int n = 1;; ++n) {
        // Until the request is on the wire, any cancellation type may end the call.
        co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
        if (!breaker_.allow(clock::now())) {
            last.ec = make_error_code(error::unauthorized);
            d.detail = "not sent: the last " + std::to_string(breaker_.consecutive_failures()) +
                       " answers were 401/403; calls resume after the cool-down";
            co_return last;
        }
        const auto queued_at = clock::now();
        if (limiter_) {
            if (auto ec = co_await wait_for_rate_limit(*cs, position)) {
                last.ec = ec;
                co_return last;
            }
            cs->slot = limiter_.get();
            // The breaker may have opened while this call was parked (a batch parks all at once): look again
            // before anything is sent with credentials the server just refused.
            if (!breaker_.allow(clock::now())) {
                cs->slot_unused();
                last.ec = make_error_code(error::unauthorized);
                d.detail = "not sent: the last " + std::to_string(breaker_.consecutive_failures()) +
                           " answers were 401/403; calls resume after the cool-down";
                co_return last;
            }
        }
        const auto limiter_wait = clock::now() - queued_at;
        std::unique_ptr<connection> conn;
        bool reused = false;
        if (auto ec = co_await acquire(*cs, conn, reused, std::exchange(fresh_next, false))) {
            cs->slot_unused();
            last.ec = ec;
            co_return last;
        }
        d.attempts = n;
        d.http_status = 0;
        d.server_message.clear();
        d.body.clear();
        d.detail.clear();
        const auto start = clock::now();
        const auto sent0 = conn->bytes_sent();
        const auto recv0 = conn->bytes_received();
        const unsigned id = ++cs->attempt_id;
        cs->attempt_stop = call_state::stop::none;
        {
            const published<connection> guard(cs->active, *conn);
            cs->attempt_timer.expires_after(opts_.attempt_timeout);
            cs->attempt_timer.async_wait([cs, id](error_code ec) {
                if (!ec && cs->attempt_id == id && cs->active != nullptr) {
                    cs->attempt_stop = call_state::stop::attempt_timeout;
                    cs->interrupt();
                }
            });
            last = co_await attempt(cs, conn.get());
            cs->attempt_timer.cancel();
            cs->slot_unused(); // the attempt ended before its write: the grant was not used
        }
        redact(d);
        // The observer sees every attempt, the one a deadline or close() ended included.
        auto notify = [&](bool will_retry) {
            if (!opts_.observer) return;
            call_event ev;
            ev.resource = cs->resource;
            ev.attempt = n;
            ev.http_status = cs->http_status;
            ev.ec = last.ec;
            ev.latency = clock::now() - start;
            ev.bytes_sent = conn->bytes_sent() - sent0;
            ev.bytes_received = conn->bytes_received() - recv0;
            ev.reused_connection = reused;
            ev.will_retry = will_retry;
            ev.limiter_wait = limiter_wait;
            opts_.observer(ev);
        };
        if (cs->call_stop != call_state::stop::none) {
            last.ec = asio::error::operation_aborted; // call() reports the deadline or the close
            notify(false);
            discard(std::move(conn));
            co_return last;
        }
        if (cs->attempt_stop == call_state::stop::attempt_timeout) {
            last.ec = make_error_code(error::attempt_timeout);
            last.data = {};
            d.detail = "attempt timed out after " + std::to_string(opts_.attempt_timeout.count()) + " ms";
        }
        if (cs->http_status != 0) breaker_.on_answer(cs->http_status == 401 || cs->http_status == 403, clock::now());
        retry_decision decision = retry_decision::fail;
        if (last.ec) {
            // A 429 proves the request was not processed: it is always retried (the deadline bounds it) and
            // does not count as an attempt.
            const int counted = cs->http_status == 429 ? 1 : n - rate_limited;
            decision = decide_retry(last.ec, cs->http_status, cs->written, cs->read_only, reused, fresh_retry_used,
                                    counted, opts_.retry.max_attempts);
            if (cs->http_status == 429 && rate_limited >= opts_.retry.max_rate_limited_retries) {
                decision = retry_decision::fail;
                d.detail = "still rate limited after " + std::to_string(rate_limited) + " retries";
            }
            if (decision == retry_decision::retry && cs->http_status != 429) {
                // Retries other than after a 429 draw from the budget; a spent budget ends the call at once.
                const std::size_t cost = budget_.try_spend(cs->attempt_stop == call_state::stop::attempt_timeout);
                if (cost == 0) {
                    decision = retry_decision::fail;
                    d.detail += d.detail.empty() ? "retry budget spent" : " (retry budget spent)";
                }
                budget_spent += cost;
            }
        } else {
            budget_.on_success(budget_spent);
        }
        notify(decision == retry_decision::retry || decision == retry_decision::retry_now);
        // A whole answer (of any status) leaves the connection usable; anything else closed it.
        if (cs->http_status != 0 && conn->reusable()) release(std::move(conn));
        else
            discard(std::move(conn));
        if (!last.ec) co_return last;
        switch (decision) {
        case retry_decision::fail: co_return last;
        case retry_decision::outcome_unknown: {
            const std::string what = last.ec.message();
            last.ec = make_error_code(error::outcome_unknown);
            d.detail = what + (d.detail.empty() ? "" : " (" + d.detail + ")") + " after the request was written";
            co_return last;
        }
        case retry_decision::retry_now:
            fresh_retry_used = true;
            fresh_next = true;
            continue;
        case retry_decision::retry: break;
        }
        if (cs->http_status == 429) {
            ++rate_limited;
            cs->written = false; // the 429 proved it was not processed: a deadline now is not outcome_unknown
            if (limiter_) {
                // The limiter pauses the endpoint (and, by its rule, the key) for Retry-After or a backoff;
                // this call waits again at the front of its queue.
                std::optional<std::chrono::milliseconds> ra;
                if (cs->retry_after) ra = std::chrono::duration_cast<std::chrono::milliseconds>(*cs->retry_after);
                limiter_->on_rate_limited(cs->resource, ra, rate_limited);
                position = acquire_position::front;
                continue;
            }
        }
        auto delay = backoff_delay(opts_.retry, cs->http_status == 429 ? rate_limited : n - rate_limited, rng_);
        if (cs->retry_after) delay = std::chrono::duration_cast<std::chrono::milliseconds>(*cs->retry_after);
        // Nothing is on the wire while backing off: any cancellation type may end the call again (the
        // attempt narrowed it to terminal for the whole coroutine). A cancellation already received ends
        // it now; resetting the state would forget it.
        if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none) {
            last.ec = asio::error::operation_aborted;
            co_return last;
        }
        co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
        asio::steady_timer backoff(ex_, delay);
        error_code wec;
        {
            const published<asio::steady_timer> guard(cs->waiting, backoff);
            std::tie(wec) = co_await backoff.async_wait(use_nothrow);
        }
        if (wec) {
            last.ec = asio::error::operation_aborted;
            co_return last;
        }
    }
}

inline asio::awaitable<call_result> client_impl::call(std::string resource, std::string body, bool read_only,
                                                      diagnostics& d) {
    d.clear();
    d.resource = resource;
    call_result r;
    if (closed_) {
        r.ec = make_error_code(error::client_closed);
        co_return r;
    }
    if (config_ec_) {
        r.ec = config_ec_;
        d.detail = config_detail_;
        co_return r;
    }
    if (!valid_resource(resource)) {
        r.ec = make_error_code(error::invalid_url);
        d.detail = "resource URI has characters outside [A-Za-z0-9_./-]";
        co_return r;
    }
    auto self = shared_from_this(); // the client object may be destroyed while this call runs
    auto cs = std::make_shared<call_state>(*this, std::move(resource), std::move(body), read_only, d);
    calls_.push_back(cs.get());
    cs->registration = std::prev(calls_.end());
    struct unregister {
        std::list<call_state*>& calls;
        std::list<call_state*>::iterator it;
        ~unregister() { calls.erase(it); }
    } const registered{calls_, cs->registration};
    if (opts_.call_deadline.count() > 0) {
        cs->deadline_timer.expires_after(opts_.call_deadline);
        cs->deadline_timer.async_wait([cs](error_code ec) {
            if (!ec && cs->call_stop == call_state::stop::none) {
                cs->call_stop = call_state::stop::deadline;
                cs->interrupt();
            }
        });
    }
    r = co_await call_body(cs);
    cs->deadline_timer.cancel();
    switch (cs->call_stop) {
    case call_state::stop::none: break;
    case call_state::stop::deadline:
        r.data = {};
        if (cs->written && !cs->read_only) {
            r.ec = make_error_code(error::outcome_unknown);
            d.detail = "call deadline passed after the request was written";
        } else {
            r.ec = make_error_code(error::deadline_exceeded);
            d.detail = "no result within " + std::to_string(opts_.call_deadline.count()) + " ms";
        }
        break;
    case call_state::stop::closed:
    case call_state::stop::attempt_timeout:
        r.data = {};
        r.ec = asio::error::operation_aborted;
        d.detail = "client closed";
        break;
    }
    co_return r;
}

template <class Token>
struct is_use_awaitable : std::false_type {};
template <class Executor>
struct is_use_awaitable<asio::use_awaitable_t<Executor>> : std::true_type {};

/// Turns an exception escaping a call coroutine (only allocation failures can) into an error code.
inline error_code error_from_exception(const std::exception_ptr& ep) {
    try {
        std::rethrow_exception(ep);
    } catch (const std::system_error& e) {
        return e.code();
    } catch (const std::bad_alloc&) {
        return std::make_error_code(std::errc::not_enough_memory);
    }
}

} // namespace detail

/// The Callsavvy API client. Cheap to keep; share one per process and key (it pools connections).
class client {
public:
    using executor_type = asio::any_io_executor;
    using default_token = asio::use_awaitable_t<>;

    client(executor_type ex, client_options options)
        : impl_(std::make_shared<detail::client_impl>(std::move(ex), std::move(options))) {}
    ~client() {
        if (impl_) impl_->close();
    }
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    client(client&&) noexcept = default;
    client& operator=(client&&) noexcept = default;

    executor_type get_executor() const noexcept { return impl_->executor(); }
    const client_options& options() const noexcept { return impl_->options(); }

    /// Calls `resource` with `params` as the JSON body; completes with the envelope's `data` object (every
    /// field the server sent). Default token: `co_await` it; a failure throws callsavvy::api_error with the
    /// server's details. Other tokens complete with (error_code, boost::json::object); the overload with a
    /// diagnostics object gives the same details without exceptions. The resource's retry safety comes from
    /// the catalog; a resource the catalog does not know is treated as state-changing.
    /// Cancellation: any type until the request's first byte is written; only terminal afterwards (the
    /// connection is then closed and the call completes with operation_aborted).
    template <class CompletionToken = default_token>
    auto async_call(std::string resource, boost::json::object params, CompletionToken&& token = {}) {
        // read_only() first: the braced list below moves `resource` before a later element could read it.
        const bool ro = read_only(resource);
        return launch(raw_op{impl_, std::move(resource), boost::json::serialize(params), ro}, nullptr,
                      std::forward<CompletionToken>(token));
    }

    /// As above, leaving the failure's details (status, server message, body, detail) in `diag`, which must
    /// outlive the operation.
    template <class CompletionToken = default_token>
    auto async_call(std::string resource, boost::json::object params, diagnostics& diag, CompletionToken&& token = {}) {
        const bool ro = read_only(resource); // before the move, as above
        return launch(raw_op{impl_, std::move(resource), boost::json::serialize(params), ro}, &diag,
                      std::forward<CompletionToken>(token));
    }

    /// The raw form: a serialized JSON body, and whether the endpoint is read-only (spec §2 "Retry
    /// safety": read-only calls are re-sent after a lost connection, others fail with outcome_unknown).
    template <class CompletionToken = default_token>
    auto async_call_raw(std::string resource, std::string json_body, bool read_only, diagnostics* diag,
                        CompletionToken&& token = {}) {
        return launch(raw_op{impl_, std::move(resource), std::move(json_body), read_only}, diag,
                      std::forward<CompletionToken>(token));
    }

    /// The typed call of a catalog endpoint: `co_await api.async_call(api::create_ticket{}, {...})`. The
    /// request is checked against the endpoint's rules first (unless options().validate_requests is off):
    /// a broken rule completes with error::validation_failed and the spec's message in diagnostics::detail,
    /// and nothing is sent. The response is decoded into the endpoint's response type (its `raw` holds the
    /// whole `data` object); a present field of the wrong type is error::decode_failed with its path.
    template <api::endpoint Endpoint, class CompletionToken = default_token>
    auto async_call(Endpoint, typename Endpoint::request request, CompletionToken&& token = {}) {
        return launch(typed_op<Endpoint>{impl_, std::move(request)}, nullptr, std::forward<CompletionToken>(token));
    }

    template <api::endpoint Endpoint, class CompletionToken = default_token>
    auto async_call(Endpoint, typename Endpoint::request request, diagnostics& diag, CompletionToken&& token = {}) {
        return launch(typed_op<Endpoint>{impl_, std::move(request)}, &diag, std::forward<CompletionToken>(token));
    }

    // One named call per endpoint of the catalog: async_get_summary, async_list_tickets, async_create_ticket...
#define CALLSAVVY_NAMED_CALL(name)                                                                                     \
    template <class CompletionToken = default_token>                                                                   \
    auto async_##name(api::name::request request, CompletionToken&& token = {}) {                                      \
        return async_call(api::name{}, std::move(request), std::forward<CompletionToken>(token));                      \
    }                                                                                                                  \
    template <class CompletionToken = default_token>                                                                   \
    auto async_##name(api::name::request request, diagnostics& diag, CompletionToken&& token = {}) {                   \
        return async_call(api::name{}, std::move(request), diag, std::forward<CompletionToken>(token));                \
    }
    CALLSAVVY_API_ENDPOINTS(CALLSAVVY_NAMED_CALL)
#undef CALLSAVVY_NAMED_CALL

    /// Ends every call in flight with operation_aborted, closes idle connections (TLS: close_notify) and
    /// refuses new calls with error::client_closed. Idempotent; the destructor calls it.
    void close() { impl_->close(); }

    std::size_t open_connections() const noexcept { return impl_->open_connections(); }
    std::size_t idle_connections() const noexcept { return impl_->idle_connections(); }
    /// The rate limiter this client shares with every client of its key (null when rate limiting is off):
    /// queue lengths and next grant times per bucket.
    const std::shared_ptr<rate_limiter>& limiter() const noexcept { return impl_->limiter(); }

private:
    template <class T>
    struct outcome {
        error_code ec{};
        T value{};
    };

    static bool read_only(std::string_view resource) { return api::is_read_only(resource); }

    struct raw_op {
        using result_type = boost::json::object;
        std::shared_ptr<detail::client_impl> impl;
        std::string resource;
        std::string body;
        bool read_only = false;

        asio::awaitable<outcome<result_type>> run(diagnostics& d) {
            auto r = co_await impl->call(std::move(resource), std::move(body), read_only, d);
            co_return outcome<result_type>{r.ec, std::move(r.data)};
        }
    };

    template <class E>
    struct typed_op {
        using result_type = typename E::response;
        std::shared_ptr<detail::client_impl> impl;
        typename E::request request;

        asio::awaitable<outcome<result_type>> run(diagnostics& d) {
            outcome<result_type> out;
            if (impl->options().validate_requests) {
                if (auto v = api::check_all<typename E::rules>(request)) {
                    d.clear();
                    d.resource = std::string(E::resource);
                    d.detail = v->message();
                    out.ec = make_error_code(error::validation_failed);
                    co_return out;
                }
            }
            auto r = co_await impl->call(std::string(E::resource), boost::json::serialize(to_json(request)),
                                         E::read_only, d);
            if (r.ec) {
                out.ec = r.ec;
                co_return out;
            }
            json_mapping::decode_error err;
            if (!from_json(r.data, out.value, err)) {
                d.detail = err.message();
                d.body = boost::json::serialize(r.data);
                impl->redact(d);
                out.ec = make_error_code(error::decode_failed);
                out.value = {};
                co_return out;
            }
            out.value.raw = std::move(r.data);
            co_return out;
        }
    };

    template <class Op>
    static asio::awaitable<typename Op::result_type> run_throwing(Op op, diagnostics* user_diag) {
        diagnostics local;
        diagnostics& d = user_diag != nullptr ? *user_diag : local;
        auto r = co_await op.run(d);
        if (r.ec) throw api_error(r.ec, d);
        co_return std::move(r.value);
    }

    template <class Op>
    static asio::awaitable<outcome<typename Op::result_type>> run_nothrow(Op op, diagnostics* user_diag) {
        diagnostics local;
        co_return co_await op.run(user_diag != nullptr ? *user_diag : local);
    }

    template <class Op, class CompletionToken>
    auto launch(Op op, diagnostics* diag, CompletionToken&& token) {
        using T = typename Op::result_type;
        if constexpr (detail::is_use_awaitable<std::decay_t<CompletionToken>>::value) {
            // Runs on the client's executor whatever executor the awaiting coroutine has.
            return asio::co_spawn(impl_->executor(), run_throwing(std::move(op), diag),
                                  std::forward<CompletionToken>(token));
        } else {
            return asio::async_initiate<CompletionToken, void(error_code, T)>(
                [](auto handler, Op op, diagnostics* diag) {
                    auto slot = asio::get_associated_cancellation_slot(handler);
                    auto ex = op.impl->executor();
                    auto hex = asio::get_associated_executor(handler, ex);
                    asio::co_spawn(ex, run_nothrow(std::move(op), diag),
                                   asio::bind_cancellation_slot(
                                       slot, asio::bind_executor(hex, [h = std::move(handler)](std::exception_ptr ep,
                                                                                               outcome<T> r) mutable {
                                           if (ep) r.ec = detail::error_from_exception(ep);
                                           std::move(h)(r.ec, std::move(r.value));
                                       })));
                },
                token, std::move(op), diag);
        }
    }

    std::shared_ptr<detail::client_impl> impl_{};
};

/// Walks every page of a list endpoint, one request per page, lazily: `while (auto page = co_await
/// pages.next()) {...}`. Stops after `total_pages` (or at an empty page when the server sends no
/// pagination); cancelling the awaiting coroutine between pages stops the walk. Failures throw api_error.
/// The client must outlive the pager.
template <api::endpoint Endpoint>
requires(api::is_paginated_v<Endpoint>&& api::has_collection_v<Endpoint>) class pager {
public:
    using response = typename Endpoint::response;

    pager(client& c, typename Endpoint::request first) : client_(&c), request_(std::move(first)) {
        next_page_ = request_.page.value_or(1);
    }

    /// The next page, or nullopt once the walk is over.
    /// Cancellable between pages: once the caller's coroutine was cancelled while it worked on the last page,
    /// the next page is never asked for. Asio itself throws system_error(operation_aborted) at the caller's
    /// `co_await pages.next()` then; with this_coro::throw_if_cancelled(false) the pager throws
    /// api_error(operation_aborted) instead. Both derive from std::system_error.
    asio::awaitable<std::optional<response>> next() {
        if (done_) co_return std::nullopt;
        const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
        if (state.cancelled() != asio::cancellation_type::none) {
            diagnostics d;
            d.resource = std::string(Endpoint::resource);
            d.detail = "cancelled before page " + std::to_string(next_page_);
            throw api_error(asio::error::operation_aborted, std::move(d));
        }
        request_.page = next_page_;
        response page = co_await client_->async_call(Endpoint{}, request_);
        const std::size_t items = collection_size(page);
        ++next_page_;
        if (items == 0) {
            done_ = true; // a page past the end: nothing to hand out
            co_return std::nullopt;
        }
        if (const auto& total = page.pagination.total_pages) done_ = next_page_ > *total;
        co_return std::optional<response>(std::move(page));
    }

    /// The page the next call to next() asks for.
    std::int64_t next_page() const noexcept { return next_page_; }
    bool done() const noexcept { return done_; }

private:
    static std::size_t collection_size(const response& r) { return (r.*Endpoint::collection).size(); }

    client* client_;
    typename Endpoint::request request_;
    std::int64_t next_page_ = 1;
    bool done_ = false;
};

/// The pager of a list endpoint: `auto pages = callsavvy::paginate(api, api::list_tickets{}, {.per_page = 100});`
template <api::endpoint Endpoint>
requires(api::is_paginated_v<Endpoint>&& api::has_collection_v<Endpoint>) pager<Endpoint> paginate(
    client& c, Endpoint, typename Endpoint::request first = {}) {
    return pager<Endpoint>(c, std::move(first));
}

CALLSAVVY_END_NAMESPACE
