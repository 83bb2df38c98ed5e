// callsavvy/testing/webhook_sender.hpp — sends Callsavvy-style webhook deliveries (raw JSON events, spec
// §5) to a callback URL over HTTP or HTTPS, as the service would: optionally with the URL's Basic
// credentials and a Standard Webhooks signature (spec §6). One delivery returns the receiver's status and
// body; the bulk mode sends N events with a given concurrency over fresh or kept-alive connections, for
// load tests. It runs on the client's connection (resolve, TCP, verified TLS, one write per request, the
// connection's watchdog as the per-delivery deadline).
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/detail/base64.hpp>
#include <callsavvy/http/parser.hpp>
#include <callsavvy/http/serializer.hpp>
#include <callsavvy/http/url.hpp>
#include <callsavvy/net/connection.hpp>
#include <callsavvy/net/tls.hpp>
#include <callsavvy/webhook/events.hpp>
#include <callsavvy/webhook/signature.hpp>

#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE
namespace testing {

struct webhook_sender_options {
    tls_options tls{};                           ///< for https callback URLs
    std::optional<std::string> signing_secret{}; ///< `whsec_…`: sign every delivery (Standard Webhooks)
    std::chrono::milliseconds timeout{10000};    ///< per delivery: connect + write + read
    bool keep_alive = true;                      ///< reuse the connection between deliveries
};

struct delivery_result {
    error_code ec{}; ///< transport, TLS, timeout or protocol failure; no status then
    int status = 0;
    std::string body{};
    std::string delivery_id{}; ///< the webhook-id sent
};

struct bulk_result {
    std::size_t sent = 0;
    std::size_t acknowledged = 0; ///< 2xx answers
    std::size_t failed = 0;       ///< no answer, or a non-2xx one
    std::map<int, std::size_t> statuses{};
    std::size_t connections = 0; ///< connections opened
    std::chrono::steady_clock::duration elapsed{};
};

class webhook_sender {
public:
    webhook_sender(asio::any_io_executor ex, std::string callback_url, webhook_sender_options o = {})
        : ex_(std::move(ex)), opts_(std::move(o)) {
        error_code ec;
        auto u = http::parse_url(callback_url, ec);
        if (!u) {
            config_ec_ = ec ? ec : http::make_error_code(http::error::bad_url);
            return;
        }
        url_ = *u;
        route_.host = url_.host;
        route_.port = url_.port;
        route_.tls = url_.is_https();
        if (!url_.userinfo.empty()) {
            if (auto who = http::decode_userinfo(url_.userinfo))
                authorization_ = "Basic " + callsavvy::detail::base64_encode(who->user + ":" + who->password);
        }
        if (route_.tls) {
            std::string why;
            tls_ctx_ = callsavvy::detail::make_tls_context(opts_.tls, config_ec_, why);
        }
    }

    /// Delivers one event (its raw JSON text). `id`: the webhook-id; generated when empty. Deliveries may
    /// overlap: one at a time uses the kept-alive connection, any other opens its own.
    asio::awaitable<delivery_result> deliver(std::string body, std::string id = {}) {
        if (conn_busy_) {
            std::unique_ptr<callsavvy::detail::connection> own;
            auto r = co_await deliver_on(own, std::move(body), std::move(id));
            if (own) own->close();
            co_return r;
        }
        conn_busy_ = true;
        struct release {
            bool& busy;
            ~release() { busy = false; }
        } const guard{conn_busy_};
        co_return co_await deliver_on(conn_, std::move(body), std::move(id));
    }

    /// Delivers every event with `concurrency` deliveries in flight, each worker on its own connection
    /// (kept alive between its deliveries when options say so). Cancelling the bulk stops it from starting
    /// more deliveries; it completes once those in flight have ended (each within options().timeout), so
    /// nothing outlives it but the sender, which must outlive the call.
    asio::awaitable<bulk_result> deliver_bulk(std::vector<std::string> events, std::size_t concurrency) {
        auto st = std::make_shared<bulk_state>(ex_, std::move(events));
        const auto start = std::chrono::steady_clock::now();
        const std::size_t opened_before = opened_;
        st->running = concurrency == 0 ? 1 : concurrency;
        const std::size_t workers = st->running;
        for (std::size_t w = 0; w < workers; ++w) asio::co_spawn(ex_, worker(this, st), asio::detached);
        while (st->running > 0) {
            auto [ec] = co_await st->all_done.async_wait(callsavvy::detail::use_nothrow);
            if (ec && st->running > 0) {
                // Cancelled: start nothing new, and wait for the deliveries in flight with a fresh
                // cancellation state (the cancelled one would end every further wait at once).
                st->stop = true;
                co_await asio::this_coro::reset_cancellation_state();
            }
        }
        st->result.connections = opened_ - opened_before;
        st->result.elapsed = std::chrono::steady_clock::now() - start;
        co_return st->result;
    }

