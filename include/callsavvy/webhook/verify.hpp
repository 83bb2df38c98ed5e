// callsavvy/webhook/verify.hpp — protection of the webhook listener (spec §6), sans-io with the time passed
// in: a secret path, HTTP Basic credentials, a source allow-list (behind trusted proxies too), Standard
// Webhooks signatures over the raw body with rotation and a tolerance window, each optional and combinable,
// run in a fixed order by request_verifier::check; and duplicate_filter, de-duplication by webhook-id that
// stays correct when a handler fails. Nothing here parses JSON, and no secret reaches a reason text.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/detail/base64.hpp>
#include <callsavvy/http/fields.hpp>
#include <callsavvy/http/grammar.hpp>
#include <callsavvy/http/message.hpp>
#include <callsavvy/http/url.hpp>
#include <callsavvy/webhook/address.hpp>
#include <callsavvy/webhook/signature.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE
namespace webhook {

// ---- the pieces, each usable on its own ----

/// Equal bytes, in time that depends only on the lengths: CRYPTO_memcmp over equal-length buffers. Unequal
/// lengths return at once, so a secret's length may leak; its content does not.
inline bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

/// The path of a request target, without its query: "/a/b?q" → "/a/b". An absolute-form target
/// ("http://host/a?q", which RFC 9112 section 3.2.2 obliges a server to accept) gives "/a"; without a path "/".
inline std::string_view target_path(std::string_view target) noexcept {
    const auto scheme_end = target.find("://");
    if (scheme_end != std::string_view::npos && target.find('/') > scheme_end) {
        const auto path = target.find('/', scheme_end + 3);
        if (path == std::string_view::npos) return "/";
        target.remove_prefix(path);
    }
    return target.substr(0, target.find('?'));
}

/// The user and password of an `Authorization: Basic <base64>` value (RFC 7617: the scheme in any case,
/// one or more spaces, the canonical base64 of `user:password`, split at the first colon); nullopt otherwise.
inline std::optional<http::credentials> parse_basic_authorization(std::string_view value) {
    value = http::detail::trim_ows(value);
    const auto space = value.find(' ');
    if (space == std::string_view::npos || !http::detail::iequals(value.substr(0, space), "Basic")) return std::nullopt;
    auto token = value.substr(space);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    const auto decoded = callsavvy::detail::base64_decode(token);
    if (!decoded) return std::nullopt;
    const auto colon = decoded->find(':');
    if (colon == std::string::npos) return std::nullopt;
    return http::credentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

/// The client's address: the direct peer, unless the peer is a trusted proxy; then the right-most
/// X-Forwarded-For entry that is not itself a trusted proxy (the left-most when all are, the peer when the
/// header is absent). Entries left of it were written by whoever the proxy talked to, so they are never
/// read: an untrusted peer cannot choose its address, and neither can a client behind a trusted proxy.
/// nullopt, with `why`, when an entry that must be read is not an address (`1.2.3.4`, `1.2.3.4:80`,
/// `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:80`). Every X-Forwarded-For line counts, in order.
inline std::optional<ip_address> client_address(const ip_address& peer, const http::fields& headers,
                                                const address_set& trusted_proxies, std::string& why) {
    if (trusted_proxies.empty() || !trusted_proxies.contains(peer)) return peer;
    std::vector<std::string_view> hops;
    for (const auto& f : headers) {
        if (!http::detail::iequals(f.name, "X-Forwarded-For")) continue;
        http::detail::for_each_list_element(f.value, [&](std::string_view e) {
            hops.push_back(e);
            return true;
        });
    }
    std::optional<ip_address> client = peer;
    for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
        std::string_view text = *it;
        if (text.starts_with('[')) {
            const auto close = text.find(']');
            const auto after = close == std::string_view::npos ? std::string_view{} : text.substr(close + 1);
            text = close == std::string_view::npos || (!after.empty() && !after.starts_with(':'))
                       ? std::string_view{}
                       : text.substr(1, close - 1);
        } else if (const auto colon = text.find(':');
                   colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
            text = text.substr(0, colon); // IPv4 with a port
        }
        client = ip_address::parse(text);
        if (!client) {
            why = "X-Forwarded-For entry \"" + std::string(it->substr(0, 64)) + "\" is not an address";
            return std::nullopt;
        }
        if (!trusted_proxies.contains(*client)) break;
    }
    return client;
}

// ---- configuration ----

struct basic_credentials {
    std::string user{}; ///< no ':' (RFC 7617)
    std::string password{};
    std::string realm = "callsavvy-webhooks"; ///< sent in WWW-Authenticate; no '"' or '\'
};

struct verify_options {
    /// The callback URL's path (its query is not compared), byte for byte as the sender writes it: no
    /// percent-decoding. Starts with '/'. Compared in constant time, but a wrong length fails at once, so
    /// the secret is its content (say 128 random bits), never its length.
    std::optional<std::string> secret_path{};
    std::optional<basic_credentials> basic{};
    /// CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`, a bare address); empty: any source.
    std::vector<std::string> allowed_sources{};
    /// Proxies whose X-Forwarded-For is believed (see client_address); empty: the peer is the client.
    std::vector<std::string> trusted_proxies{};
    /// `whsec_…` secrets, all accepted (rotation); empty: no signature is required.
    std::vector<std::string> signing_secrets{};
    /// How far webhook-timestamp may be from now, in the past or in the future.
    std::chrono::seconds tolerance{300};
};

/// An option that cannot be used: which one and why. A secret's value never appears in it.
struct config_error {
    std::string option{};
    std::string reason{};
    std::string message() const { return option + ": " + reason; }
};

// ---- the verdict ----

enum class rejection {
    none = 0,                   ///< accepted
    source_not_allowed,         ///< 403: the client address is not in allowed_sources
    malformed_forwarded_for,    ///< 403: a trusted proxy's X-Forwarded-For holds a non-address
    wrong_path,                 ///< 404: the target's path is not the secret path
    missing_credentials,        ///< 401: no Authorization header
    malformed_credentials,      ///< 401: not one Basic header with base64 `user:password`
    wrong_credentials,          ///< 401: another user or password
    missing_signature_header,   ///< 401: webhook-id, webhook-timestamp or webhook-signature absent or empty
    duplicate_signature_header, ///< 401: one of them sent twice (which one would the sender mean?)
    malformed_timestamp,        ///< 401: webhook-timestamp is not whole Unix seconds
    timestamp_too_old,          ///< 401: older than the tolerance (a replay, or a very late retry)
    timestamp_too_new,          ///< 401: further in the future than the tolerance
    no_matching_signature,      ///< 401: no `v1,` entry matches any secret
    method_not_allowed,         ///< 405: not POST
};

inline constexpr std::string_view rejection_name(rejection r) noexcept {
    switch (r) {
    case rejection::none: return "none";
    case rejection::source_not_allowed: return "source_not_allowed";
    case rejection::malformed_forwarded_for: return "malformed_forwarded_for";
    case rejection::wrong_path: return "wrong_path";
    case rejection::missing_credentials: return "missing_credentials";
    case rejection::malformed_credentials: return "malformed_credentials";
    case rejection::wrong_credentials: return "wrong_credentials";
    case rejection::missing_signature_header: return "missing_signature_header";
    case rejection::duplicate_signature_header: return "duplicate_signature_header";
    case rejection::malformed_timestamp: return "malformed_timestamp";
    case rejection::timestamp_too_old: return "timestamp_too_old";
    case rejection::timestamp_too_new: return "timestamp_too_new";
    case rejection::no_matching_signature: return "no_matching_signature";
    case rejection::method_not_allowed: return "method_not_allowed";
    }
    return "unknown";
}

/// What to do with a request. Rejected: answer `status` with `headers` and an empty body; `reason` and
/// `detail` are for the observer only (a prober learns nothing from the answer beyond its status).
struct verdict {
    bool accepted = true;
    int status = 0; ///< when rejected: 401, 403, 404 or 405
    rejection reason = rejection::none;
    std::string detail{};      ///< when rejected: why, in words; never a secret, never sent
    http::fields headers{};    ///< when rejected: WWW-Authenticate (Basic) or Allow (405)
    ip_address client{};       ///< the address the source check judged (after X-Forwarded-For)
    std::string delivery_id{}; ///< accepted with signatures configured: the authenticated webhook-id

