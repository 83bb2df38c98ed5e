// callsavvy/webhook/listener.hpp — receives Callsavvy's webhooks (spec §5) on the application's own executor:
// `listener.on<webhook::caller_information>([](auto e) -> asio::awaitable<caller_information_reply> {...})`.
// Each request is verified on its raw bytes (webhook/verify.hpp) before any JSON is parsed, decoded into the
// event catalog's typed event (webhook/events.hpp) and handed to a coroutine handler; a notification is
// acknowledged only after its handler completed, a lookup answered with its handler's reply or, past its
// deadline, a fallback. Runs on the shared HTTP server side (net/server.hpp).
//
// Thread safety: register handlers before start(); every other member may be called from any thread.
// Connections run on their own strands of the executor, so with a multi-threaded io_context the handlers of
// different connections run concurrently (one connection's deliveries run one after another) unless
// listener_options::handler_executor names one executor (a strand) for all of them.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/error.hpp>
#include <callsavvy/http/message.hpp>
#include <callsavvy/net/server.hpp>
#include <callsavvy/webhook/events.hpp>
#include <callsavvy/webhook/verify.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

CALLSAVVY_BEGIN_NAMESPACE
namespace webhook {

/// What became of one delivery.
enum class outcome : std::uint8_t {
    ok,            ///< handled: a notification acknowledged after its handler completed, a lookup answered
    handler_error, ///< the handler threw: answered 5xx, so the sender delivers the event again
    rejected,      ///< refused before any handler ran: verification, method, path, JSON, a field's value, size
    timed_out,     ///< a lookup handler missed its deadline: answered with the fallback reply or an error status
    unhandled,     ///< no handler and no fallback handler: acknowledged (strict mode: 503), reported here
    duplicate,     ///< a webhook-id handled before (answered again, nothing run) or still in flight (409)
};

inline constexpr std::string_view outcome_name(outcome o) noexcept {
    switch (o) {
    case outcome::ok: return "ok";
    case outcome::handler_error: return "handler_error";
    case outcome::rejected: return "rejected";
    case outcome::timed_out: return "timed_out";
    case outcome::unhandled: return "unhandled";
    case outcome::duplicate: return "duplicate";
    }
    return "unknown";
}

/// The observer's view of one delivery. Never holds a credential or a signing secret.
struct delivery_report {
    outcome what = outcome::ok;
    int status = 0;                     ///< the status answered
    std::string event{};                ///< the `event` name, when the body was JSON with one
    std::string delivery_id{};          ///< the authenticated webhook-id (signatures configured)
    rejection reason = rejection::none; ///< a verification failure
    std::string detail{};               ///< why, in words: a field's path, a verifier finding, a handler's what()
    std::string body{};                 ///< the raw body, for a 400 about its content (retrying would not help)
    asio::ip::tcp::endpoint remote{};
    std::chrono::steady_clock::duration elapsed{};
};

/// Deliveries by outcome.
struct delivery_counts {
    std::uint64_t ok = 0;
    std::uint64_t handler_error = 0;
    std::uint64_t rejected = 0;
    std::uint64_t timed_out = 0;
    std::uint64_t unhandled = 0;
    std::uint64_t duplicate = 0;

