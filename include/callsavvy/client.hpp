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
#include <callsavvy/client_options.hpp>
#include <callsavvy/config.hpp>
#include <callsavvy/detail/call_fsm.hpp>
#include <callsavvy/detail/connection_pool.hpp>
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

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <list>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

CALLSAVVY_BEGIN_NAMESPACE

namespace detail {

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

/// Shared by one call and its caller's cancellation slot. The slot's handler runs wherever the caller emits
/// the cancellation; it only posts it to the client's executor, where the call's state lives, so a caller
/// on another thread never touches a running call (co_spawn would forward the cancellation synchronously,
/// racing the client's strand).
struct call_control {
    explicit call_control(asio::any_io_executor e) : ex(std::move(e)) {}
    asio::any_io_executor ex;
    call_state* running = nullptr;                                 ///< while the call runs
    asio::cancellation_type early = asio::cancellation_type::none; ///< came before the call started
    /// On the client's executor: stops the running call (or the one about to start).
    void cancel(asio::cancellation_type t);
};

/// The handler installed in the caller's cancellation slot.
struct cancel_forwarder {
    explicit cancel_forwarder(std::shared_ptr<call_control> c) noexcept : ctl(std::move(c)) {}
    std::shared_ptr<call_control> ctl;
    void operator()(asio::cancellation_type t) const {
        asio::post(ctl->ex, [c = ctl, t] { c->cancel(t); });
    }
};

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
    /// Why the options cannot be used (every call then fails at once with it), or success.
    const error_code& configuration_error() const noexcept { return config_ec_; }
    const std::string& configuration_detail() const noexcept { return config_detail_; }

    /// Whatever the server sent back may echo the request's headers: the keys never leave in diagnostics.
    void redact(diagnostics& d) const {
        for (std::string* text : {&d.server_message, &d.body, &d.detail})
            if (!text->empty()) detail::redact_all(*text, {opts_.keys.public_key, opts_.keys.private_key});
    }

    /// The one type-erased entry point of every call: the resource, its serialized JSON body, and whether it
    /// is read-only (spec §2 "Retry safety"). Runs on the client's executor.
    asio::awaitable<call_result> call(std::string resource, std::string body, bool read_only, diagnostics& d,
                                      std::shared_ptr<call_control> ctl);
    void close();
    bool closed() const noexcept { return closed_; }

    std::size_t open_connections() const noexcept { return pool_->open_count(); }
    std::size_t idle_connections() const noexcept { return pool_->idle_count(); }

private:
    void configure();
    call_rules rules_for(bool read_only) const;
    asio::awaitable<call_action> wait_for_grant(call_state& cs, call_action a);
    asio::awaitable<call_action> get_connection(call_state& cs, bool fresh, bool probe);
    asio::awaitable<call_action> attempt(call_state& cs);
    asio::awaitable<void> exchange(call_state& cs, connection& conn, attempt_report& rep);
    asio::awaitable<call_action> back_off(call_state& cs, std::chrono::milliseconds delay);
    void observe(const call_event& ev) const noexcept;

