// redis_bench — what the Redis-backed shared store costs per grant: grants/s through Redis on loopback and the
// latency one grant adds over the in-process store. Starts its own redis-server (Debian's, on a free loopback
// port, a temporary directory, no persistence) and stops it. Limits are set so high that no grant waits: the
// figures are the store's round trip and the limiter's bookkeeping, not the rate limits.
// Run by hand from a release build: ./build/gcc-release/benchmarks/redis_bench [redis-server path]
#include <callsavvy/limiter.hpp>
#include <callsavvy/redis_bucket_store.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

namespace asio = callsavvy::asio;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

std::uint16_t free_port() {
    asio::io_context io;
    asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
}

// redis-server on 127.0.0.1:port without persistence, killed when this goes out of scope.
struct redis_server {
    pid_t pid = -1;
    std::string dir;
    std::uint16_t port = 0;

    explicit redis_server(const std::string& program) : port(free_port()) {
        char tmpl[] = "/tmp/callsavvy-redis-bench-XXXXXX";
        if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
        dir = tmpl;
        std::vector<std::string> args{program,  "--port", std::to_string(port), "--bind", "127.0.0.1",
                                      "--save", "",       "--appendonly",       "no",     "--dir",
                                      dir};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        const int r = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0) throw std::runtime_error("cannot start " + program);
        // Ready when it accepts a connection.
        for (int i = 0; i < 1000; ++i) {
            asio::io_context io;
            asio::ip::tcp::socket s(io);
            callsavvy::error_code ec;
            s.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
            if (!ec) return;
            std::this_thread::sleep_for(10ms);
        }
        throw std::runtime_error("redis-server did not start");
    }
    ~redis_server() {
        kill(pid, SIGTERM);
        int status = 0;
        waitpid(pid, &status, 0);
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};

callsavvy::rate_limit_options unbounded() {
    callsavvy::rate_limit_options o;
    // No grant ever waits (10 million per second); the short window keeps the local logs (which hold N times
    // each) and Redis's sorted sets small.
    o.per_endpoint = {100'000, 10ms};
    o.global = {100'000, 10ms};
    o.safety_margin = 0ms;
    o.on_store_failure = callsavvy::store_failure_policy::fail;
    return o;
}

struct figures {
    double grants_per_second = 0;
    double p50_us = 0, p99_us = 0; ///< latency of one acquire, from the call to its grant
    std::size_t failures = 0;
};

// `workers` coroutines, each acquiring `per_worker` grants one after another on `endpoints` endpoints.
figures measure(const callsavvy::rate_limit_options& o, int workers, int per_worker) {
    asio::io_context io;
    callsavvy::rate_limiter lim(io.get_executor(), o);
    std::vector<double> latencies;
    latencies.reserve(static_cast<std::size_t>(workers * per_worker));
    figures f;
    auto worker = [&](int w) -> asio::awaitable<void> {
        const std::string endpoint = "endpoint-" + std::to_string(w % 8);
        for (int i = 0; i < per_worker; ++i) {
            const auto t0 = clock_type::now();
            auto [ec, grant] = co_await lim.async_acquire(endpoint, callsavvy::detail::use_nothrow);
            latencies.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
            if (ec) ++f.failures;
        }
    };
    // A warm-up grant: the connection and SCRIPT LOAD are not part of the figures.
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { co_await lim.async_acquire("warm-up", callsavvy::detail::use_nothrow); },
        asio::detached);
    io.run();
    io.restart();
    const auto t0 = clock_type::now();
    for (int w = 0; w < workers; ++w) asio::co_spawn(io, worker(w), asio::detached);
    io.run();
    const double seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
    lim.close();
    std::sort(latencies.begin(), latencies.end());
    f.grants_per_second = static_cast<double>(latencies.size()) / seconds;
    f.p50_us = latencies[latencies.size() / 2];
    f.p99_us = latencies[latencies.size() * 99 / 100];
    return f;
}

void print(const char* store, int workers, const figures& f) {
    std::printf("%-6s %3d in flight: %9.0f grants/s   p50 %7.1f us   p99 %7.1f us%s\n", store, workers,
                f.grants_per_second, f.p50_us, f.p99_us, f.failures != 0 ? "   (FAILURES)" : "");
}

} // namespace

int main(int argc, char** argv) {
    const std::string program = argc > 1 ? argv[1] : "redis-server";
    redis_server server(program);
    callsavvy::redis_store_options r;
    r.port = server.port;
    auto shared = unbounded();
    shared.shared_store = callsavvy::redis_shared_store(r);
    constexpr int total = 40'000;
    std::printf("redis_bench: %d grants per line; redis-server %s on 127.0.0.1:%u\n", total, program.c_str(),
                server.port);
    bool failed = false;
    for (const int workers : {1, 16, 256}) {
        const figures local = measure(unbounded(), workers, total / workers);
        const figures redis = measure(shared, workers, total / workers);
        print("local", workers, local);
        print("redis", workers, redis);
        std::printf("       added per grant: p50 %.1f us, and %.2f us of the loop's time per grant (1/throughput)\n",
                    redis.p50_us - local.p50_us, 1e6 / redis.grants_per_second - 1e6 / local.grants_per_second);
        failed = failed || redis.failures != 0 || local.failures != 0;
    }
    return failed ? 1 : 0;
}