    std::uint64_t total() const noexcept { return ok + handler_error + rejected + timed_out + unhandled + duplicate; }
    void add(outcome o) noexcept {
        switch (o) {
        case outcome::ok: ++ok; break;
        case outcome::handler_error: ++handler_error; break;
        case outcome::rejected: ++rejected; break;
        case outcome::timed_out: ++timed_out; break;
        case outcome::unhandled: ++unhandled; break;
        case outcome::duplicate: ++duplicate; break;
        }
    }
};

struct listener_statistics {
    delivery_counts all{};
    /// By `event` name; deliveries refused before a name was known (verification, bad JSON) count under "".
    std::map<std::string, delivery_counts, std::less<>> by_event{};
};

/// What a lookup answers when its handler misses listener_options::lookup_deadline.
enum class lookup_timeout_answer {
    fallback_reply, ///< the handler's registered fallback (default: every field at the spec's default)
    error_status,   ///< listener_options::lookup_timeout_status, so that the sender may try again
};

struct listener_options {
    /// Address (default 127.0.0.1; "::" or "0.0.0.0" for every interface), port (0: ephemeral), TLS (the
    /// application's certificate and key in an ssl::context), request limits (413/431), read, idle and write
    /// deadlines (slow clients are dropped), max_connections and what happens beyond it.
    server_options server{};
    /// The callback URL's path; every other path is answered 404. Compared in constant time, so a secret in
    /// it (e.g. "/callsavvy/<128 random bits>") protects the listener (spec §6).
    std::string path = "/";
    /// Basic credentials, source allow-list (CIDR; trusted proxies for X-Forwarded-For), Standard Webhooks
    /// signatures (several secrets, timestamp tolerance): each optional. Its secret_path is the path above.
    verify_options verify{};
    /// Redeliveries of a signed event (the same webhook-id) are answered without running the handler again.
    duplicate_filter_options duplicates{};
    /// How long a lookup handler may take before the listener answers without it.
    std::chrono::milliseconds lookup_deadline{5000};
    lookup_timeout_answer on_lookup_timeout = lookup_timeout_answer::fallback_reply;
    int lookup_timeout_status = 503;
    /// The status answered when a handler throws (5xx: the sender delivers the event again).
    int handler_error_status = 500;
    /// Events without a handler (and names the catalog does not know) when no fallback handler is set: false
    /// acknowledges them (200) and reports them as unhandled; true answers 503 so that the sender keeps them.
    bool strict = false;
    /// Where handlers run (e.g. the application's strand, to serialize them); default: each connection's strand.
    std::optional<asio::any_io_executor> handler_executor{};
    /// Called once per request, on the connection's strand; may run concurrently for different connections.
    /// An exception it throws is dropped.
    std::function<void(const delivery_report&)> observer{};
};

/// An event handed to the fallback handler: one without a typed handler, or a name the catalog does not know.
struct raw_event {
    std::string name{};               ///< the `event` value
    boost::json::object body{};       ///< the whole delivery
    const event_info* info = nullptr; ///< the catalog's entry; nullptr for a name it does not know
    std::string delivery_id{};
};

/// The fallback handler's answer: a reply body for a lookup (a known lookup's listed fields that it leaves
/// out are filled in with their defaults), or nothing: a plain acknowledgement.
using fallback_handler = std::function<asio::awaitable<std::optional<boost::json::object>>(raw_event)>;

namespace detail {

/// What a typed handler produced: the event did not decode (where and why), or the reply body (empty for a
/// notification).
struct handler_outcome {
    bool decoded = true;
    json_mapping::decode_error error{};
    std::string reply{};
};

/// Shared by a delivery waiting on its handler and the handler running (perhaps on another executor): the
/// delivery may stop waiting (a lookup's deadline, a server shutdown) while the handler still runs.
struct handler_run {
    explicit handler_run(const asio::any_io_executor& ex) : wake(ex, std::chrono::steady_clock::time_point::max()) {}
    asio::steady_timer wake; ///< on the delivery's strand: cancelled when the handler completed
    bool done = false;
    std::exception_ptr error{};
    handler_outcome result{};
    asio::cancellation_signal cancel; ///< the handler's; emitted on the handler's executor only
};

struct handler_entry {
    bool lookup = false;
    std::function<asio::awaitable<handler_outcome>(boost::json::object)> run;
    std::string fallback_reply{}; ///< serialized; lookups only
};

/// Every lookup's default reply (every listed field at the spec's default), by event name: what an unhandled
/// known lookup and a timed-out one answer when nothing else was configured.
inline const std::map<std::string_view, std::string>& default_replies() {
    static const std::map<std::string_view, std::string> replies = [] {
        std::map<std::string_view, std::string> m;
        for_each_event([&m](auto e) {
            using E = decltype(e);
            if constexpr (is_lookup_v<E>) m.emplace(E::name, boost::json::serialize(encode_reply(reply_t<E>{})));
        });
        return m;
    }();
    return replies;
}

} // namespace detail

class listener {
public:
    using executor_type = asio::any_io_executor;

