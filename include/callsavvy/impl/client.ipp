// callsavvy/impl/client.ipp — the out-of-line part of the client: the driver that performs what the call's
// state machine (detail/call_fsm.hpp) decides — limiter waits, pooled connections, attempts, backoffs — and
// the interrupts that timers, close() and cancellations deliver to it. Included by client.hpp in the default
// header-only build; with CALLSAVVY_SEPARATE_COMPILATION it is compiled once, in the translation unit that
// includes <callsavvy/src.hpp> (see README "Separate compilation").
#pragma once

#include <callsavvy/client.hpp>

CALLSAVVY_BEGIN_NAMESPACE
namespace detail {

/// One call in flight: its state machine, and everything an interrupt may have to end (the limiter wait, the
/// pool wait, the attempt's connection, the backoff timer). Owned by the call's coroutine and by its deadline
/// timer's handler, so a handler that runs after the call ended finds a finished machine, not freed memory.
struct call_state {
    call_state(client_impl& c, std::string res, std::string b, const call_rules& rules, diagnostics& diag)
        : resource(std::move(res)), body(std::move(b)), d(diag), fsm(rules, c.budget_, c.breaker_, c.rng_, diag),
          pool(*c.pool_), deadline_timer(c.ex_), backoff_timer(c.ex_), pool_wait(c.ex_) {}
    call_state(const call_state&) = delete;
    call_state& operator=(const call_state&) = delete;

    /// Stops the call from outside and ends whatever it waits on; the driver then hears it from the machine.
    void stop(call_stop why, asio::cancellation_type type = asio::cancellation_type::terminal) {
        switch (fsm.stop(why, type)) {
        case call_interrupt::none: break;
        case call_interrupt::limiter_wait: limiter_signal.emit(asio::cancellation_type::terminal); break;
        case call_interrupt::pool_wait: pool.cancel(pool_wait); break;
        case call_interrupt::connection:
            if (active != nullptr) active->close();
            break;
        case call_interrupt::backoff: backoff_timer.cancel(); break;
        }
    }