    explicit operator bool() const noexcept { return accepted; }
};

/// The parts of a request the checks read. `body` is the raw bytes, before any JSON parsing.
struct request_view {
    std::string_view method{};
    std::string_view target{};
    const http::fields* headers = nullptr;
    ip_address remote{}; ///< the direct peer (the socket's remote endpoint)
    std::string_view body{};
};

// ---- the verifier ----

/// Runs the configured checks in one fixed order, the first failure deciding:
///  1. source (403) — first, so that a client from elsewhere gets the same answer for every URL and
///     learns nothing about the path or the credentials;
///  2. secret path (404) — a wrong path must look like any URL the server does not serve: a 401 or 403
///     would confirm that a listener is there and only the path is wrong;
///  3. Basic credentials (401, with a WWW-Authenticate challenge);
///  4. signature (401) — after the cheap checks, as it hashes the whole body;
///  5. method (405, with Allow: POST) — last, so that only an authenticated sender learns it.
/// Immutable after create(): one verifier may serve every connection.
class request_verifier {
public:
    /// nullopt, with `err` naming the option, when an option is unusable (a bad range, a secret that is
    /// not base64, a path without its '/', ...).
    static std::optional<request_verifier> create(verify_options o, config_error& err) {
        request_verifier v;
        if (o.secret_path && !o.secret_path->starts_with('/')) return fail(err, "secret_path", "must start with '/'");
        if (o.basic) {
            if (o.basic->user.find(':') != std::string::npos)
                return fail(err, "basic.user", "must not contain ':' (RFC 7617)");
            for (char c : o.basic->realm)
                if (c == '"' || c == '\\' || !http::detail::is_class(c, http::detail::cc_field_value) || c == '\t')
                    return fail(err, "basic.realm", "must not contain '\"', '\\' or control characters");
        }
        std::string why;
        auto allowed = address_set::parse(o.allowed_sources, why);
        if (!allowed) return fail(err, "allowed_sources", why);
        auto trusted = address_set::parse(o.trusted_proxies, why);
        if (!trusted) return fail(err, "trusted_proxies", why);
        v.allowed_ = std::move(*allowed);
        v.trusted_ = std::move(*trusted);
        for (std::size_t i = 0; i < o.signing_secrets.size(); ++i) {
            auto key = secret_key(o.signing_secrets[i]);
            if (!key || key->empty())
                return fail(err, "signing_secrets[" + std::to_string(i) + "]",
                            "not a whsec_ secret (canonical base64 after the prefix)");
            v.keys_.push_back(std::move(*key));
        }
        if (o.tolerance.count() < 0) return fail(err, "tolerance", "must not be negative");
        if (o.basic) v.challenge_ = "Basic realm=\"" + o.basic->realm + "\", charset=\"UTF-8\"";
        v.opts_ = std::move(o);
        return v;
    }