    /// Checks the options; throws std::invalid_argument naming the option that cannot be used. Nothing is
    /// bound until start().
    listener(executor_type ex, listener_options o) : st_(std::make_shared<state>(std::move(ex), std::move(o))) {}
    ~listener() {
        callsavvy::detail::in_destructor([this] { stop(); });
    }
    listener(const listener&) = delete;
    listener& operator=(const listener&) = delete;

    executor_type get_executor() const noexcept { return st_->ex; }

    /// The handler of event E: `asio::awaitable<void>(E)` for a notification, `asio::awaitable<E::reply>(E)`
    /// for a lookup (checked at compile time). A lookup's fallback (answered when the handler misses its
    /// deadline) is every field at the spec's default unless given. Before start() only.
    template <event E, class Handler>
    requires handler_for<Handler, E>
    void on(Handler handler) {
        if constexpr (is_lookup_v<E>) on<E>(std::move(handler), reply_t<E>{});
        else
            add(E::name, detail::handler_entry{false, typed_runner<E>(std::move(handler)), {}});
    }

    template <event E, class Handler>
    requires(handler_for<Handler, E>&& is_lookup_v<E>) void on(Handler handler, reply_t<E> fallback) {
        add(E::name, detail::handler_entry{true, typed_runner<E>(std::move(handler)),
                                           boost::json::serialize(encode_reply(fallback))});
    }

    /// Receives every event without a typed handler, names the catalog does not know included, as raw JSON.
    /// Before start() only.
    void on_unhandled(fallback_handler h) {
        refuse_after_start();
        st_->fallback = std::move(h);
    }

    /// Binds and starts accepting. Throws callsavvy::system_error (std::system_error, or boost::system::system_error in
    /// the Boost.Asio build) when the address cannot be bound.
    void start() {
        refuse_after_start();
        auto st = st_;
        server_options so = st->opts.server;
        auto user_hook = so.on_event;
        so.on_event = [weak = std::weak_ptr<state>(st), user_hook](const server_event& e) {
            if (auto s = weak.lock()) s->on_server_event(e);
            if (user_hook) user_hook(e);
        };
        // The state owns the server, so the server's handler holds it weakly: a strong reference would be a
        // cycle, and neither would ever be freed. A delivery under way holds the state itself.
        st->server.emplace(
            st->ex, std::move(so),
            [weak = std::weak_ptr<state>(st)](server_request& r) {
                if (auto s = weak.lock()) return state::handle(std::move(s), r);
                return state::gone();
            },
            [](int status, std::string_view reason) { return state::error_answer(status, reason); });
    }

    std::uint16_t port() const { return server().port(); }
    asio::ip::tcp::endpoint local_endpoint() const { return server().local_endpoint(); }

    /// Stops accepting; deliveries under way finish (their handlers complete, their answers go out) within
    /// `grace`; what is left then is cancelled and answered nothing, so it was never acknowledged and the
    /// sender delivers it again. Completes once every connection is gone. Any completion token.
    template <class CompletionToken = asio::use_awaitable_t<>>
    auto async_shutdown(std::chrono::milliseconds grace, CompletionToken&& token = {}) {
        return server().async_shutdown(grace, std::forward<CompletionToken>(token));
    }

    /// At once: every connection closes and every handler is cancelled; nothing more is acknowledged.
    void stop() {
        if (st_->server) st_->server->stop();
    }