    std::string resource;
    std::string body;
    diagnostics& d;
    call_fsm fsm;
    connection_pool& pool;
    asio::steady_timer deadline_timer;
    asio::steady_timer backoff_timer;
    asio::cancellation_signal limiter_signal; ///< ends a wait in the rate limiter
    connection_pool::waiter pool_wait;
    connection_pool::lease lease{}; ///< the attempt's connection, from the pool until the attempt ends
    rate_grant grant{};             ///< the limiter's grant, from the wait until the write (or the attempt's end)
    connection* active = nullptr;   ///< the connection of the attempt in progress
    boost::json::object data{};     ///< the envelope's data, on success
    std::chrono::steady_clock::duration limiter_wait{};
};

/// Publishes the connection an attempt runs on (for interrupts) for exactly as long as the attempt runs.
struct published_connection {
    published_connection(connection*& slot, connection& c) : slot_(slot) { slot_ = &c; }
    ~published_connection() { slot_ = nullptr; }
    published_connection(const published_connection&) = delete;
    published_connection& operator=(const published_connection&) = delete;

private:
    connection*& slot_;
};

/// Keeps a call in the client's list (for close()) and bound to its caller's cancellation for exactly as long
/// as call() runs. A named type, not a local one: g++ 12 rejects a local type in a non-inline coroutine's
/// frame (-Wsubobject-linkage).
struct call_registration {
    call_registration(std::list<call_state*>& calls, call_state& cs, call_control* ctl)
        : calls_(calls), it_(calls.insert(calls.end(), &cs)), ctl_(ctl) {
        if (ctl_ == nullptr) return;
        ctl_->running = &cs;
        // A cancellation that came before the call started stops it before anything is sent.
        if (ctl_->early != asio::cancellation_type::none) cs.stop(call_stop::cancelled, ctl_->early);
    }
    ~call_registration() {
        calls_.erase(it_);
        if (ctl_ != nullptr) ctl_->running = nullptr;
    }
    call_registration(const call_registration&) = delete;
    call_registration& operator=(const call_registration&) = delete;

private:
    std::list<call_state*>& calls_;
    std::list<call_state*>::iterator it_;
    call_control* ctl_;
};

CALLSAVVY_DECL void call_control::cancel(asio::cancellation_type t) {
    if (running != nullptr) running->stop(call_stop::cancelled, t);
    else
        early = early | t;
}

CALLSAVVY_DECL client_impl::client_impl(asio::any_io_executor ex, client_options o)
    : ex_(std::move(ex)), opts_(std::move(o)),
      pool_(std::make_shared<connection_pool>(ex_, opts_.max_connections, opts_.idle_timeout)),
      rng_(opts_.jitter_seed != 0 ? opts_.jitter_seed : std::random_device{}()), budget_(opts_.retry_budget),
      breaker_(opts_.auth_breaker) {
    configure();
    // The server counts arrivals: the client reports when each granted request really leaves.
    opts_.rate_limits.count_from_send = true;
    if (opts_.rate_limits.enabled) limiter_ = limiter_for_key(ex_, opts_.keys.public_key, opts_.rate_limits);
}

CALLSAVVY_DECL client_impl::~client_impl() = default;

CALLSAVVY_DECL void client_impl::observe(const call_event& ev) const noexcept {
    if (!opts_.observer) return;
    try {
        opts_.observer(ev);
    } catch (...) {
        // An observer is for logging and metrics: what it throws must not change a call's outcome.
    }
}

/// A value that cannot go out as an HTTP field value: control characters (a trailing newline read from a
/// file), or white space at either end (a receiver would strip it, so the server would see another key).
inline bool unsendable_field(std::string_view v) {
    if (!http::detail::is_field_value(v)) return true;
    return !v.empty() && (v.front() == ' ' || v.front() == '\t' || v.back() == ' ' || v.back() == '\t');
}

CALLSAVVY_DECL void client_impl::configure() {
    const auto refuse = [this](error e, std::string why) {
        config_ec_ = make_error_code(e);
        config_detail_ = std::move(why);
    };
    for (const auto& [name, value] :
         {std::pair<const char*, const std::string*>{"keys.public_key", &opts_.keys.public_key},
          {"keys.private_key", &opts_.keys.private_key},
          {"user_agent", &opts_.user_agent}}) {
        if (unsendable_field(*value))
            return refuse(error::invalid_options,
                          std::string("client_options::") + name +
                              " holds a character an HTTP header cannot carry (a control character such as a "
                              "trailing newline, or white space at either end)");
    }
    error_code ec{};
    auto u = http::parse_url(opts_.base_url, ec);
    if (ec || !u) return refuse(error::invalid_url, "base URL is not an http(s) URL");
    base_ = *u;
    if (base_.path.empty() || base_.path.back() != '/') base_.path += '/';
    route_.host = base_.host;
    route_.port = base_.port;
    route_.tls = base_.is_https();
    route_.proxy = select_proxy(opts_.proxy, base_, ec);
    if (ec) return refuse(error::invalid_url, "proxy URL is not an http:// URL");
    if (route_.tls) {
        std::string why;
        tls_ctx_ = make_tls_context(opts_.tls, ec, why);
        if (!tls_ctx_) return refuse(error::tls_handshake_failed, std::move(why));
    }
    http::request base;
    base.method = "POST";
    base.version = 11;
    base.target = base_.path;
    base.headers.add("Host", base_.host_header());
    base.headers.add("Content-Type", "application/json");
    base.headers.add("Accept", "application/json");
    base.headers.add("User-Agent", opts_.user_agent);
    base.headers.add("Public-Key", opts_.keys.public_key);
    base.headers.add("Private-Key", opts_.keys.private_key);
    head_ = http::request_head::make(base, ec);
    if (!head_) return refuse(error::invalid_url, "base URL: " + ec.message());
}

CALLSAVVY_DECL call_rules client_impl::rules_for(bool read_only) const {
    call_rules r;
    r.read_only = read_only;
    r.limited = limiter_ != nullptr;
    r.retry = opts_.retry;
    r.rate_limited_backoff = opts_.rate_limits.backoff;
    if (opts_.call_deadline.count() > 0) r.deadline = clock::now() + opts_.call_deadline;
    r.call_deadline = opts_.call_deadline;
    r.attempt_timeout = opts_.attempt_timeout;
    return r;
}

CALLSAVVY_DECL void client_impl::close() {
    if (closed_) return;
    closed_ = true;
    for (call_state* cs : calls_) cs->stop(call_stop::closed);
    pool_->close();
}

CALLSAVVY_DECL asio::awaitable<call_result> client_impl::call(std::string resource, std::string body, bool read_only,
                                                              diagnostics& d, std::shared_ptr<call_control> ctl) {
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
    auto cs = std::make_shared<call_state>(*this, std::move(resource), std::move(body), rules_for(read_only), d);
    const call_registration registered(calls_, *cs, ctl.get());
    if (opts_.call_deadline.count() > 0) {
        cs->deadline_timer.expires_after(opts_.call_deadline);
        cs->deadline_timer.async_wait([cs](error_code ec) {
            if (!ec) cs->stop(call_stop::deadline);
        });
    }
    call_action a = cs->fsm.start(clock::now());
    // Each action is awaited here directly (not through a dispatching coroutine: one frame less per step).
    while (a.what != call_action::kind::complete) {
        switch (a.what) {
        case call_action::kind::wait_grant: a = co_await wait_for_grant(*cs, a); break;
        case call_action::kind::acquire: a = co_await get_connection(*cs, a.fresh, a.probe); break;
        case call_action::kind::attempt: a = co_await attempt(*cs); break;
        case call_action::kind::backoff: a = co_await back_off(*cs, a.delay); break;
        case call_action::kind::complete: break;
        }
    }
    if (a.pause) limiter_->pause(cs->resource, *a.pause); // a 429 this call gave up on still pauses the endpoint
    cs->deadline_timer.cancel();
    cs->lease.reset();
    cs->grant = {};
    r.ec = a.ec;
    if (!r.ec) r.data = std::move(cs->data);
    co_return r;
}

/// Parks the call in the rate limiter (after pausing the endpoint, when a 429 asked for it). The limiter
/// hands a grant that raced an interrupt on to the next waiter.
CALLSAVVY_DECL asio::awaitable<call_action> client_impl::wait_for_grant(call_state& cs, call_action a) {
    if (a.pause) limiter_->pause(cs.resource, *a.pause);
    const auto queued_at = clock::now();
    const auto position = a.front ? acquire_position::front : acquire_position::back;
    auto [ec, grant] = co_await limiter_->async_acquire(
        cs.resource, position, asio::bind_cancellation_slot(cs.limiter_signal.slot(), use_nothrow));
    cs.limiter_wait = clock::now() - queued_at;
    cs.grant = std::move(grant);
    co_return cs.fsm.on_grant(ec, clock::now());
}

CALLSAVVY_DECL asio::awaitable<call_action> client_impl::get_connection(call_state& cs, bool fresh, bool probe) {
    auto [ec, lease] = co_await pool_->acquire(fresh, probe, cs.pool_wait);
    cs.lease = std::move(lease);
    co_return cs.fsm.on_connection(ec, clock::now());
}

CALLSAVVY_DECL asio::awaitable<call_action> client_impl::attempt(call_state& cs) {
    connection& conn = *cs.lease;
    attempt_report rep;
    rep.reused = cs.lease.reused();
    const auto start = clock::now();
    const auto sent0 = conn.bytes_sent();
    const auto received0 = conn.bytes_received();
    {
        const published_connection guard(cs.active, conn);
        conn.deadline().arm(opts_.attempt_timeout);
        co_await exchange(cs, conn, rep);
        conn.deadline().disarm();
        rep.timed_out = conn.deadline().expired();
    }
    cs.grant = {}; // an attempt that ended before its write gives the grant back
    redact(cs.d);
    const call_action next = cs.fsm.on_attempt(rep, clock::now());
    if (opts_.observer) {
        call_event ev;
        ev.resource = cs.resource;
        ev.attempt = cs.fsm.attempts();
        ev.http_status = rep.http_status;
        const bool timeout = rep.timed_out && rep.http_status == 0 && rep.ec;
        ev.ec = next.what == call_action::kind::complete ? next.ec
                : timeout                                ? make_error_code(error::attempt_timeout)
                                                         : rep.ec;
        ev.latency = clock::now() - start;
        ev.bytes_sent = conn.bytes_sent() - sent0;
        ev.bytes_received = conn.bytes_received() - received0;
        ev.reused_connection = rep.reused;
        ev.will_retry = next.what != call_action::kind::complete;
        ev.limiter_wait = cs.limiter_wait;
        observe(ev);
    }
    cs.lease.reset(); // a whole answer (any status) leaves the connection reusable; anything else closed it
    co_return next;
}

/// Connect if needed, then one request/response exchange and the envelope check. The machine is asked just
/// before the write: a call stopped meanwhile writes nothing.
CALLSAVVY_DECL asio::awaitable<void> client_impl::exchange(call_state& cs, connection& conn, attempt_report& rep) {
    if (!conn.is_open()) {
        rep.ec = co_await conn.async_open(route_, tls_ctx_.get(), !opts_.tls.insecure_skip_verify, cs.d.detail);
        if (rep.ec) {
            conn.close();
            co_return;
        }
    }
    std::string& head = conn.head_buffer(); // reused: no allocation per request once it has grown
    head.clear();
    head_->render(cs.resource, cs.body.size(), head, rep.ec); // the resource was checked: cannot fail
    if (rep.ec) co_return;
    if (!cs.fsm.on_write()) {
        rep.ec = asio::error::operation_aborted;
        co_return;
    }
    cs.grant.sent(); // the server counts the request from its arrival: the grant counts from now
    http::response_parser p(opts_.response_limits);
    const auto received_before = conn.bytes_received();
    const exchange_result x = co_await conn.async_exchange(head, cs.body, p);
    rep.written = x.written;
    rep.answer_started = conn.bytes_received() != received_before;
    if (x.ec) {
        rep.ec = x.ec;
        if (x.ec == error::connection_closed && p.started()) cs.d.detail = "connection ended inside the response";
        co_return;
    }
    const http::response& res = p.get();
    rep.http_status = res.status;
    rep.retry_after = parse_retry_after(res.headers.find("Retry-After"));
    rep.ec = check_envelope(cs.resource, res.status, res.body, cs.data, cs.d);
}

CALLSAVVY_DECL asio::awaitable<call_action> client_impl::back_off(call_state& cs, std::chrono::milliseconds delay) {
    cs.backoff_timer.expires_after(delay);
    auto [ec] = co_await cs.backoff_timer.async_wait(use_nothrow);
    (void)ec; // the machine knows whether the call was stopped meanwhile (the timer may have fired anyway)
    co_return cs.fsm.on_backoff_done(clock::now());
}

} // namespace detail
CALLSAVVY_END_NAMESPACE
