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

    client_impl(asio::any_io_executor ex, client_options o);
    ~client_impl();
    client_impl(const client_impl&) = delete;
    client_impl& operator=(const client_impl&) = delete;

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
    void observe(call_event& ev, const error_code& ec, bool will_retry) const;
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
        if (impl_) detail::in_destructor([this] { impl_->close(); });
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

// The pool, the attempts and the retries: here in the header-only build, in one translation unit of the
// program (the one including <callsavvy/src.hpp>) with CALLSAVVY_SEPARATE_COMPILATION.
#if !defined(CALLSAVVY_SEPARATE_COMPILATION) || defined(CALLSAVVY_SOURCE)
#include <callsavvy/impl/client.ipp>
#endif