    listener_statistics statistics() const {
        const std::lock_guard<std::mutex> lock(st_->stats_mutex);
        return st_->stats;
    }

private:
    struct state {
        state(executor_type e, listener_options o) : ex(std::move(e)), opts(std::move(o)), dups(opts.duplicates) {
            if (!opts.path.starts_with('/'))
                throw std::invalid_argument("callsavvy::webhook::listener: path must start with '/'");
            if (opts.verify.secret_path && *opts.verify.secret_path != opts.path)
                throw std::invalid_argument(
                    "callsavvy::webhook::listener: verify.secret_path and path differ; set path only");
            opts.verify.secret_path = opts.path;
            config_error err;
            auto v = request_verifier::create(opts.verify, err);
            if (!v) throw std::invalid_argument("callsavvy::webhook::listener: verify." + err.message());
            verifier.emplace(std::move(*v));
            if (opts.lookup_deadline.count() <= 0)
                throw std::invalid_argument("callsavvy::webhook::listener: lookup_deadline must be positive");
            for (const int s : {opts.lookup_timeout_status, opts.handler_error_status})
                if (s < 500 || s > 599)
                    throw std::invalid_argument("callsavvy::webhook::listener: lookup_timeout_status and "
                                                "handler_error_status must be 5xx (the sender must retry), got " +
                                                std::to_string(s));
        }

        executor_type ex;
        listener_options opts;
        std::optional<request_verifier> verifier;
        std::map<std::string, detail::handler_entry, std::less<>> handlers;
        fallback_handler fallback;
        std::optional<http_server> server;

        std::mutex dups_mutex; // the filter is not locked itself; deliveries come on several strands
        duplicate_filter dups;
        mutable std::mutex stats_mutex;
        listener_statistics stats;

        /// Completes a handler's run on the delivery's strand, where the delivery waits.
        struct handler_done {
            std::shared_ptr<detail::handler_run> run;
            asio::any_io_executor strand;
            void operator()(std::exception_ptr e, detail::handler_outcome r) {
                asio::post(strand, [run = run, e, r = std::move(r)]() mutable {
                    run->done = true;
                    run->error = e;
                    run->result = std::move(r);
                    run->wake.cancel();
                });
            }
        };

        /// A fresh delivery's hold on its webhook-id, settled under the filter's lock however the delivery ends.
        struct claim {
            explicit claim(state& s) : st(s) {}
            claim(const claim&) = delete;
            claim& operator=(const claim&) = delete;
            ~claim() { finish(false, {}); }
            void finish(bool handled, std::string_view reply) noexcept {
                if (!ticket) return;
                const std::lock_guard<std::mutex> lock(st.dups_mutex);
                ticket.finish(handled, std::chrono::steady_clock::now(), reply);
            }
            state& st;
            duplicate_filter::ticket ticket{};
        };

        static ip_address address_of(const asio::ip::tcp::endpoint& ep) { return ip_address::from(ep.address()); }

        static std::string what_of(const std::exception_ptr& e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                return std::string("the handler threw: ") + x.what();
            } catch (...) {
                return "the handler threw something that is not a std::exception";
            }
        }

        static server_reply reply_with(http::response r) {
            server_reply out;
            out.response = std::move(r);
            return out;
        }

        static server_reply bare(int status, const http::fields& headers = {}) {
            http::response r;
            r.status = status;
            r.headers = headers;
            return reply_with(std::move(r));
        }

        static http::response json_answer(int status, std::string body) {
            http::response r;
            r.status = status;
            r.headers.add("Content-Type", "application/json");
            r.body = std::move(body);
            return r;
        }

        /// A request that arrives while the listener is being destroyed: the sender will deliver it again.
        static asio::awaitable<server_reply> gone() { co_return bare(503); }

