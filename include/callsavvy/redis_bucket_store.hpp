// callsavvy/redis_bucket_store.hpp — rate limits held across every process (and machine) that uses the same
// key: a shared_bucket_store on Redis. Opt-in: only a program that includes this header talks to Redis, and it
// needs nothing beyond what the library already uses (Asio, OpenSSL); the RESP2 codec is our own.
//
//     callsavvy::redis_store_options r;            // host, port, password, TLS, timeouts
//     options.rate_limits.shared_store = callsavvy::redis_shared_store(r);
//     options.rate_limits.on_store_failure = callsavvy::store_failure_policy::fall_back_local; // or fail
//
// Choices, and why:
// - One Lua script checks and records both buckets (the key's global one and the endpoint's) atomically on
//   the server: a sliding log per bucket in a sorted set, exact like local_bucket_store's, with the times
//   read from the Redis server's clock (redis.call('TIME')), since steady_clock values of different processes
//   cannot be compared. Both keys carry PEXPIRE of their window, so an idle key's buckets vanish by themselves.
// - Key names: prefix + "{" + the limiter's scope + "}" + bucket. limiter_for_key's scope is a salted SHA-256
//   digest of the public key, never the key itself; the braces keep a key's buckets in one Redis Cluster slot.
// - One connection per limiter, on the limiter's executor (through a strand), pipelined: the reserves that
//   arrive while a round trip is under way go out together in the next write. Each round trip is bounded by
//   request_timeout and each connect by connect_timeout. A connection that failed is reopened for the next
//   request, but not sooner than reconnect_delay after a failed connect: meanwhile reserves fail at once, so
//   an outage costs the callers no timeouts (and fall_back_local goes on without waiting).
// - A round trip that fails on a connection that had been idle (the server restarted meanwhile) is tried once
//   more on a new connection; the first attempt may have recorded its grants, which only counts them twice
//   (conservative: never a 429, at worst a slot unused).
// - AUTH (password, optionally a user name for Redis ACLs), SELECT and SCRIPT LOAD are pipelined right after
//   connecting; TLS goes through the library's TLS settings (tls_options: CA file or directory, host name
//   verification).
#pragma once

#include <callsavvy/bucket_store.hpp>
#include <callsavvy/config.hpp>
#include <callsavvy/error.hpp>
#include <callsavvy/net/stream.hpp>
#include <callsavvy/net/tls.hpp>

#include <openssl/evp.h>

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE

struct redis_store_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    std::string username{}; ///< Redis 6 ACL user; empty: AUTH with the password alone (requirepass)
    std::string password{}; ///< empty: no AUTH. Never logged or reported.
    int database = 0;       ///< SELECT'ed when not 0
    bool use_tls = false;
    tls_options tls{}; ///< CA file or directory, or the application's context; the host name is verified
    std::string key_prefix = "callsavvy:rl:";
    std::chrono::milliseconds connect_timeout{1000}; ///< resolve + TCP + TLS + AUTH/SELECT/SCRIPT LOAD
    std::chrono::milliseconds request_timeout{500};  ///< one pipelined round trip
    std::chrono::milliseconds reconnect_delay{250};  ///< after a failed connect, reserves fail at once this long
};

namespace detail {

/// One RESP2 reply.
struct resp_value {
    enum class kind : std::uint8_t { simple, error, integer, bulk, nil, array };
    kind type = kind::nil;
    std::string text{};              ///< simple, error, bulk
    long long integer = 0;           ///< integer
    std::vector<resp_value> items{}; ///< array
};

/// RESP2 framing: commands as arrays of bulk strings, replies parsed from a byte buffer as they arrive.
class resp {
public:
    enum class result { complete, incomplete, malformed };
    /// Bounds on what a reply may claim: the store's replies are a few bytes, anything larger is an error.
    static constexpr std::size_t max_bulk = 1 << 20;
    static constexpr std::size_t max_items = 1 << 12;
    static constexpr int max_depth = 4;

    static void append_command(std::string& out, std::initializer_list<std::string_view> args) {
        out += '*';
        out += std::to_string(args.size());
        out += "\r\n";
        for (const std::string_view a : args) {
            out += '$';
            out += std::to_string(a.size());
            out += "\r\n";
            out.append(a);
            out += "\r\n";
        }
    }