    verdict check(const request_view& r, std::chrono::system_clock::time_point now) const {
        static const http::fields no_headers;
        const http::fields& headers = r.headers != nullptr ? *r.headers : no_headers;
        verdict v;
        std::string why;
        const auto client = client_address(r.remote, headers, trusted_, why);
        v.client = client.value_or(r.remote);
        if (!client) return reject(v, 403, rejection::malformed_forwarded_for, std::move(why));
        if (!allowed_.empty() && !allowed_.contains(*client))
            return reject(v, 403, rejection::source_not_allowed, "client " + client->str() + " is not allowed");

        if (opts_.secret_path && !constant_time_equal(target_path(r.target), *opts_.secret_path))
            return reject(v, 404, rejection::wrong_path, "the target's path is not the secret path");

        if (opts_.basic) {
            if (!check_basic(headers, v)) return v;
        }
        if (!keys_.empty()) {
            if (!check_signature(headers, r.body, now, v)) return v;
        }
        if (r.method != "POST") {
            reject(v, 405, rejection::method_not_allowed,
                   "method " + std::string(r.method.substr(0, 16)) + " (only POST is accepted)");
            v.headers.add("Allow", "POST");
        }
        return v;
    }

    /// The same on a parsed request.
    verdict check(const http::request& req, const ip_address& remote, std::chrono::system_clock::time_point now) const {
        return check(request_view{req.method, req.target, &req.headers, remote, req.body}, now);
    }

    const verify_options& options() const noexcept { return opts_; }

private:
    request_verifier() = default;

    static std::nullopt_t fail(config_error& err, std::string option, std::string reason) {
        err.option = std::move(option);
        err.reason = std::move(reason);
        return std::nullopt;
    }

    static verdict& reject(verdict& v, int status, rejection r, std::string detail) {
        v.accepted = false;
        v.status = status;
        v.reason = r;
        v.detail = std::move(detail);
        return v;
    }