    asio::any_io_executor ex_{};
    client_options opts_;
    http::url base_;
    route route_;
    std::shared_ptr<asio::ssl::context> tls_ctx_{};
    error_code config_ec_{};
    std::string config_detail_{};
    std::optional<http::request_head> head_{};
    std::shared_ptr<connection_pool> pool_;
    std::list<call_state*> calls_;
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

/// Turns an exception escaping a call coroutine into an error code. Only allocation failures are expected;
/// anything else is a library defect, reported rather than thrown into the caller's io_context::run().
inline error_code error_from_exception(const std::exception_ptr& ep) {
    try {
        std::rethrow_exception(ep);
    } catch (const system_error& e) {
        return e.code();
#if defined(CALLSAVVY_USE_BOOST_ASIO)
    } catch (const std::system_error& e) { // the standard library's own (a mutex, a thread)
        return error_code(e.code());
#endif
    } catch (const std::bad_alloc&) {
        return error_code(static_cast<int>(std::errc::not_enough_memory), generic_category());
    } catch (...) {
        return error_code(static_cast<int>(std::errc::state_not_recoverable), generic_category());
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
    /// Cancellation (through the completion handler's slot; it may be emitted on the caller's executor, the
    /// call sees it on the client's): any type while the call waits in the limiter or the pool, connects or
    /// backs off; once the request's first byte is written only terminal, which closes the connection and
    /// completes with operation_aborted, or error::outcome_unknown when the whole state-changing request had
    /// left. A weaker cancellation that came meanwhile is kept: the call is not sent again.
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

    /// Ends every call in flight (operation_aborted; error::outcome_unknown for a state-changing request that
    /// was already written), closes idle connections (TLS: close_notify) and refuses new calls with
    /// error::client_closed. Idempotent; the destructor calls it. Call it on the client's executor.
    void close() { impl_->close(); }

    /// Why the options cannot be used (a bad base URL, a key or user agent that cannot be sent, a TLS
    /// setting): every call then completes at once with this error, diagnostics::detail naming the field.
    /// Success when the client is usable.
    error_code configuration_error() const noexcept { return impl_->configuration_error(); }

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

        asio::awaitable<outcome<result_type>> run(diagnostics& d, std::shared_ptr<detail::call_control> ctl) {
            auto r = co_await impl->call(std::move(resource), std::move(body), read_only, d, std::move(ctl));
            co_return outcome<result_type>{r.ec, std::move(r.data)};
        }
    };

    template <class E>
    struct typed_op {
        using result_type = typename E::response;
        std::shared_ptr<detail::client_impl> impl;
        typename E::request request;

        asio::awaitable<outcome<result_type>> run(diagnostics& d, std::shared_ptr<detail::call_control> ctl) {
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
                                         E::read_only, d, std::move(ctl));
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
    static asio::awaitable<outcome<typename Op::result_type>> run_nothrow(Op op, diagnostics* user_diag,
                                                                          std::shared_ptr<detail::call_control> ctl) {
        diagnostics local;
        co_return co_await op.run(user_diag != nullptr ? *user_diag : local, std::move(ctl));
    }

    /// Completes an operation on its handler's executor, with outstanding work kept there meanwhile (the
    /// caller's io_context must not run out of work while its call runs on the client's).
    template <class Handler, class T, class Work>
    struct completion {
        Handler handler;
        Work work;
        void operator()(std::exception_ptr ep, outcome<T> r) {
            if (ep) r.ec = detail::error_from_exception(ep);
            asio::dispatch(work, [h = std::move(handler), r = std::move(r)]() mutable {
                // Asio's rule: the slot is cleared before the handler runs (it runs where cancellations come from).
                asio::get_associated_cancellation_slot(h).clear();
                std::move(h)(r.ec, std::move(r.value));
            });
        }
    };

    struct initiate_call {
        template <class Handler, class Op>
        void operator()(Handler&& handler, Op op, diagnostics* diag) const {
            using T = typename Op::result_type;
            using handler_type = std::decay_t<Handler>;
            auto ex = op.impl->executor();
            auto ctl = std::make_shared<detail::call_control>(ex);
            auto slot = asio::get_associated_cancellation_slot(handler);
            if (slot.is_connected()) slot.template emplace<detail::cancel_forwarder>(ctl);
            auto work =
                asio::prefer(asio::get_associated_executor(handler, ex), asio::execution::outstanding_work.tracked);
            asio::co_spawn(
                ex, run_nothrow(std::move(op), diag, std::move(ctl)),
                completion<handler_type, T, decltype(work)>{std::forward<Handler>(handler), std::move(work)});
        }
    };

    /// The default token: a coroutine of the caller's that throws api_error (with the server's details) on
    /// failure. The call itself runs on the client's executor whatever executor the caller's coroutine has.
    template <class Op>
    static asio::awaitable<typename Op::result_type> run_throwing(Op op, diagnostics* user_diag) {
        diagnostics local;
        diagnostics& d = user_diag != nullptr ? *user_diag : local;
        auto [ec, value] =
            co_await asio::async_initiate<decltype(detail::use_nothrow), void(error_code, typename Op::result_type)>(
                initiate_call{}, detail::use_nothrow, std::move(op), &d);
        if (ec) throw api_error(ec, d);
        co_return std::move(value);
    }

    template <class Op, class CompletionToken>
    auto launch(Op op, diagnostics* diag, CompletionToken&& token) {
        using T = typename Op::result_type;
        if constexpr (detail::is_use_awaitable<std::decay_t<CompletionToken>>::value) {
            return run_throwing(std::move(op), diag);
        } else {
            return asio::async_initiate<CompletionToken, void(error_code, T)>(initiate_call{}, token, std::move(op),
                                                                              diag);
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
    /// api_error(operation_aborted) instead. Both derive from callsavvy::system_error.
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
