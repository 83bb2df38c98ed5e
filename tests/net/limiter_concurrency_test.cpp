// The rate limiter shared across threads (run under TSan in CI): clients on different io_contexts use one
// limiter per key, acquire, cancel, pause and read stats at the same time, and every acquire completes exactly
// once on its own thread. Real timers with tiny windows; assertions count outcomes, never measure time.
#include <callsavvy/limiter.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = callsavvy::asio;
using namespace std::chrono_literals;

struct tally {
    std::atomic<int> granted{0};
    std::atomic<int> aborted{0};
    std::atomic<int> other{0};
    std::atomic<int> wrong_thread{0};
};

// One client's work: `calls` acquires over a few endpoints, each on this io_context's thread, a tenth of them
// cancelled by a timer of this io_context (so the cancellation races grants made on the limiter's thread).
asio::awaitable<void> client_calls(std::shared_ptr<callsavvy::rate_limiter> lim, int client, int calls, tally& t,
                                   std::thread::id home) {
    static const std::array<const char*, 4> endpoints{"listTickets", "getSummary", "listCalls", "createTicket"};
    auto ex = co_await asio::this_coro::executor;
    for (int i = 0; i < calls; ++i) {
        const char* endpoint = endpoints[static_cast<std::size_t>(client + i) % endpoints.size()];
        const auto position = i % 7 == 0 ? callsavvy::acquire_position::front : callsavvy::acquire_position::back;
        std::error_code ec;
        if (i % 10 == 3) {
            // Cancelled after a short while: before, at or after its grant, whichever comes.
            auto sig = std::make_shared<asio::cancellation_signal>();
            auto timer = std::make_shared<asio::steady_timer>(ex, std::chrono::microseconds(50 * (i % 5)));
            timer->async_wait([sig, timer](std::error_code) { sig->emit(asio::cancellation_type::terminal); });
            auto [e] = co_await lim->async_acquire(
                endpoint, position,
                asio::bind_cancellation_slot(sig->slot(), asio::experimental::as_tuple(asio::use_awaitable)));
            ec = e;
            timer->cancel();
        } else {
            auto [e] =
                co_await lim->async_acquire(endpoint, position, asio::experimental::as_tuple(asio::use_awaitable));
            ec = e;
        }
        if (std::this_thread::get_id() != home) ++t.wrong_thread;
        if (!ec) ++t.granted;
        else if (ec == asio::error::operation_aborted)
            ++t.aborted;
        else
            ++t.other;
        if (i % 25 == 24) lim->pause(endpoint, 2ms); // a 429 now and then, from any thread
        (void)lim->stats(endpoint);
        (void)lim->global_stats();
    }
}

} // namespace

TEST_CASE("limiter: clients on several threads share one limiter per key; every acquire completes once",
          "[limiter][concurrency]") {
    callsavvy::rate_limit_options o;
    o.per_endpoint = {8, 20ms};
    o.global = {16, 20ms};
    o.safety_margin = 1ms;
    o.backoff = {1ms, 4ms};

    asio::io_context limiter_io;
    auto guard = asio::make_work_guard(limiter_io);
    std::thread limiter_thread([&] { limiter_io.run_for(30s); });

    constexpr int clients = 3;
    constexpr int coroutines_per_client = 4;
    constexpr int calls = 30;
    std::array<asio::io_context, clients> ios;
    std::array<tally, clients> tallies;
    std::vector<std::thread> threads;
    std::atomic<int> finished{0};
    std::vector<std::shared_ptr<callsavvy::rate_limiter>> limiters(clients);
    for (int c = 0; c < clients; ++c) {
        // Each client asks the registry for its key's limiter, as a client object would.
        limiters[static_cast<std::size_t>(c)] =
            callsavvy::limiter_for_key(limiter_io.get_executor(), "pk_concurrency", o);
    }
    for (int c = 0; c < clients; ++c) {
        threads.emplace_back([&, c] {
            auto& io = ios[static_cast<std::size_t>(c)];
            const auto home = std::this_thread::get_id();
            for (int k = 0; k < coroutines_per_client; ++k) {
                asio::co_spawn(io,
                               client_calls(limiters[static_cast<std::size_t>(c)], c * 10 + k, calls,
                                            tallies[static_cast<std::size_t>(c)], home),
                               [&](std::exception_ptr e) {
                                   if (e) ++tallies[static_cast<std::size_t>(c)].other;
                                   ++finished;
                               });
            }
            io.run_for(30s); // bounded: a hang fails the counts below instead of stalling CI
        });
    }
    for (auto& t : threads) t.join();
    guard.reset();
    limiter_thread.join();

    REQUIRE(limiters[0] == limiters[1]);
    REQUIRE(limiters[1] == limiters[2]);
    CHECK(finished == clients * coroutines_per_client);
    int granted = 0, aborted = 0;
    for (auto& t : tallies) {
        CHECK(t.other == 0);
        CHECK(t.wrong_thread == 0); // completions run on the caller's own io_context thread
        CHECK(t.granted + t.aborted == coroutines_per_client * calls);
        granted += t.granted;
        aborted += t.aborted;
    }
    CHECK(granted + aborted == clients * coroutines_per_client * calls);
    CHECK(granted > 0);
    CHECK(limiters[0]->global_stats().queued == 0);
}

TEST_CASE("limiter: concurrent lookups of one key get one limiter; close from another thread ends waiters",
          "[limiter][concurrency]") {
    asio::io_context io;
    callsavvy::rate_limit_options o;
    o.per_endpoint = {1, 10s}; // after the first grant everyone waits: only close() ends them
    std::vector<std::shared_ptr<callsavvy::rate_limiter>> got(4);
    {
        std::vector<std::thread> ts;
        for (std::size_t i = 0; i < got.size(); ++i)
            ts.emplace_back([&, i] { got[i] = callsavvy::limiter_for_key(io.get_executor(), "pk_same_key", o); });
        for (auto& t : ts) t.join();
    }
    for (const auto& l : got) CHECK(l == got[0]);

    std::atomic<int> ok{0}, aborted{0};
    auto lim = got[0];
    got.clear();
    for (int i = 0; i < 20; ++i) lim->async_acquire("listTickets", [&](std::error_code ec) { ++(ec ? aborted : ok); });
    std::thread runner([&] { io.run_for(30s); });
    const auto give_up = std::chrono::steady_clock::now() + 20s;
    while (ok.load() == 0 && std::chrono::steady_clock::now() < give_up) std::this_thread::yield(); // first grant
    lim->close(); // from this thread, while the runner thread runs the limiter
    runner.join();
    CHECK(ok == 1);
    CHECK(aborted == 19);
}