    bool check_basic(const http::fields& headers, verdict& v) const {
        const auto n = headers.count("Authorization");
        if (n == 0) reject(v, 401, rejection::missing_credentials, "no Authorization header");
        else if (n > 1)
            reject(v, 401, rejection::malformed_credentials, std::to_string(n) + " Authorization headers");
        else if (const auto who = parse_basic_authorization(*headers.find("Authorization")); !who)
            reject(v, 401, rejection::malformed_credentials, "Authorization is not Basic base64(user:password)");
        else {
            // Both compared every time: which one was wrong is not for a prober to time.
            const bool user_ok = constant_time_equal(who->user, opts_.basic->user);
            const bool password_ok = constant_time_equal(who->password, opts_.basic->password);
            if (user_ok && password_ok) return true;
            reject(v, 401, rejection::wrong_credentials, "wrong user or password");
        }
        v.headers.add("WWW-Authenticate", challenge_);
        return false;
    }

    bool check_signature(const http::fields& headers, std::string_view body, std::chrono::system_clock::time_point now,
                         verdict& v) const {
        const auto no = [&v](rejection r, std::string detail) {
            reject(v, 401, r, std::move(detail));
            return false;
        };
        static constexpr std::array<std::string_view, 3> names{"webhook-id", "webhook-timestamp", "webhook-signature"};
        std::array<std::string_view, 3> values{};
        for (std::size_t i = 0; i < names.size(); ++i) {
            const std::string name(names[i]);
            if (const auto n = headers.count(name); n > 1)
                return no(rejection::duplicate_signature_header, std::to_string(n) + " " + name + " headers");
            values[i] = headers.find(name).value_or(std::string_view{});
            if (values[i].empty()) return no(rejection::missing_signature_header, "no " + name + " header");
        }
        const auto [id, stamp, signatures] = values;
        std::int64_t ts = 0;
        const auto [end, ec] = std::from_chars(stamp.data(), stamp.data() + stamp.size(), ts);
        if (ec != std::errc{} || end != stamp.data() + stamp.size() || stamp.front() < '0' || stamp.front() > '9')
            return no(rejection::malformed_timestamp, "webhook-timestamp is not whole Unix seconds");
        const std::int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
        const std::int64_t tol = opts_.tolerance.count();
        const auto window = " (tolerance " + std::to_string(tol) + " s)";
        if (now_s - ts > tol)
            return no(rejection::timestamp_too_old,
                      "webhook-timestamp is " + std::to_string(now_s - ts) + " s old" + window);
        if (ts - now_s > tol)
            return no(rejection::timestamp_too_new,
                      "webhook-timestamp is " + std::to_string(ts - now_s) + " s ahead" + window);
        // Every secret is tried, so the time taken does not say which one matched.
        bool matched = false;
        for (const auto& key : keys_)
            matched = signature_matches(signatures, sign_with_key(key, id, stamp, body)) || matched;
        if (!matched)
            return no(rejection::no_matching_signature, "no webhook-signature entry matches any of the " +
                                                            std::to_string(keys_.size()) + " signing secrets");
        v.delivery_id = std::string(id);
        return true;
    }

    verify_options opts_{};
    address_set allowed_{};
    address_set trusted_{};
    std::vector<std::string> keys_{}; ///< decoded HMAC keys, in signing_secrets' order
    std::string challenge_{};
};

// ---- de-duplication ----

/// The bounds of a duplicate_filter. Its memory is at most about max_entries × (max_reply_bytes + 100).
struct duplicate_filter_options {
    std::size_t max_entries = 10000;         ///< ids remembered, done and in flight (at least 1)
    std::chrono::seconds max_age{24 * 3600}; ///< how long a done id is remembered
    std::size_t max_reply_bytes = 4096;      ///< a longer reply is not kept: its id is forgotten instead
};

/// Remembers webhook-ids (verdict::delivery_id) so that a redelivered event is handled once, bounded in
/// count and in age. An id counts as done only once its event was handled successfully: a delivery that
/// failed (the handler threw, or the answer was 5xx) leaves no trace, so the sender's retry is accepted.
/// Ids are held as their SHA-256, so memory does not grow with the ids' length. Not internally locked: use
/// it on one strand, like the listener. Answers per admission:
///  - fresh:     run the handler; then ticket.finish(ok, now, reply) (or let the ticket go: not handled);
///  - in_flight: the first delivery is still being handled: answer 409 (non-2xx, so the sender retries
///               later; a 2xx would lose the event if the first delivery then fails), run nothing;
///  - done:      answer 2xx with `reply` (the stored lookup reply; empty for a notification), run nothing;
///  - full:      every remembered id is in flight: answer 503, run nothing.
class duplicate_filter {
public:
    using clock = std::chrono::steady_clock;