    /// Parses one reply starting at data[pos]; on `complete` pos is past it, otherwise unchanged.
    static result parse(std::string_view data, std::size_t& pos, resp_value& out) {
        std::size_t p = pos;
        const result r = parse_at(data, p, out, 0);
        if (r == result::complete) pos = p;
        return r;
    }

private:
    static result line(std::string_view data, std::size_t& p, std::string_view& out) {
        const std::size_t end = data.find("\r\n", p);
        if (end == std::string_view::npos) return data.size() - p > max_bulk ? result::malformed : result::incomplete;
        out = data.substr(p, end - p);
        p = end + 2;
        return result::complete;
    }

    static bool to_integer(std::string_view s, long long& v) {
        if (s.empty()) return false;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        return ec == std::errc() && end == s.data() + s.size();
    }

    static result parse_at(std::string_view data, std::size_t& p, resp_value& out, int depth) {
        if (p >= data.size()) return result::incomplete;
        const char type = data[p++];
        std::string_view head;
        if (const result r = line(data, p, head); r != result::complete) return r;
        switch (type) {
        case '+':
        case '-':
            out.type = type == '+' ? resp_value::kind::simple : resp_value::kind::error;
            out.text.assign(head);
            return result::complete;
        case ':':
            out.type = resp_value::kind::integer;
            return to_integer(head, out.integer) ? result::complete : result::malformed;
        case '$': {
            long long n = 0;
            if (!to_integer(head, n) || n < -1 || n > static_cast<long long>(max_bulk)) return result::malformed;
            if (n == -1) {
                out.type = resp_value::kind::nil;
                return result::complete;
            }
            const auto len = static_cast<std::size_t>(n);
            if (data.size() - p < len + 2) return result::incomplete;
            if (data.substr(p + len, 2) != "\r\n") return result::malformed;
            out.type = resp_value::kind::bulk;
            out.text.assign(data.substr(p, len));
            p += len + 2;
            return result::complete;
        }
        case '*': {
            long long n = 0;
            if (!to_integer(head, n) || n < -1 || n > static_cast<long long>(max_items) || depth >= max_depth)
                return result::malformed;
            if (n == -1) {
                out.type = resp_value::kind::nil;
                return result::complete;
            }
            out.type = resp_value::kind::array;
            out.items.assign(static_cast<std::size_t>(n), resp_value{});
            for (auto& item : out.items)
                if (const result r = parse_at(data, p, item, depth + 1); r != result::complete) return r;
            return result::complete;
        }
        default: return result::malformed;
        }
    }
};

/// Checks and records one grant in the global bucket (KEYS[1]) and the endpoint's (KEYS[2]), on the server's
/// clock in microseconds. ARGV: global N, global window + margin (us), endpoint N, endpoint window + margin
/// (us), a member unique to this grant. Returns {endpoint wait, global wait} in microseconds, {0, 0} when
/// granted. Scores are passed as formatted integers: Lua would print a number with only 14 digits.
inline constexpr std::string_view redis_reserve_script = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function wait(key, n, span)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', now - span))
  if redis.call('ZCARD', key) < n then return 0 end
  local e = redis.call('ZRANGE', key, -n, -n, 'WITHSCORES')
  local w = tonumber(e[2]) + span - now
  if w < 1 then return 1 end
  return w
end
local gn, gspan, en, espan = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local gw = wait(KEYS[1], gn, gspan)
local ew = wait(KEYS[2], en, espan)
if gw > 0 or ew > 0 then return {ew, gw} end
local at = string.format('%d', now)
redis.call('ZADD', KEYS[1], at, ARGV[5])
redis.call('ZADD', KEYS[2], at, ARGV[5])
redis.call('PEXPIRE', KEYS[1], math.ceil(gspan / 1000) + 1000)
redis.call('PEXPIRE', KEYS[2], math.ceil(espan / 1000) + 1000)
return {0, 0}
)lua";

