// client_bench — callsavvy's client under load: `connections` coroutines on one thread, each making typed
// getSummary calls back to back through one client (pool of `connections` keep-alive connections, rate
// limiter off), against a server that answers a fixed envelope (benchmarks/run.sh starts nginx for it).
// TLS is verified against --ca, host name included. After a one-second warm-up it counts the calls that
// completed during --duration seconds and prints one line: "rps <calls per second> errors <failed calls>".
//   client_bench --url http[s]://127.0.0.1:PORT/v1/getSummary [--connections 64] [--duration 10] [--ca ca.pem]
#include <callsavvy/callsavvy.hpp>
#include <callsavvy/testing/mock_server.hpp>

#include "compare_common.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <new>
#include <string>
#include <string_view>

// Every operator new is counted (one thread: a plain counter), so the run reports allocations per call.
// The replacements allocate with malloc and free with free, which g++ cannot see through and would report as
// a mismatched pair.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
namespace {
std::uint64_t allocations = 0;
}
void* operator new(std::size_t n) {
    ++allocations;
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

struct counters {
    bool counting = false;
    bool stopping = false;
    std::uint64_t ok = 0;
    std::uint64_t errors = 0;
    std::uint64_t allocations_at_start = 0;
    std::uint64_t allocations_at_end = 0;
    std::string first_error;
};

asio::awaitable<void> worker(callsavvy::client& cs, counters& c) {
    while (!c.stopping) {
        callsavvy::diagnostics diag;
        auto [ec, summary] = co_await cs.async_get_summary({}, diag, asio::experimental::as_tuple(asio::use_awaitable));
        const bool good = !ec && summary.business_id.has_value();
        if (!c.counting) continue;
        if (good) {
            ++c.ok;
        } else {
            ++c.errors;
            if (c.first_error.empty())
                c.first_error = ec ? ec.message() + " " + diag.detail : std::string("no business_id in the answer");
        }
    }
}

} // namespace

int main(int argc, char** argv) {
    const bench::options s = bench::parse_options(argc, argv); // the comparison clients' flags and checks
    // The client's base URL is the resource URL without its last segment.
    const auto slash = s.url.rfind('/');
    callsavvy::client_options o;
    o.base_url = s.url.substr(0, slash + 1);
    const auto key = callsavvy::testing::sandbox_key();
    o.keys = {key.public_key, key.private_key};
    o.max_connections = static_cast<std::size_t>(s.connections);
    o.rate_limits.enabled = false;
    o.tls.ca_file = s.ca;

    asio::io_context io(1); // one thread: the figure is calls per second per core
    callsavvy::client cs(io.get_executor(), o);
    if (auto ec = cs.configuration_error()) {
        std::cerr << "client_bench: " << ec.message() << '\n';
        return 2;
    }
    counters c;
    for (int i = 0; i < s.connections; ++i) asio::co_spawn(io, worker(cs, c), asio::detached);

    asio::steady_timer timer(io);
    std::chrono::steady_clock::time_point started;
    auto control = [&]() -> asio::awaitable<void> {
        timer.expires_after(std::chrono::seconds(1));
        co_await timer.async_wait(asio::use_awaitable);
        c.counting = true;
        c.allocations_at_start = allocations;
        started = std::chrono::steady_clock::now();
        timer.expires_after(std::chrono::seconds(s.duration));
        co_await timer.async_wait(asio::use_awaitable);
        c.counting = false;
        c.allocations_at_end = allocations;
        c.stopping = true;
    };
    std::chrono::steady_clock::duration elapsed{};
    asio::co_spawn(io, control(), [&](std::exception_ptr) {
        elapsed = std::chrono::steady_clock::now() - started;
        cs.close(); // ends the calls in flight, which are no longer counted
    });
    io.run();

    const double seconds = std::chrono::duration<double>(elapsed).count();
    std::printf("rps %.0f errors %llu\n", static_cast<double>(c.ok) / seconds,
                static_cast<unsigned long long>(c.errors));
    if (c.ok > 0)
        std::fprintf(stderr, "client_bench: %.1f allocations per call\n",
                     static_cast<double>(c.allocations_at_end - c.allocations_at_start) / static_cast<double>(c.ok));
    if (!c.first_error.empty()) std::cerr << "client_bench: first error: " << c.first_error << '\n';
    return c.errors == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
