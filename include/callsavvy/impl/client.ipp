// callsavvy/impl/client.ipp — the out-of-line part of the client: the pool, the attempts, the retries.
// Included by client.hpp in the default header-only build; with CALLSAVVY_SEPARATE_COMPILATION it is compiled
// once, in the translation unit that includes <callsavvy/src.hpp>, so that the files making calls compile only
// their typed glue (see README "Separate compilation").
#pragma once

#include <callsavvy/client.hpp>

CALLSAVVY_BEGIN_NAMESPACE
namespace detail {

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
    call_state(const call_state&) = delete;
    call_state& operator=(const call_state&) = delete;

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
    /// The limiter's grant of the current attempt: sent() when its first byte leaves, else let go (reset or
    /// destroyed), which gives the slot back.
    rate_grant grant{};
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

/// Keeps a call in the client's list (for close()) exactly as long as call() runs. A named type, not a local
/// one: g++ 12 rejects a local type in a non-inline coroutine's frame (-Wsubobject-linkage).
struct call_registration {
    std::list<call_state*>& calls;
    std::list<call_state*>::iterator it;
    ~call_registration() { calls.erase(it); }
};

CALLSAVVY_DECL client_impl::client_impl(asio::any_io_executor ex, client_options o)
    : ex_(std::move(ex)), opts_(std::move(o)), sweep_timer_(ex_),
      rng_(opts_.jitter_seed != 0 ? opts_.jitter_seed : std::random_device{}()), budget_(opts_.retry_budget),
      breaker_(opts_.auth_breaker) {
    configure();
    // The server counts arrivals: the client reports when each granted request really leaves.
    opts_.rate_limits.count_from_send = true;
    if (opts_.rate_limits.enabled) limiter_ = limiter_for_key(ex_, opts_.keys.public_key, opts_.rate_limits);
}

CALLSAVVY_DECL client_impl::~client_impl() = default;

CALLSAVVY_DECL void client_impl::observe(call_event& ev, const error_code& ec, bool will_retry) const {
    if (!opts_.observer) return;
    ev.ec = ec;
    ev.will_retry = will_retry;
    opts_.observer(ev);
}

CALLSAVVY_DECL void client_impl::configure() {
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

CALLSAVVY_DECL asio::awaitable<error_code> client_impl::acquire(call_state& cs, std::unique_ptr<connection>& out,
                                                                bool& reused, bool fresh) {
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

CALLSAVVY_DECL asio::awaitable<error_code> client_impl::acquire_any(call_state& cs, std::unique_ptr<connection>& out,
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

CALLSAVVY_DECL void client_impl::release(std::unique_ptr<connection> c) {
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

CALLSAVVY_DECL void client_impl::discard(std::unique_ptr<connection> c) {
    c->close();
    --open_;
    hand_slot_to_waiter();
}

CALLSAVVY_DECL void client_impl::hand_slot_to_waiter() {
    if (waiters_.empty() || closed_ || open_ >= opts_.max_connections) return;
    pool_waiter* w = waiters_.front();
    waiters_.pop_front();
    ++open_;
    w->slot = true;
    w->timer.cancel();
}

CALLSAVVY_DECL void client_impl::arm_sweep() {
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

CALLSAVVY_DECL void client_impl::sweep() {
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

CALLSAVVY_DECL void client_impl::close_gracefully(std::unique_ptr<connection> c) {
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

CALLSAVVY_DECL void client_impl::close() {
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

CALLSAVVY_DECL asio::awaitable<call_result> client_impl::attempt(std::shared_ptr<call_state> cs, connection* conn) {
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
    cs->grant.sent();
    cs->written = true;
    http::response_parser p(opts_.response_limits);
    const auto x = co_await conn->async_exchange(head, cs->body, p);
    r.ec = x.ec;
    if (!x.written) {
        cs->written = false; // the write failed: the server cannot have a whole request to process
        co_return r;
    }
    cs->got_bytes = p.started();
    if (r.ec) {
        if (cs->got_bytes) cs->d.detail = "connection ended inside the response";
        co_return r;
    }
    http::response res = p.release();
    cs->http_status = res.status;
    cs->retry_after = parse_retry_after(res.headers.find("Retry-After"));
    r.ec = check_envelope(cs->resource, res.status, res.body, r.data, cs->d);
    co_return r;
}

/// Parks the call in the rate limiter. The caller's cancellation (any type: nothing was written) and
/// interrupt() (deadline, close) both end the wait; the limiter hands a slot it granted at that moment on.
CALLSAVVY_DECL asio::awaitable<error_code> client_impl::wait_for_rate_limit(call_state& cs, acquire_position position) {
    asio::cancellation_signal signal;
    auto slot = (co_await asio::this_coro::cancellation_state).slot();
    if (slot.is_connected()) slot.assign([&signal](asio::cancellation_type t) { signal.emit(t); });
    error_code ec;
    {
        const published<asio::cancellation_signal> guard(cs.waiting_signal, signal);
        std::tie(ec, cs.grant) = co_await limiter_->async_acquire(
            cs.resource, position, asio::bind_cancellation_slot(signal.slot(), use_nothrow));
    }
    if (slot.is_connected()) slot.clear();
    co_return ec;
}

CALLSAVVY_DECL asio::awaitable<call_result> client_impl::call_body(std::shared_ptr<call_state> cs) {
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
            // The breaker may have opened while this call was parked (a batch parks all at once): look again
            // before anything is sent with credentials the server just refused.
            if (!breaker_.allow(clock::now())) {
                cs->grant = {};
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
            cs->grant = {};
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
            cs->grant = {}; // the attempt ended before its write: the grant was not used
        }
        redact(d);
        // The observer sees every attempt, the one a deadline or close() ended included. (Filled here and sent
        // below rather than through a lambda: g++ 12 rejects a closure type in a non-inline coroutine's frame
        // with -Wsubobject-linkage, which the separate-compilation build would hit.)
        call_event ev;
        if (opts_.observer) {
            ev.resource = cs->resource;
            ev.attempt = n;
            ev.http_status = cs->http_status;
            ev.latency = clock::now() - start;
            ev.bytes_sent = conn->bytes_sent() - sent0;
            ev.bytes_received = conn->bytes_received() - recv0;
            ev.reused_connection = reused;
            ev.limiter_wait = limiter_wait;
        }
        if (cs->call_stop != call_state::stop::none) {
            last.ec = asio::error::operation_aborted; // call() reports the deadline or the close
            observe(ev, last.ec, false);
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
        observe(ev, last.ec, decision == retry_decision::retry || decision == retry_decision::retry_now);
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

CALLSAVVY_DECL asio::awaitable<call_result> client_impl::call(std::string resource, std::string body, bool read_only,
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
    const call_registration registered{calls_, cs->registration};
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

} // namespace detail
CALLSAVVY_END_NAMESPACE