/// SHA-1 of the script in hex, as Redis names it for EVALSHA.
inline std::string redis_script_sha1(std::string_view script) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(script.data(), script.size(), md, &n, EVP_sha1(), nullptr) != 1)
        throw std::runtime_error("callsavvy: SHA-1 is unavailable");
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < n; ++i) {
        out.push_back(hex[md[i] >> 4]);
        out.push_back(hex[md[i] & 0xf]);
    }
    return out;
}

} // namespace detail

/// What a redis_bucket_store has done, for monitoring and tests.
struct redis_store_stats {
    std::uint64_t requests = 0; ///< reserves sent
    std::uint64_t connects = 0; ///< connections opened (the first one included)
    std::uint64_t failed_connects = 0;
    std::uint64_t failures = 0; ///< reserves answered with an error (unreachable, timeout, error reply)
};

/// The Redis-backed shared store; made by redis_shared_store() for each limiter.
class redis_bucket_store final : public shared_bucket_store, public std::enable_shared_from_this<redis_bucket_store> {
public:
    redis_bucket_store(const asio::any_io_executor& ex, redis_store_options o)
        : opts_(std::move(o)), strand_(asio::make_strand(ex)),
          sha_(detail::redis_script_sha1(detail::redis_reserve_script)) {
        std::random_device rd;
        const std::uint64_t r = (std::uint64_t{rd()} << 32) ^ rd();
        member_prefix_ = std::to_string(r) + ":";
    }
    ~redis_bucket_store() override { close(); }

    std::optional<shared_decision> reserve(const shared_reserve& r, completion done) override {
        std::string cmd;
        {
            const std::lock_guard<std::mutex> l(mu_);
            if (closed_) return shared_decision{asio::error::operation_aborted};
            if (std::chrono::steady_clock::now() < down_until_) {
                ++stats_.failures;
                return shared_decision{make_error_code(error::rate_store_unavailable)};
            }
        }
        // Formatted outside the lock: the pipeline only appends it.
        const auto us = [](std::chrono::milliseconds w, std::chrono::milliseconds m) {
            return std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(w + m).count());
        };
        std::string base = opts_.key_prefix;
        base += '{';
        base.append(r.scope);
        base += '}';
        const std::string global_key = base + ":g";
        std::string endpoint_key = base + ":e:";
        endpoint_key.append(r.endpoint);
        const std::string member =
            member_prefix_ + std::to_string(next_member_.fetch_add(1, std::memory_order_relaxed));
        detail::resp::append_command(
            cmd, {"EVALSHA", sha_, "2", global_key, endpoint_key, std::to_string(r.global_limits.max_requests),
                  us(r.global_limits.window, r.margin), std::to_string(r.endpoint_limits.max_requests),
                  us(r.endpoint_limits.window, r.margin), member});
        bool start = false;
        {
            const std::lock_guard<std::mutex> l(mu_);
            if (closed_) return shared_decision{asio::error::operation_aborted};
            queue_.push_back({std::move(cmd), std::move(done)});
            ++stats_.requests;
            start = !running_;
            running_ = true;
        }
        // Posted, never run here: co_spawn may run the loop inline, and a reserve that fails at once would
        // then complete inside the caller's lock.
        if (start)
            asio::post(strand_,
                       [self = shared_from_this()] { asio::co_spawn(self->strand_, run(self), asio::detached); });
        return std::nullopt;
    }

    void close() noexcept override {
        std::deque<pending> dropped;
        {
            const std::lock_guard<std::mutex> l(mu_);
            if (closed_) return;
            closed_ = true;
            dropped.swap(queue_);
            for (auto& p : inflight_) dropped.push_back(std::move(p));
            inflight_.clear();
        }
        for (auto& p : dropped) p.done(shared_decision{asio::error::operation_aborted});
        // The connection belongs to the strand: it closes there (and a round trip under way ends with it).
        try {
            if (auto self = weak_from_this().lock())
                asio::post(strand_, [self] {
                    if (self->conn_) self->conn_->s.close();
                });
        } catch (...) { // the io_context is going away: the connection goes with it
        }
    }

    redis_store_stats stats() const {
        const std::lock_guard<std::mutex> l(mu_);
        return stats_;
    }