        /// One delivery, request to answer. The report goes to the statistics and the observer.
        static asio::awaitable<server_reply> handle(std::shared_ptr<state> st, server_request& req) {
            // Cancellation (a shutdown's end of grace, stop()) is read as an error code below, not thrown.
            co_await asio::this_coro::throw_if_cancelled(false);
            const auto start = std::chrono::steady_clock::now();
            delivery_report rep;
            rep.remote = req.remote;
            server_reply reply = co_await st->deliver(req, rep);
            rep.status = reply.what == server_reply::action::respond ? reply.response.status : 0;
            st->record(rep, start);
            co_return reply;
        }

        /// Verification on the raw bytes, then duplicates, then JSON, then the handler.
        asio::awaitable<server_reply> deliver(server_request& req, delivery_report& rep) {
            const verdict v = verifier->check(req.message, address_of(req.remote), std::chrono::system_clock::now());
            if (!v) {
                rep.what = outcome::rejected;
                rep.reason = v.reason;
                rep.detail = v.detail;
                co_return bare(v.status, v.headers); // no detail for a prober
            }
            rep.delivery_id = v.delivery_id;
            claim held(*this);
            if (!v.delivery_id.empty()) {
                if (auto early = admit(v.delivery_id, held, rep)) co_return std::move(*early);
            }
            boost::system::error_code jec;
            boost::json::value parsed = boost::json::parse(req.message.body, jec);
            const char* bad = jec                                ? "Malformed JSON body"
                              : !parsed.is_object()              ? "The body is not a JSON object"
                              : !event_name(parsed.get_object()) ? "Missing required parameter: event"
                                                                 : nullptr;
            if (bad != nullptr) {
                rep.what = outcome::rejected;
                rep.detail = bad;
                co_return reply_with(error_answer(400, bad));
            }
            rep.event = std::string(*event_name(parsed.get_object()));
            bool handled = false;
            server_reply reply = co_await dispatch(std::move(parsed.get_object()), req, rep, handled);
            held.finish(handled, reply.response.body);
            co_return reply;
        }

        /// A signed delivery's webhook-id: handled before (answer again), in flight (409), or fresh (claimed).
        std::optional<server_reply> admit(const std::string& id, claim& held, delivery_report& rep) {
            const std::lock_guard<std::mutex> lock(dups_mutex);
            auto a = dups.begin(id, std::chrono::steady_clock::now());
            switch (a.state) {
            case duplicate_filter::state::fresh: held.ticket = std::move(a.ticket); return std::nullopt;
            case duplicate_filter::state::done:
                rep.what = outcome::duplicate;
                rep.detail = "handled before: answered again, not run";
                return a.reply.empty() ? bare(200) : reply_with(json_answer(200, std::move(a.reply)));
            case duplicate_filter::state::in_flight:
                rep.what = outcome::duplicate;
                rep.detail = "the first delivery of this webhook-id is still being handled";
                return reply_with(error_answer(409, "Delivery in progress"));
            case duplicate_filter::state::full: break;
            }
            rep.what = outcome::rejected;
            rep.detail = "every remembered webhook-id is in flight";
            return reply_with(error_answer(503, "Too many deliveries in flight"));
        }

        /// The typed handler, the fallback handler, or the unhandled rule.
        asio::awaitable<server_reply> dispatch(boost::json::object body, server_request& req, delivery_report& rep,
                                               bool& handled) {
            if (auto it = handlers.find(rep.event); it != handlers.end()) {
                const auto deadline = it->second.lookup ? std::chrono::steady_clock::duration(opts.lookup_deadline)
                                                        : std::chrono::steady_clock::duration::max();
                auto run = co_await run_handler(it->second.run(std::move(body)), deadline);
                co_return conclude(*run, it->second.lookup, it->second.fallback_reply, req, rep, handled);
            }
            const event_info* info = find_event(rep.event);
            if (info != nullptr) {
                if (auto err = info->check(body)) co_return invalid_field(*err, req, rep);
            }
            const std::string* defaults = nullptr;
            if (info != nullptr && info->lookup) defaults = &detail::default_replies().at(info->name);
            if (fallback) {
                raw_event ev{rep.event, std::move(body), info, rep.delivery_id};
                auto run = co_await run_handler(run_fallback(fallback, std::move(ev), defaults),
                                                info != nullptr && info->lookup
                                                    ? std::chrono::steady_clock::duration(opts.lookup_deadline)
                                                    : std::chrono::steady_clock::duration::max());
                co_return conclude(*run, defaults != nullptr, defaults != nullptr ? *defaults : std::string(), req, rep,
                                   handled);
            }
            rep.what = outcome::unhandled;
            rep.detail = info == nullptr ? "an event name the catalog does not know, and no fallback handler"
                                         : "no handler for this event";
            if (opts.strict) co_return reply_with(error_answer(503, "No handler for this event"));
            handled = true;
            co_return defaults != nullptr ? reply_with(json_answer(200, *defaults)) : bare(200);
        }

