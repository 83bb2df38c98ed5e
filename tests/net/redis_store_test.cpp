// The Redis-backed shared store against a real redis-server (Debian's, started here on a free loopback port
// with a temporary directory and no persistence, stopped at the end): two real child processes (this test
// executable run again, on a hidden test case) saturate the mock's limits together and it answers no 429;
// Redis restarted mid-batch loses and duplicates no call and the fallback is seen; the fail policy, AUTH and
// the keys' names and expiry. CALLSAVVY_REDIS_SERVER is the server CMake found; empty, every test here fails.

#include <callsavvy/client.hpp>
#include <callsavvy/redis_bucket_store.hpp>
#include <callsavvy/testing/mock_server.hpp>

#include "support/asio.hpp"
#include "support/pki.hpp"
#include "support/run.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

extern char** environ;

using namespace std::chrono_literals;
namespace testing = callsavvy::testing;

namespace {

std::uint16_t free_port() {
    asio::io_context io;
    asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
}

pid_t spawn(const std::vector<std::string>& args, const std::vector<std::string>& extra_env, bool quiet) {
    std::vector<std::string> argv_s = args, env_s;
    for (char** e = environ; *e != nullptr; ++e) env_s.emplace_back(*e);
    env_s.insert(env_s.end(), extra_env.begin(), extra_env.end());
    std::vector<char*> argv, envp;
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    for (auto& s : env_s) envp.push_back(s.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (quiet) {
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    }
    posix_spawn_file_actions_addclosefrom_np(&fa, 3); // the test's sockets stay out of the child
    pid_t pid = 0;
    const int r = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0) throw std::system_error(r, std::generic_category(), "posix_spawn " + args[0]);
    return pid;
}

// Waits for `pid` at most `bound` (then kills it); returns its exit status, -1 when it did not exit by itself.
int reap(pid_t pid, std::chrono::steady_clock::duration bound) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    for (;;) {
        int status = 0;
        const pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (std::chrono::steady_clock::now() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        std::this_thread::sleep_for(10ms);
    }
}

// A blocking command on a fresh connection, for the test's own look at Redis.
callsavvy::detail::resp_value command(std::uint16_t port, std::initializer_list<std::string_view> args,
                                      const std::string& password = {}) {
    asio::io_context io;
    asio::ip::tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    std::string out;
    std::size_t replies = 1;
    if (!password.empty()) {
        callsavvy::detail::resp::append_command(out, {"AUTH", password});
        ++replies;
    }
    callsavvy::detail::resp::append_command(out, args);
    asio::write(s, asio::buffer(out));
    std::string in;
    std::size_t pos = 0;
    callsavvy::detail::resp_value v;
    for (std::size_t i = 0; i < replies; ++i) {
        v = {};
        while (callsavvy::detail::resp::parse(in, pos, v) != callsavvy::detail::resp::result::complete) {
            char buf[4096];
            const std::size_t n = s.read_some(asio::buffer(buf));
            in.append(buf, n);
        }
    }
    return v;
}

// redis-server on 127.0.0.1:port, no persistence, in a temporary directory; stopped when destroyed.
class redis_process {
public:
    // tls: also a TLS port (the test PKI's localhost certificate), beside the plain one the test reads through.
    explicit redis_process(std::string password = {}, std::uint16_t port = 0, bool tls = false)
        : port_(port != 0 ? port : free_port()), tls_port_(tls ? free_port() : 0), password_(std::move(password)) {
        if (std::string_view(CALLSAVVY_REDIS_SERVER).empty())
            throw std::runtime_error("redis-server was not found when the tests were configured (scripts/setup.sh "
                                     "installs it)");
        char tmpl[] = "/tmp/callsavvy-redis-XXXXXX";
        if (mkdtemp(tmpl) == nullptr) throw std::system_error(errno, std::generic_category(), "mkdtemp");
        dir_ = tmpl;
        start();
    }
    ~redis_process() {
        stop();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    redis_process(const redis_process&) = delete;
    redis_process& operator=(const redis_process&) = delete;

    std::uint16_t port() const noexcept { return port_; }
    std::uint16_t tls_port() const noexcept { return tls_port_; }
    // A server that accepts connections (the kernel does) and answers nothing until resumed.
    void pause() const { kill(pid_, SIGSTOP); }
    void resume() const { kill(pid_, SIGCONT); }

    void start() {
        std::vector<std::string> args{CALLSAVVY_REDIS_SERVER,
                                      "--port",
                                      std::to_string(port_),
                                      "--bind",
                                      "127.0.0.1",
                                      "--save",
                                      "",
                                      "--appendonly",
                                      "no",
                                      "--dir",
                                      dir_};
        if (!password_.empty()) {
            args.push_back("--requirepass");
            args.push_back(password_);
        }
        if (tls_port_ != 0) {
            const auto& pki = cstest::test_pki();
            for (const std::string& a :
                 {std::string("--tls-port"), std::to_string(tls_port_), std::string("--tls-cert-file"),
                  pki.localhost.cert_file.string(), std::string("--tls-key-file"), pki.localhost.key_file.string(),
                  std::string("--tls-ca-cert-file"), pki.ca_file.string(), std::string("--tls-auth-clients"),
                  std::string("no")})
                args.push_back(a);
        }
        pid_ = spawn(args, {}, true);
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        for (;;) { // ready when it answers PING
            try {
                if (command(port_, {"PING"}, password_).text == "PONG") return;
            } catch (const callsavvy::system_error&) {} // not listening yet (std:: or boost::system_error)
            if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("redis-server did not start");
            std::this_thread::sleep_for(10ms);
        }
    }
    void stop() {
        if (pid_ <= 0) return;
        kill(pid_, SIGTERM);
        reap(pid_, 10s);
        pid_ = -1;
    }

private:
    std::uint16_t port_;
    std::uint16_t tls_port_;
    std::string password_;
    std::string dir_;
    pid_t pid_ = -1;
};

callsavvy::redis_store_options store_on(std::uint16_t port) {
    callsavvy::redis_store_options r;
    r.port = port;
    r.connect_timeout = 1s;
    r.request_timeout = 1s;
    r.reconnect_delay = 100ms;
    return r;
}

constexpr std::size_t per_endpoint = 50;
constexpr std::size_t global = 100;

testing::mock_options mock_limits(std::chrono::milliseconds window) {
    testing::mock_options o;
    o.rate_limits.per_endpoint = per_endpoint;
    o.rate_limits.global = global;
    o.rate_limits.window = window;
    o.rate_limits.mode = testing::window_mode::sliding; // the strictest reading of the limits
    return o;
}

callsavvy::client_options client_for(const std::string& base_url, std::chrono::milliseconds window) {
    callsavvy::client_options o;
    o.keys = {testing::sandbox_key().public_key, testing::sandbox_key().private_key};
    o.base_url = base_url;
    o.rate_limits.per_endpoint = {per_endpoint, window};
    o.rate_limits.global = {global, window};
    o.rate_limits.safety_margin = 60ms;
    o.rate_limits.backoff = {50ms, 400ms};
    o.retry.backoff_base = 1ms;
    o.proxy.from_environment = false;
    o.call_deadline = 60s;
    return o;
}

// client_for() through a Redis store on `port`, which `store` points to once the client's limiter made it.
callsavvy::client_options client_with_store(const std::string& base_url, std::chrono::milliseconds window,
                                            std::uint16_t port, std::shared_ptr<callsavvy::redis_bucket_store>& store,
                                            callsavvy::store_failure_policy policy) {
    auto o = client_for(base_url, window);
    o.rate_limits.shared_store = [&store, port](const asio::any_io_executor& ex) {
        store = std::make_shared<callsavvy::redis_bucket_store>(ex, store_on(port));
        return store;
    };
    o.rate_limits.on_store_failure = policy;
    return o;
}

// Calls first..first+n-1 over three endpoints at once, each body tagged `tag`-i; `outcome(i, ec)` for each.
void start_calls(callsavvy::client& c, const std::string& tag, int first, int n,
                 const std::function<void(int, callsavvy::error_code)>& outcome) {
    for (int i = first; i < first + n; ++i) {
        const std::string t = tag + '-' + std::to_string(i) + '.';
        auto report = [outcome, i](callsavvy::error_code ec, const auto&) { outcome(i, ec); };
        if (i % 3 == 0) c.async_create_lead({.name = t, .phone = "+1"}, report);
        else if (i % 3 == 1)
            c.async_create_contact({.phone = "+2", .first_name = t}, report);
        else
            c.async_send_sms({.recipients = {"+3"}, .message = t}, report);
    }
}

// `n` calls at once; counts them as they end, and the failures by message.
void start_batch(callsavvy::client& c, const std::string& tag, int n, int& done, std::map<std::string, int>& failures) {
    start_calls(c, tag, 0, n, [&done, &failures](int, callsavvy::error_code ec) {
        if (ec) ++failures[ec.message()];
        ++done;
    });
}

// Tags answered 200, and how often.
std::map<std::string, int> answered(const testing::mock_server& m) {
    std::map<std::string, int> ok;
    for (const auto& e : m.journal()) {
        if (e.status != 200) continue;
        for (const std::string_view prefix : {"child", "batch"}) {
            const auto at = e.body.find(prefix);
            if (at == std::string::npos) continue;
            ok[e.body.substr(at, e.body.find('.', at) - at)]++;
        }
    }
    return ok;
}

std::size_t statuses(const testing::mock_server& m, int status) {
    return static_cast<std::size_t>(
        std::count_if(m.journal().begin(), m.journal().end(), [&](const auto& e) { return e.status == status; }));
}

const char* env(const char* name) {
    const char* v = std::getenv(name); // NOLINT(concurrency-mt-unsafe): read before any thread starts
    return v != nullptr ? v : "";
}

} // namespace

// The child side of the two-process test: this executable, run again by the test below with its parameters
// in the environment. Hidden: it runs only when asked for by name.
TEST_CASE("redis store: one child process of the two-process batch", "[.][redis_child]") {
    const std::string url = env("CALLSAVVY_TEST_MOCK_URL");
    REQUIRE_FALSE(url.empty());
    const auto port = static_cast<std::uint16_t>(std::stoi(env("CALLSAVVY_TEST_REDIS_PORT")));
    const int n = std::stoi(env("CALLSAVVY_TEST_CALLS"));
    const auto window = std::chrono::milliseconds(std::stoi(env("CALLSAVVY_TEST_WINDOW_MS")));
    asio::io_context io;
    auto o = client_for(url, window);
    o.rate_limits.shared_store = callsavvy::redis_shared_store(store_on(port));
    // Fail rather than fall back: a grant the fleet's store did not record would show as a failure here.
    o.rate_limits.on_store_failure = callsavvy::store_failure_policy::fail;
    callsavvy::client c(io.get_executor(), o);
    int done = 0;
    std::map<std::string, int> failures;
    start_batch(c, env("CALLSAVVY_TEST_TAG"), n, done, failures);
    cstest::run_until(
        io, [&] { return done == n; }, 60s, "the child's batch");
    CHECK(failures.empty());
    CHECK(c.limiter()->store_fallbacks() == 0);
}

TEST_CASE("redis store: two processes saturating one key's limits together get no 429 and use >= 95% of them",
          "[redis][mock]") {
    redis_process redis;
    constexpr auto window = 2000ms;
    constexpr int per_child = 150; // 300 calls: three global windows, the endpoints (100 each) never binding
    asio::io_context io;
    testing::mock_server m(io.get_executor(), mock_limits(window));
    auto guard = asio::make_work_guard(io);
    std::thread server([&] { io.run(); });
    std::vector<pid_t> children;
    try {
        const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
        for (const char* tag : {"childA", "childB"})
            children.push_back(spawn({self, "[redis_child]"},
                                     {"CALLSAVVY_TEST_MOCK_URL=" + m.base_url(),
                                      "CALLSAVVY_TEST_REDIS_PORT=" + std::to_string(redis.port()),
                                      "CALLSAVVY_TEST_CALLS=" + std::to_string(per_child),
                                      "CALLSAVVY_TEST_WINDOW_MS=" + std::to_string(window.count()),
                                      std::string("CALLSAVVY_TEST_TAG=") + tag},
                                     false));
    } catch (...) {
        for (const pid_t p : children) reap(p, 0s);
        io.stop();
        server.join();
        throw;
    }
    std::vector<int> exits;
    for (const pid_t p : children) exits.push_back(reap(p, 60s));
    io.stop();
    server.join();
    CHECK(exits == std::vector<int>{0, 0});

    CHECK(statuses(m, 429) == 0);
    const auto ok = answered(m);
    CHECK(ok.size() == 2 * per_child);
    for (const auto& [tag, times] : ok) {
        INFO(tag);
        CHECK(times == 1);
    }
    // The steady rate: after the first window's burst of `global`, each further call waits for a slot to free.
    // Over the span from the first request to the last, the calls beyond that burst against the allowance.
    REQUIRE(m.journal().size() == 2 * per_child);
    const auto first = m.journal().front().time, last = m.journal().back().time;
    const double seconds = std::chrono::duration<double>(last - first).count();
    const double share =
        (2.0 * per_child - global) / seconds / (global / std::chrono::duration<double>(window).count());
    INFO("share of the allowance used: " << share);
    CHECK(share >= 0.95);
    CHECK(share <= 1.0);
}

TEST_CASE("redis store: Redis restarted mid-batch loses and duplicates no call; the batch falls back meanwhile",
          "[redis][mock]") {
    redis_process redis;
    constexpr auto window = 1000ms;
    asio::io_context io;
    testing::mock_server m(io.get_executor(), mock_limits(window));
    std::shared_ptr<callsavvy::redis_bucket_store> store;
    auto o =
        client_with_store(m.base_url(), window, redis.port(), store, callsavvy::store_failure_policy::fall_back_local);
    callsavvy::client c(io.get_executor(), o);
    constexpr int n = 250;
    int done = 0;
    std::map<std::string, int> failures;
    start_batch(c, "batch", n, done, failures);
    bool stopped = false, restarted = false;
    std::uint64_t requests_at_restart = 0;
    cstest::run_until(
        io,
        [&] {
            if (!stopped && m.journal().size() >= global) { // the first window's burst went through Redis
                redis.stop();
                stopped = true;
            }
            if (stopped && !restarted && c.limiter()->store_fallbacks() >= 10) {
                redis.start();
                restarted = true;
                requests_at_restart = store->stats().requests;
            }
            return done == n;
        },
        60s, "the batch to complete");
    CHECK(restarted);
    CHECK(failures.empty());
    CHECK(statuses(m, 429) == 0); // one process: its own buckets hold the limits while Redis is away
    const auto ok = answered(m);
    CHECK(ok.size() == static_cast<std::size_t>(n));
    for (const auto& [tag, times] : ok) {
        INFO(tag);
        CHECK(times == 1);
    }
    CHECK(m.journal().size() == static_cast<std::size_t>(n));
    const auto s = store->stats();
    CHECK(s.connects >= 2);                       // it reconnected after the restart ...
    CHECK(s.requests > requests_at_restart + 10); // ... and the rest of the batch went through Redis again
    CHECK(c.limiter()->store_fallbacks() >= 10);
}

TEST_CASE("redis store: with the fail policy a call fails while Redis is away, nothing sent; then it recovers",
          "[redis][mock]") {
    asio::io_context io;
    testing::mock_server m(io.get_executor(), mock_limits(1000ms));
    const std::uint16_t port = free_port(); // nothing listens yet
    auto o = client_for(m.base_url(), 1000ms);
    o.rate_limits.shared_store = callsavvy::redis_shared_store(store_on(port));
    o.rate_limits.on_store_failure = callsavvy::store_failure_policy::fail;
    callsavvy::client c(io.get_executor(), o);
    std::optional<callsavvy::error_code> first;
    c.async_create_lead({.name = "x", .phone = "+1"}, [&](callsavvy::error_code ec, auto) { first = ec; });
    cstest::run_until(
        io, [&] { return first.has_value(); }, 10s, "the call");
    CHECK(*first == callsavvy::make_error_code(callsavvy::error::rate_store_unavailable));
    CHECK(*first == callsavvy::condition::rate_limited);
    CHECK(m.journal().empty());

    redis_process redis({}, port);
    std::this_thread::sleep_for(150ms); // past reconnect_delay
    std::optional<callsavvy::error_code> second;
    c.async_create_lead({.name = "y", .phone = "+1"}, [&](callsavvy::error_code ec, auto) { second = ec; });
    cstest::run_until(
        io, [&] { return second.has_value(); }, 10s, "the call");
    CHECK(*second == callsavvy::error_code{});
    CHECK(m.journal().size() == 1);
    CHECK(c.limiter()->store_fallbacks() == 0);
}

TEST_CASE("redis store: AUTH with the password; keys are a digest of the public key and expire on their own",
          "[redis]") {
    const std::string password = "s3cret-for-this-test";
    redis_process redis(password);
    asio::io_context io;
    const std::string public_key = "PUBLIC-KEY-THAT-MUST-NOT-APPEAR";
    callsavvy::rate_limit_options o;
    o.on_store_failure = callsavvy::store_failure_policy::fail;
    auto acquire = [&](callsavvy::redis_store_options r) {
        o.shared_store = callsavvy::redis_shared_store(std::move(r));
        auto lim = callsavvy::limiter_for_key(io.get_executor(), public_key, o);
        std::optional<callsavvy::error_code> ec;
        lim->async_acquire("listTickets", [&](callsavvy::error_code e, callsavvy::rate_grant) { ec = e; });
        cstest::run_until(
            io, [&] { return ec.has_value(); }, 10s, "the acquire");
        return *ec;
    };
    auto r = store_on(redis.port());
    r.password = "wrong";
    CHECK(acquire(r) == callsavvy::make_error_code(callsavvy::error::rate_store_unavailable));
    r.password = password;
    CHECK(acquire(r) == callsavvy::error_code{});

    const auto keys = command(redis.port(), {"KEYS", "*"}, password);
    REQUIRE(keys.items.size() == 2); // the global bucket and the endpoint's
    const std::string digest = callsavvy::detail::limiter_key_digest(public_key);
    for (const auto& k : keys.items) {
        INFO(k.text);
        CHECK(k.text.rfind("callsavvy:rl:{" + digest + "}:", 0) == 0);
        CHECK(k.text.find(public_key) == std::string::npos);
        const auto ttl = command(redis.port(), {"PTTL", k.text}, password);
        CHECK(ttl.integer > 0);
        CHECK(ttl.integer <= 60000 + 250 + 1000 + 1);
    }
}

TEST_CASE("redis store: Redis restarted mid-batch with the fail policy: the calls that met the outage fail with "
          "rate_store_unavailable, unsent; every other one is answered once",
          "[redis][mock]") {
    redis_process redis;
    constexpr auto window = 1000ms;
    asio::io_context io;
    testing::mock_server m(io.get_executor(), mock_limits(window));
    std::shared_ptr<callsavvy::redis_bucket_store> store;
    auto o = client_with_store(m.base_url(), window, redis.port(), store, callsavvy::store_failure_policy::fail);
    callsavvy::client c(io.get_executor(), o);
    // A stream below the allowance (16 calls every 200 ms: 80 of 100 per window), so that the calls of each
    // wave meet Redis as it is when they arrive: up, away (waves 5 to 7), up again.
    constexpr int waves = 15, per_wave = 16, n = waves * per_wave;
    std::map<int, callsavvy::error_code> outcome;
    int reported_twice = 0;
    int wave = 0;
    asio::steady_timer timer(io);
    std::function<void()> next = [&] {
        if (wave == 5) redis.stop();
        if (wave == 8) redis.start();
        start_calls(c, "batch", wave * per_wave, per_wave, [&](int i, callsavvy::error_code ec) {
            if (!outcome.emplace(i, ec).second) ++reported_twice;
        });
        if (++wave == waves) return;
        timer.expires_after(200ms);
        timer.async_wait([&](callsavvy::error_code) { next(); });
    };
    next();
    cstest::run_until(
        io, [&] { return wave == waves && outcome.size() == static_cast<std::size_t>(n); }, 60s, "the stream");
    CHECK(reported_twice == 0);

    const auto ok = answered(m);
    std::size_t failed = 0;
    std::set<int> failed_waves;
    for (const auto& [i, ec] : outcome) {
        const std::string tag = "batch-" + std::to_string(i);
        INFO(tag << ": " << ec.message());
        if (ec) {
            ++failed;
            failed_waves.insert(i / per_wave);
            CHECK(ec == callsavvy::make_error_code(callsavvy::error::rate_store_unavailable));
            CHECK(ok.count(tag) == 0); // never sent
        } else {
            CHECK(ok.count(tag) == 1);
            if (ok.count(tag) == 1) CHECK(ok.at(tag) == 1);
        }
    }
    INFO("failed: " << failed << ", in waves " << failed_waves.size());
    CHECK(failed >= per_wave); // at least the whole wave that arrived while Redis was away
    CHECK(failed_waves.count(6) == 1);
    for (int w : {0, 1, 2, 3, 10, 11, 12, 13, 14}) CHECK(failed_waves.count(w) == 0); // up: every call answered
    CHECK(m.journal().size() == static_cast<std::size_t>(n) - failed);
    CHECK(statuses(m, 429) == 0);
    CHECK(store->stats().connects >= 2);
}

TEST_CASE("redis store: a server that stops answering costs a call request_timeout + connect_timeout, then fails it",
          "[redis][mock]") {
    redis_process redis;
    asio::io_context io;
    testing::mock_server m(io.get_executor(), mock_limits(1000ms));
    auto o = client_for(m.base_url(), 1000ms);
    auto r = store_on(redis.port());
    r.request_timeout = 300ms;
    r.connect_timeout = 300ms;
    o.rate_limits.shared_store = callsavvy::redis_shared_store(r);
    o.rate_limits.on_store_failure = callsavvy::store_failure_policy::fail;
    callsavvy::client c(io.get_executor(), o);
    auto call = [&](const char* name) {
        std::optional<callsavvy::error_code> ec;
        c.async_create_lead({.name = name, .phone = "+1"}, [&](callsavvy::error_code e, auto) { ec = e; });
        cstest::run_until(
            io, [&] { return ec.has_value(); }, 10s, "the call");
        return *ec;
    };
    CHECK(call("up") == callsavvy::error_code{});
    redis.pause();
    const auto t0 = std::chrono::steady_clock::now();
    const auto ec = call("stalled");
    const auto took = std::chrono::steady_clock::now() - t0;
    redis.resume();
    CHECK(ec == callsavvy::make_error_code(callsavvy::error::rate_store_unavailable));
    // The round trip times out, the retry on a new connection meets a server that accepts and never answers.
    CHECK(took >= 550ms);
    CHECK(took < 2000ms);
    std::this_thread::sleep_for(150ms); // past reconnect_delay
    CHECK(call("resumed") == callsavvy::error_code{});
    CHECK(m.journal().size() == 2);
}

TEST_CASE("redis store: TLS to Redis, the server's certificate verified against the given CA", "[redis]") {
    redis_process redis("tls-test-password", 0, true);
    asio::io_context io;
    callsavvy::rate_limit_options o;
    o.on_store_failure = callsavvy::store_failure_policy::fail;
    auto acquire = [&](callsavvy::redis_store_options r) {
        o.shared_store = callsavvy::redis_shared_store(std::move(r));
        callsavvy::rate_limiter lim(io.get_executor(), o);
        std::optional<callsavvy::error_code> ec;
        lim.async_acquire("listTickets", [&](callsavvy::error_code e, callsavvy::rate_grant) { ec = e; });
        cstest::run_until(
            io, [&] { return ec.has_value(); }, 10s, "the acquire");
        lim.close();
        return *ec;
    };
    auto r = store_on(redis.tls_port());
    r.password = "tls-test-password";
    r.use_tls = true;
    // The system's trust store does not know the test CA: the handshake fails, and so does the acquire.
    CHECK(acquire(r) == callsavvy::make_error_code(callsavvy::error::rate_store_unavailable));
    r.tls.ca_file = cstest::test_pki().ca_file.string();
    CHECK(acquire(r) == callsavvy::error_code{});
    const auto keys = command(redis.port(), {"KEYS", "*"}, "tls-test-password");
    CHECK(keys.items.size() == 2); // recorded through the TLS connection
}

TEST_CASE("redis store: limiter_for_key gives each executor its own limiter and connection; one io_context gone, "
          "the other's calls go on",
          "[redis][mock]") {
    redis_process redis;
    asio::io_context server_io;
    testing::mock_server m(server_io.get_executor(), mock_limits(1000ms));
    auto guard = asio::make_work_guard(server_io);
    std::thread server([&] { server_io.run(); });
    std::vector<asio::any_io_executor> made_on;
    std::mutex made_mu;
    auto o = client_for(m.base_url(), 1000ms);
    o.rate_limits.shared_store =
        [&, inner = callsavvy::redis_shared_store(store_on(redis.port()))](const asio::any_io_executor& ex) {
            const std::lock_guard<std::mutex> l(made_mu);
            made_on.push_back(ex);
            return inner(ex);
        };
    o.rate_limits.on_store_failure = callsavvy::store_failure_policy::fail;
    auto call = [](callsavvy::client& c, asio::io_context& io, const char* name) {
        std::optional<callsavvy::error_code> ec;
        c.async_create_lead({.name = name, .phone = "+1"}, [&](callsavvy::error_code e, auto) { ec = e; });
        cstest::run_until(
            io, [&] { return ec.has_value(); }, 10s, "the call");
        return *ec;
    };
    auto second_io = std::make_unique<asio::io_context>();
    asio::io_context first_io;
    callsavvy::client first(first_io.get_executor(), o);
    {
        auto second = std::make_unique<callsavvy::client>(second_io->get_executor(), o);
        CHECK(first.limiter() != second->limiter()); // one per executor ...
        CHECK(call(*second, *second_io, "second") == callsavvy::error_code{});
        second.reset();
        second_io.reset(); // ... so the first client's limiter does not need this io_context
    }
    CHECK(call(first, first_io, "first") == callsavvy::error_code{});
    CHECK(made_on.size() == 2); // a store (a connection) per limiter
    server_io.stop();
    server.join();
    CHECK(m.journal().size() == 2);
}