private:
    struct pending {
        std::string command;
        completion done;
    };

    struct connection {
        explicit connection(const asio::any_io_executor& ex) : s(ex), wd(ex, s) {}
        detail::stream s;
        detail::watchdog wd; // after the stream: destroyed first
        std::string in{};
        std::size_t pos = 0; // parsed up to here
    };

    static asio::awaitable<void> run(std::shared_ptr<redis_bucket_store> self) { co_await self->loop(); }

    asio::awaitable<void> loop() {
        for (;;) {
            std::string out;
            std::size_t n = 0;
            {
                const std::lock_guard<std::mutex> l(mu_);
                if (closed_ || queue_.empty()) {
                    running_ = false;
                    co_return;
                }
                for (auto& p : queue_) {
                    out += p.command;
                    inflight_.push_back(std::move(p));
                    ++n;
                }
                queue_.clear();
            }
            co_await round_trip(out, n);
        }
    }

    /// Sends `out` (n commands) and completes the n oldest in-flight reserves with the replies.
    asio::awaitable<void> round_trip(const std::string& out, std::size_t n) {
        std::size_t answered = 0;
        for (int attempt = 0; attempt < 2; ++attempt) {
            const bool reused = conn_ != nullptr;
            if (!conn_) {
                // Reserves queued before a connect failed fail with it: no second wait on an unreachable server.
                if (recently_down()) break;
                if (error_code ec = co_await connect(); ec) break;
            }
            bool reconnect = false;
            const error_code ec = co_await exchange(out, n, answered, reconnect);
            if (ec || reconnect) conn_.reset();
            if (!ec) co_return;
            // Only a whole round trip is sent again: replies already used cannot be told from the new ones.
            if (!reused || answered > 0) break;
        }
        for (; answered < n; ++answered) complete_one(shared_decision{make_error_code(error::rate_store_unavailable)});
    }

    asio::awaitable<error_code> exchange(const std::string& out, std::size_t n, std::size_t& answered,
                                         bool& reconnect) {
        auto& c = *conn_;
        c.wd.arm(opts_.request_timeout);
        if (error_code ec = co_await c.s.write(out); ec) co_return ec;
        for (; answered < n; ++answered) {
            detail::resp_value v;
            if (error_code ec = co_await read_reply(c, v); ec) co_return ec;
            shared_decision d;
            if (v.type == detail::resp_value::kind::array && v.items.size() == 2 &&
                v.items[0].type == detail::resp_value::kind::integer &&
                v.items[1].type == detail::resp_value::kind::integer) {
                d.endpoint_wait = std::chrono::microseconds(v.items[0].integer);
                d.global_wait = std::chrono::microseconds(v.items[1].integer);
            } else {
                // NOSCRIPT (the server lost its scripts), or any other error: this reserve fails, and the
                // connection is made again, loading the script, for the next ones.
                d.ec = make_error_code(error::rate_store_unavailable);
                reconnect = true;
            }
            complete_one(d);
        }
        c.wd.disarm();
        co_return error_code{};
    }

    /// One reply from the connection, reading as much as it needs.
    static asio::awaitable<error_code> read_reply(connection& c, detail::resp_value& v) {
        for (;;) {
            const auto r = detail::resp::parse(c.in, c.pos, v);
            if (r == detail::resp::result::complete) {
                if (c.pos == c.in.size()) {
                    c.in.clear();
                    c.pos = 0;
                }
                co_return error_code{};
            }
            if (r == detail::resp::result::malformed) co_return make_error_code(error::rate_store_unavailable);
            std::array<char, 4096> buf;
            auto [ec, got] = co_await c.s.read_some(asio::buffer(buf));
            if (ec) co_return ec;
            c.in.append(buf.data(), got);
        }
    }

    asio::awaitable<error_code> connect() {
        auto c = std::make_unique<connection>(strand_);
        c->wd.arm(opts_.connect_timeout);
        error_code ec = co_await open(*c);
        c->wd.disarm();
        const std::lock_guard<std::mutex> l(mu_);
        if (ec || c->wd.expired()) {
            ++stats_.failed_connects;
            down_until_ = std::chrono::steady_clock::now() + opts_.reconnect_delay;
            co_return ec ? ec : make_error_code(asio::error::timed_out);
        }
        ++stats_.connects;
        conn_ = std::move(c);
        co_return error_code{};
    }

    asio::awaitable<error_code> open(connection& c) {
        asio::ip::tcp::resolver resolver(strand_);
        auto [rec, endpoints] =
            co_await resolver.async_resolve(opts_.host, std::to_string(opts_.port), detail::use_nothrow);
        if (rec) co_return rec;
        auto [cec, ep] = co_await asio::async_connect(c.s.socket(), endpoints, detail::use_nothrow);
        if (cec) co_return cec;
        error_code ec;
        c.s.socket().set_option(asio::ip::tcp::no_delay(true), ec);
        if (opts_.use_tls) {
            std::string why;
            if (!tls_ctx_) tls_ctx_ = detail::make_tls_context(opts_.tls, ec, why);
            if (!tls_ctx_) co_return ec ? ec : make_error_code(error::tls_handshake_failed);
            auto& tls = c.s.start_tls(*tls_ctx_);
            if (!detail::prepare_tls_session(tls.native_handle(), opts_.host, !opts_.tls.insecure_skip_verify, why))
                co_return make_error_code(error::tls_handshake_failed);
            auto [hec] = co_await tls.async_handshake(asio::ssl::stream_base::client, detail::use_nothrow);
            if (hec) co_return make_error_code(detail::classify_tls_failure(tls.native_handle(), why));
        }
        std::string hello;
        std::size_t replies = 1;
        if (!opts_.password.empty()) {
            if (opts_.username.empty()) detail::resp::append_command(hello, {"AUTH", opts_.password});
            else
                detail::resp::append_command(hello, {"AUTH", opts_.username, opts_.password});
            ++replies;
        }
        if (opts_.database != 0) {
            detail::resp::append_command(hello, {"SELECT", std::to_string(opts_.database)});
            ++replies;
        }
        detail::resp::append_command(hello, {"SCRIPT", "LOAD", detail::redis_reserve_script});
        if (ec = co_await c.s.write(hello); ec) co_return ec;
        for (std::size_t i = 0; i < replies; ++i) {
            detail::resp_value v;
            if (ec = co_await read_reply(c, v); ec) co_return ec;
            // A refused password or database, or a script the server would not load: the store cannot be used.
            // The reply's text is not kept: an AUTH error may echo what it was given.
            if (v.type == detail::resp_value::kind::error) co_return make_error_code(error::rate_store_unavailable);
            if (i + 1 == replies && v.text != sha_) co_return make_error_code(error::rate_store_unavailable);
        }
        co_return error_code{};
    }

    bool recently_down() const {
        const std::lock_guard<std::mutex> l(mu_);
        return std::chrono::steady_clock::now() < down_until_;
    }

    void complete_one(const shared_decision& d) {
        std::optional<pending> p;
        {
            const std::lock_guard<std::mutex> l(mu_);
            if (d.ec) ++stats_.failures;
            if (inflight_.empty()) return; // close() completed it already
            p.emplace(std::move(inflight_.front()));
            inflight_.pop_front();
        }
        p->done(d);
    }

    redis_store_options opts_;
    asio::strand<asio::any_io_executor> strand_;
    std::string sha_;
    std::string member_prefix_;
    std::atomic<std::uint64_t> next_member_{0};
    std::shared_ptr<asio::ssl::context> tls_ctx_{};
    std::unique_ptr<connection> conn_{}; ///< on the strand only

    mutable std::mutex mu_;
    bool closed_ = false;
    bool running_ = false; ///< a loop() is under way on the strand
    std::chrono::steady_clock::time_point down_until_{};
    std::deque<pending> queue_{};    ///< not sent yet
    std::deque<pending> inflight_{}; ///< sent, oldest first
    redis_store_stats stats_{};
};

/// rate_limit_options::shared_store for a Redis server: each limiter gets its own redis_bucket_store (one
/// connection on the limiter's executor).
inline std::function<std::shared_ptr<shared_bucket_store>(const asio::any_io_executor&)>
redis_shared_store(redis_store_options o) {
    return [o = std::move(o)](const asio::any_io_executor& ex) -> std::shared_ptr<shared_bucket_store> {
        return std::make_shared<redis_bucket_store>(ex, o);
    };
}

CALLSAVVY_END_NAMESPACE