        /// Runs a handler on the handler executor and waits for it, at most `deadline`. The wait also ends when
        /// the server cancels this delivery (shutdown, stop()); the handler is then cancelled too. A handler
        /// with neither a deadline nor an executor of its own runs inline.
        asio::awaitable<std::shared_ptr<detail::handler_run>>
        run_handler(asio::awaitable<detail::handler_outcome> task, std::chrono::steady_clock::duration deadline) {
            const asio::any_io_executor strand = co_await asio::this_coro::executor;
            auto run = std::make_shared<detail::handler_run>(strand);
            if (!opts.handler_executor && deadline == std::chrono::steady_clock::duration::max()) {
                // No deadline and the connection's own strand: the handler runs inline, under this delivery's
                // cancellation (the server's stop() or the end of a shutdown's grace reaches it directly),
                // which spares a spawn, a timer and two hand-overs per event.
                try {
                    run->result = co_await std::move(task);
                } catch (...) {
                    run->error = std::current_exception();
                }
                const asio::cancellation_state cs = co_await asio::this_coro::cancellation_state;
                run->done = cs.cancelled() == asio::cancellation_type::none; // cut short: nothing is acknowledged
                co_return run;
            }
            if (deadline != std::chrono::steady_clock::duration::max()) run->wake.expires_after(deadline);
            const asio::any_io_executor hex = opts.handler_executor.value_or(strand);
            asio::co_spawn(hex, std::move(task),
                           asio::bind_cancellation_slot(run->cancel.slot(), handler_done{run, strand}));
            auto [ec] = co_await run->wake.async_wait(callsavvy::detail::use_nothrow);
            (void)ec; // done, or the deadline, or the server's cancellation: `done` and the clock tell which
            if (!run->done) asio::post(hex, [run] { run->cancel.emit(asio::cancellation_type::terminal); });
            co_return run;
        }

        /// The answer a handler's run leads to.
        server_reply conclude(const detail::handler_run& run, bool lookup, const std::string& fallback_reply,
                              const server_request& req, delivery_report& rep, bool& handled) const {
            if (!run.done) {
                const bool timed_out = lookup && run.wake.expiry() <= std::chrono::steady_clock::now();
                if (!timed_out) {
                    rep.what = outcome::handler_error;
                    rep.detail = "cancelled: the listener shut down before the handler completed";
                    server_reply r;
                    r.what = server_reply::action::close; // nothing acknowledged: the sender delivers it again
                    return r;
                }
                rep.what = outcome::timed_out;
                rep.detail = "the handler missed the " + std::to_string(opts.lookup_deadline.count()) + " ms deadline";
                if (opts.on_lookup_timeout == lookup_timeout_answer::error_status)
                    return reply_with(error_answer(opts.lookup_timeout_status, "Lookup timed out"));
                return reply_with(json_answer(200, fallback_reply));
            }
            if (run.error) {
                rep.what = outcome::handler_error;
                rep.detail = what_of(run.error);
                return reply_with(error_answer(opts.handler_error_status, "The handler failed"));
            }
            if (!run.result.decoded) return invalid_field(run.result.error, req, rep);
            rep.what = outcome::ok;
            handled = true;
            return lookup ? reply_with(json_answer(200, run.result.reply)) : bare(200);
        }

