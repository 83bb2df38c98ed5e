// limiter_bench — what 100,000 calls parked in the rate limiter cost: the limiter's own memory per waiter,
// the resident memory per parked coroutine, and the CPU per grant. Runs in virtual time (manual clock), so
// a minute's window passes instantly and the CPU figures are the limiter's, not the kernel's timers'.
// Run by hand from a release build: ./build/gcc-release/benchmarks/limiter_bench
#include <callsavvy/detail/limiter_manual_timer.hpp>
#include <callsavvy/limiter.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <malloc.h>
#include <time.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <new>
#include <string>
#include <vector>

// Every operator new is counted (calls and bytes asked for); mallinfo2 gives the heap's real growth, malloc
// headers and Asio's aligned_alloc'd recycling blocks included.
namespace {
std::atomic<std::size_t> g_new_calls{0};
std::atomic<std::size_t> g_new_bytes{0};
} // namespace

// noinline: g++ would otherwise inline free() next to a known operator new and warn (mismatched-new-delete).
[[gnu::noinline]] void* operator new(std::size_t n) {
    g_new_calls.fetch_add(1, std::memory_order_relaxed);
    g_new_bytes.fetch_add(n, std::memory_order_relaxed);
    if (void* p = std::malloc(n != 0 ? n : 1)) return p;
    throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

namespace asio = callsavvy::asio;
using namespace std::chrono_literals;
using callsavvy::detail::manual_clock;
using callsavvy::detail::manual_timer;
using vlimiter = callsavvy::basic_rate_limiter<manual_timer>;

constexpr int waiters = 100'000;
constexpr int endpoints = 10;

double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

long rss_kib() {
    std::ifstream f("/proc/self/status");
    std::string key;
    while (f >> key) {
        if (key == "VmRSS:") {
            long kib = 0;
            f >> kib;
            return kib;
        }
        std::getline(f, key);
    }
    return -1;
}

std::size_t heap_in_use() {
    const auto m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

struct snapshot {
    std::size_t calls = g_new_calls.load();
    std::size_t bytes = g_new_bytes.load();
    std::size_t heap = heap_in_use();
    long rss = rss_kib();
};

// Runs handlers, firing virtual timers, until nothing is left; returns the number of grants' timer firings.
std::size_t drain_virtual(asio::io_context& io) {
    std::size_t firings = 0;
    for (;;) {
        io.restart();
        io.poll();
        const auto next = manual_timer::next_expiry();
        if (!next) return firings;
        manual_timer::advance_to(*next);
        ++firings;
    }
}

std::vector<std::string> endpoint_names() {
    std::vector<std::string> names;
    for (int e = 0; e < endpoints; ++e) names.push_back("listEndpointNumber" + std::to_string(e)); // > SSO length
    return names;
}

// 1. The limiter's own memory: callback acquires, each with its own cancellation slot (so the slot's handler
//    memory counts too), parked behind a global pause.
void own_memory() {
    manual_timer::reset();
    asio::io_context io;
    callsavvy::rate_limit_options o;
    vlimiter lim(io.get_executor(), o);
    const auto names = endpoint_names();
    for (const auto& n : names) (void)lim.stats(n); // buckets exist before measuring
    std::vector<asio::cancellation_signal> signals(waiters);
    int done = 0;
    lim.pause_global(1h);
    const snapshot before;
    for (int i = 0; i < waiters; ++i)
        lim.async_acquire(names[static_cast<std::size_t>(i % endpoints)],
                          asio::bind_cancellation_slot(signals[static_cast<std::size_t>(i)].slot(),
                                                       [&done](std::error_code, callsavvy::rate_grant) { ++done; }));
    const snapshot after;
    std::printf("1. the limiter's own memory, %d parked callback acquires (each with its own cancellation slot)\n",
                waiters);
    std::printf(
        "   operator new: %.2f calls and %.1f bytes per waiter (the operation: waiter links, handler, slot binding);"
        " heap growth (mallinfo2, malloc headers and the slot's cancellation handler included): %.1f bytes per "
        "waiter\n",
        static_cast<double>(after.calls - before.calls) / waiters,
        static_cast<double>(after.bytes - before.bytes) / waiters,
        static_cast<double>(after.heap - before.heap) / waiters);
    std::printf("   queued: %zu\n", lim.global_stats().queued);
    lim.close();
    drain_virtual(io);
    if (done != waiters) std::printf("   ERROR: %d of %d completed\n", done, waiters);
}

// 2. Parked coroutines (use_awaitable): resident memory per parked call, coroutine frames included; then CPU
//    per grant releasing all of them under the default limits (50/60 s per endpoint, 100/60 s global).
void coroutines(const callsavvy::rate_limit_options& o, const char* title, bool fresh_process) {
    manual_timer::reset();
    asio::io_context io;
    vlimiter lim(io.get_executor(), o);
    const auto names = endpoint_names();
    for (const auto& n : names) (void)lim.stats(n);
    int done = 0;
    auto call = [&](const std::string& endpoint) -> asio::awaitable<void> {
        co_await lim.async_acquire(endpoint);
        ++done;
    };
    lim.pause_global(1s); // everyone parks; the first grants come at t = 1 s
    const snapshot before;
    for (int i = 0; i < waiters; ++i)
        asio::co_spawn(io, call(names[static_cast<std::size_t>(i % endpoints)]), asio::detached);
    io.poll(); // every coroutine runs to its co_await and parks
    const snapshot parked;
    std::printf("%s\n", title);
    // Asio allocates coroutine frames through its recycling allocator (aligned_alloc), which operator new
    // does not see: operator new counts the limiter's operations, the heap and VmRSS count everything.
    std::printf("   parked: %zu; per parked coroutine: operator new %.2f calls / %.1f bytes (the limiter's operation),"
                " heap %.1f bytes and VmRSS %.1f bytes (everything: coroutine frames, Asio's thread, the operation)\n",
                lim.global_stats().queued, static_cast<double>(parked.calls - before.calls) / waiters,
                static_cast<double>(parked.bytes - before.bytes) / waiters,
                static_cast<double>(parked.heap - before.heap) / waiters,
                // Later runs reuse pages freed by earlier ones: their VmRSS growth says nothing per call.
                fresh_process ? static_cast<double>(parked.rss - before.rss) * 1024.0 / waiters : 0.0);

    const double c0 = cpu_seconds();
    const std::size_t firings = drain_virtual(io);
    const double c1 = cpu_seconds();
    std::printf("   released %d in %zu timer firings over %.0f s of virtual time: %.3f us CPU per grant"
                " (grant decision + completion + coroutine resumption and end)\n",
                done, firings, std::chrono::duration<double>(manual_clock::now().time_since_epoch()).count(),
                (c1 - c0) * 1e6 / done);
}

// 3. The scheduler alone (sans-io core), for the decision's share of a grant.
void core_only() {
    callsavvy::rate_limit_options o;
    callsavvy::detail::limiter_core core(o, nullptr);
    std::vector<callsavvy::detail::limiter_waiter> ws(waiters);
    std::vector<std::uint32_t> ids;
    for (const auto& n : endpoint_names()) ids.push_back(core.acquire(n, std::chrono::steady_clock::time_point{}));
    for (int i = 0; i < waiters; ++i)
        core.park(ws[static_cast<std::size_t>(i)], ids[static_cast<std::size_t>(i % endpoints)], false);
    std::size_t grants = 0;
    auto now = std::chrono::steady_clock::time_point{};
    const double c0 = cpu_seconds();
    while (core.parked() > 0) now = core.grant_ready(now, [&](callsavvy::detail::limiter_waiter&) { ++grants; });
    const double c1 = cpu_seconds();
    std::printf("3. scheduler alone (detail::limiter_core, default limits, %d endpoints): %.3f us CPU per grant\n",
                endpoints, (c1 - c0) * 1e6 / static_cast<double>(grants));
}

using awaitable_handler =
    asio::detail::awaitable_handler<asio::any_io_executor, std::error_code, callsavvy::rate_grant>;

} // namespace

int main() {
    std::printf("limiter_bench: %d waiters over %d endpoints, virtual time\n", waiters, endpoints);
    std::printf("   sizeof(operation) for a use_awaitable acquire: %zu bytes (same executor as the limiter), %zu bytes"
                " (another executor: + outstanding-work executor)\n",
                sizeof(callsavvy::detail::limiter_handler_op<manual_timer, awaitable_handler, void>),
                sizeof(callsavvy::detail::limiter_handler_op<manual_timer, awaitable_handler, asio::any_io_executor>));
    // Coroutines first: VmRSS growth is only meaningful before freed memory is there to be reused.
    callsavvy::rate_limit_options defaults;
    coroutines(defaults, "2a. parked coroutines, default limits (50/60 s per endpoint, 100/60 s global)", true);
    own_memory();
    callsavvy::rate_limit_options wide;
    wide.per_endpoint = {100'000, 1s};
    wide.global = {100'000, 1s};
    coroutines(wide, "2b. parked coroutines, all released by one timer firing (VmRSS not measured: pages reused)",
               false);
    core_only();
}