    using options = duplicate_filter_options;

    enum class state { fresh, in_flight, done, full };

private:
    struct entry {
        bool done = false;
        clock::time_point done_at{};
        std::string reply{};
    };
    using map_type = std::map<std::string, entry, std::less<>>;

public:
    /// A fresh delivery's claim on its id. finish() settles it; a ticket dropped unsettled (a handler that
    /// threw, a coroutine destroyed by cancellation) counts as not handled.
    class ticket {
    public:
        ticket() = default;
        ticket(ticket&& o) noexcept : filter_(std::exchange(o.filter_, nullptr)), it_(o.it_) {}
        ticket& operator=(ticket&& o) noexcept {
            if (this != &o) {
                finish(false, {});
                filter_ = std::exchange(o.filter_, nullptr);
                it_ = o.it_;
            }
            return *this;
        }
        ticket(const ticket&) = delete;
        ticket& operator=(const ticket&) = delete;
        ~ticket() { finish(false, {}); }

        /// handled: remembered as done at `now`, with `reply` to answer duplicates; otherwise forgotten.
        void finish(bool handled, clock::time_point now, std::string_view reply = {}) noexcept {
            if (filter_ != nullptr) std::exchange(filter_, nullptr)->settle(it_, handled, now, reply);
        }
        /// Holds an unsettled claim.
        explicit operator bool() const noexcept { return filter_ != nullptr; }

    private:
        friend class duplicate_filter;
        ticket(duplicate_filter* f, map_type::iterator it) : filter_(f), it_(it) {}
        duplicate_filter* filter_ = nullptr;
        map_type::iterator it_{};
    };

    struct admission {
        duplicate_filter::state state = duplicate_filter::state::fresh;
        duplicate_filter::ticket ticket{}; ///< fresh only
        std::string reply{};               ///< done only
    };

    explicit duplicate_filter(options o = {}) : opts_(o) {
        if (opts_.max_entries == 0) opts_.max_entries = 1;
    }
    // Tickets point at their filter.
    duplicate_filter(const duplicate_filter&) = delete;
    duplicate_filter& operator=(const duplicate_filter&) = delete;

    admission begin(std::string_view id, clock::time_point now) {
        prune(now);
        admission a;
        const std::string key = digest(id);
        if (const auto it = entries_.find(key); it != entries_.end()) {
            a.state = it->second.done ? state::done : state::in_flight;
            if (it->second.done) a.reply = it->second.reply;
            return a;
        }
        if (entries_.size() >= opts_.max_entries) {
            if (done_order_.empty()) {
                a.state = state::full;
                return a;
            }
            entries_.erase(done_order_.front()); // the oldest done id makes room
            done_order_.pop_front();
        }
        a.ticket = ticket(this, entries_.emplace(key, entry{}).first);
        return a;
    }

    std::size_t size() const noexcept { return entries_.size(); }
    std::size_t in_flight() const noexcept { return entries_.size() - done_order_.size(); }
    const options& config() const noexcept { return opts_; }

private:
    static std::string digest(std::string_view id) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        if (EVP_Digest(id.data(), id.size(), md, &len, EVP_sha256(), nullptr) != 1)
            return std::string(id); // not expected; the id itself is still a correct key
        return std::string(reinterpret_cast<const char*>(md), len);
    }

    void settle(map_type::iterator it, bool handled, clock::time_point now, std::string_view reply) noexcept {
        if (!handled || reply.size() > opts_.max_reply_bytes) {
            entries_.erase(it);
            return;
        }
        try {
            it->second.reply.assign(reply);
            done_order_.push_back(it);
            it->second.done = true;
            it->second.done_at = now;
        } catch (...) {
            entries_.erase(it); // out of memory: forgetting is the safe side (a retry runs again)
        }
    }

    void prune(clock::time_point now) {
        while (!done_order_.empty() && now - done_order_.front()->second.done_at > opts_.max_age) {
            entries_.erase(done_order_.front());
            done_order_.pop_front();
        }
    }

    options opts_;
    map_type entries_{};
    std::deque<map_type::iterator> done_order_{}; ///< done entries, oldest first
};

} // namespace webhook
CALLSAVVY_END_NAMESPACE