        static server_reply invalid_field(const json_mapping::decode_error& err, const server_request& req,
                                          delivery_report& rep) {
            rep.what = outcome::rejected;
            rep.detail = err.message();
            rep.body = req.message.body; // retrying would not help: the application must see what came
            return reply_with(error_answer(400, "Invalid parameter: " + err.path));
        }

        static asio::awaitable<detail::handler_outcome> run_fallback(fallback_handler fb, raw_event ev,
                                                                     const std::string* defaults) {
            detail::handler_outcome out;
            std::optional<boost::json::object> reply = co_await fb(std::move(ev));
            if (defaults == nullptr && !reply) co_return out;
            boost::json::object merged =
                defaults != nullptr ? boost::json::parse(*defaults).as_object() : boost::json::object{};
            if (reply)
                for (auto& [k, v] : *reply) merged[k] = std::move(v); // the lookup's listed fields are always there
            out.reply = boost::json::serialize(merged);
            co_return out;
        }

        void record(delivery_report& r, std::chrono::steady_clock::time_point start) {
            r.elapsed = std::chrono::steady_clock::now() - start;
            {
                const std::lock_guard<std::mutex> lock(stats_mutex);
                stats.all.add(r.what);
                auto it = stats.by_event.find(r.event);
                if (it == stats.by_event.end()) it = stats.by_event.emplace(r.event, delivery_counts{}).first;
                it->second.add(r.what);
            }
            if (!opts.observer) return;
            try {
                opts.observer(r);
            } catch (...) {
                // an observer is for logging: what it throws must not change an answer
            }
        }

        /// The server answered a request itself (malformed, too large, too slow, overload): a rejection.
        void on_server_event(const server_event& e) {
            if (e.what != server_event::kind::request_rejected && e.what != server_event::kind::rejected_overload)
                return;
            if (e.status == 0) return;
            delivery_report r;
            r.what = outcome::rejected;
            r.status = e.status;
            r.detail = e.reason;
            r.remote = e.remote;
            record(r, std::chrono::steady_clock::now());
        }

        static http::response error_answer(int status, std::string_view reason) {
            http::response res;
            res.status = status;
            res.headers.add("Content-Type", "application/json");
            boost::json::object o;
            o["status"] = "error";
            o["message"] = reason;
            res.body = boost::json::serialize(o);
            return res;
        }
    };

    template <event E, class Handler>
    static std::function<asio::awaitable<detail::handler_outcome>(boost::json::object)> typed_runner(Handler h) {
        return [h = std::move(h)](boost::json::object body) mutable -> asio::awaitable<detail::handler_outcome> {
            detail::handler_outcome out;
            E e;
            if (!decode(body, e, out.error)) {
                out.decoded = false;
                co_return out;
            }
            if constexpr (is_lookup_v<E>) {
                reply_t<E> reply = co_await h(std::move(e));
                out.reply = boost::json::serialize(encode_reply(reply));
            } else {
                co_await h(std::move(e));
            }
            co_return out;
        };
    }

    void add(std::string_view name, detail::handler_entry e) {
        refuse_after_start();
        st_->handlers.insert_or_assign(std::string(name), std::move(e));
    }

    void refuse_after_start() const {
        if (st_->server) throw std::logic_error("callsavvy::webhook::listener: handlers are registered before start()");
    }

    const http_server& server() const {
        if (!st_->server) throw std::logic_error("callsavvy::webhook::listener: start() first");
        return *st_->server;
    }
    http_server& server() {
        if (!st_->server) throw std::logic_error("callsavvy::webhook::listener: start() first");
        return *st_->server;
    }

    std::shared_ptr<state> st_;
};

} // namespace webhook
CALLSAVVY_END_NAMESPACE