    /// Delivers a typed event of the catalog (webhook/events.hpp): its JSON with `event` set. A lookup's reply
    /// is in the result's body; webhook::decode_reply reads it.
    template <webhook::event E>
    asio::awaitable<delivery_result> deliver(const E& event, std::string id = {}) {
        std::string body = boost::json::serialize(webhook::encode(event));
        co_return co_await deliver(std::move(body), std::move(id));
    }

    std::size_t connections_opened() const noexcept { return opened_; }
    const asio::any_io_executor& get_executor() const noexcept { return ex_; }

private:
    struct bulk_state {
        bulk_state(const asio::any_io_executor& ex, std::vector<std::string> e)
            : events(std::move(e)), all_done(ex, std::chrono::steady_clock::time_point::max()) {}
        std::vector<std::string> events;
        std::size_t next = 0;
        std::size_t running = 0;
        bool stop = false;
        bulk_result result{};
        asio::steady_timer all_done;
    };

    static asio::awaitable<void> worker(webhook_sender* self, std::shared_ptr<bulk_state> st) {
        std::unique_ptr<callsavvy::detail::connection> conn;
        while (!st->stop && st->next < st->events.size()) {
            const std::size_t i = st->next++;
            ++st->result.sent;
            auto d = co_await self->deliver_on(conn, st->events[i], {});
            if (d.status != 0) ++st->result.statuses[d.status];
            if (!d.ec && d.status >= 200 && d.status < 300) ++st->result.acknowledged;
            else
                ++st->result.failed;
        }
        if (conn) conn->close();
        if (--st->running == 0) st->all_done.cancel();
    }

    asio::awaitable<delivery_result> deliver_on(std::unique_ptr<callsavvy::detail::connection>& conn, std::string body,
                                                std::string id) {
        delivery_result out;
        if (config_ec_) {
            out.ec = config_ec_;
            co_return out;
        }
        out.delivery_id = id.empty() ? "msg_" + std::to_string(++sequence_) : std::move(id);
        if (!opts_.keep_alive || !conn || !conn->looks_alive()) {
            if (conn) conn->close();
            conn = std::make_unique<callsavvy::detail::connection>(ex_);
        }
        // The connection's watchdog bounds the whole delivery (connect, write, read): its expiry closes the
        // connection, so whatever the delivery waits on ends.
        auto& deadline = conn->deadline();
        deadline.arm(opts_.timeout);
        if (!conn->is_open()) {
            std::string detail;
            ++opened_;
            out.ec = co_await conn->async_open(route_, tls_ctx_.get(), !opts_.tls.insecure_skip_verify, detail);
        }
        if (!out.ec) {
            const std::string head = http::serialize_head(request_for(body, out.delivery_id));
            http::response_parser p;
            out.ec = (co_await conn->async_exchange(head, body, p)).ec;
            if (!out.ec) {
                out.status = p.get().status;
                out.body = std::move(p.get().body);
            }
        }
        deadline.disarm();
        if (out.ec && deadline.expired()) out.ec = make_error_code(error::attempt_timeout);
        if (out.ec || !conn->reusable()) conn.reset();
        co_return out;
    }

    /// The delivery's request without its body.
    http::request request_for(std::string_view body, const std::string& delivery_id) const {
        http::request req;
        req.method = "POST";
        req.target = url_.path.empty() ? "/" : url_.path;
        req.headers.add("Host", url_.host_header());
        req.headers.add("Content-Type", "application/json");
        req.headers.add("User-Agent", "callsavvy-mock-webhooks");
        if (!authorization_.empty()) req.headers.add("Authorization", authorization_);
        if (opts_.signing_secret) {
            const auto ts =
                std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                    .count();
            req.headers.add("webhook-id", delivery_id);
            req.headers.add("webhook-timestamp", std::to_string(ts));
            req.headers.add("webhook-signature", webhook::sign(*opts_.signing_secret, delivery_id, ts, body));
        }
        if (!opts_.keep_alive) req.headers.add("Connection", "close");
        // The body is written from the caller's buffer, not from req.body, so its length is said here.
        req.headers.set("Content-Length", std::to_string(body.size()));
        return req;
    }

    asio::any_io_executor ex_;
    webhook_sender_options opts_;
    http::url url_{};
    callsavvy::detail::route route_{};
    std::shared_ptr<asio::ssl::context> tls_ctx_{};
    std::string authorization_{};
    error_code config_ec_{};
    std::unique_ptr<callsavvy::detail::connection> conn_{};
    bool conn_busy_ = false; ///< a deliver() is using conn_
    std::uint64_t sequence_ = 0;
    std::size_t opened_ = 0;
};

} // namespace testing
CALLSAVVY_END_NAMESPACE
