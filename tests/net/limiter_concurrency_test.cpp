// The rate limiter across threads (run under TSan in CI): clients on different io_contexts share one limiter,
// acquire, cancel, pause and read stats at the same time, and every acquire completes exactly once on its own
// thread; a key's limiters on two io_contexts share its buckets, never exceed the limits together, and one
// keeps going when the other's io_context stops and is destroyed. Real timers with tiny windows; assertions
// count outcomes (and the store's own record of its grants), never measure time beyond a generous bound.
#include <callsavvy/limiter.hpp>

#include "support/asio.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

namespace asio = callsavvy::asio;
using namespace std::chrono_literals;

callsavvy::rate_limit_options limits(callsavvy::bucket_limits per_endpoint, callsavvy::bucket_limits global,
                                     std::chrono::milliseconds margin) {
    callsavvy::rate_limit_options o;
    o.per_endpoint = per_endpoint;
    o.global = global;
    o.safety_margin = margin;
    return o;
}

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
        callsavvy::error_code ec;
        if (i % 10 == 3) {
            // Cancelled after a short while: before, at or after its grant, whichever comes.
            auto sig = std::make_shared<asio::cancellation_signal>();
            auto timer = std::make_shared<asio::steady_timer>(ex, std::chrono::microseconds(50 * (i % 5)));
            timer->async_wait([sig, timer](callsavvy::error_code) { sig->emit(asio::cancellation_type::terminal); });
            auto [e, grant] = co_await lim->async_acquire(
                endpoint, position,
                asio::bind_cancellation_slot(sig->slot(), asio::experimental::as_tuple(asio::use_awaitable)));
            ec = e;
            timer->cancel();
        } else {
            auto [e, grant] =
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
    auto o = limits({8, 20ms}, {16, 20ms}, 1ms);
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
    for (int i = 0; i < 20; ++i)
        lim->async_acquire("listTickets",
                           [&](callsavvy::error_code ec, callsavvy::rate_grant) { ++(ec ? aborted : ok); });
    std::thread runner([&] { io.run_for(30s); });
    const auto give_up = std::chrono::steady_clock::now() + 20s;
    while (ok.load() == 0 && std::chrono::steady_clock::now() < give_up) std::this_thread::yield(); // first grant
    lim->close(); // from this thread, while the runner thread runs the limiter
    runner.join();
    CHECK(ok == 1);
    CHECK(aborted == 19);
}

namespace {

// Waits (bounded) until `done` holds, yielding the thread.
template <class F>
bool eventually(F&& done, std::chrono::steady_clock::duration limit = 20s) {
    const auto give_up = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > give_up) return false;
        std::this_thread::yield();
    }
    return true;
}

} // namespace

TEST_CASE("limiter: a key's limiter on another io_context keeps granting when the first io_context stops and goes",
          "[limiter][concurrency]") {
    auto o = limits({2, 100ms}, {4, 100ms}, 5ms);
    auto first_io = std::make_unique<asio::io_context>();
    asio::io_context second_io;
    auto first_guard =
        std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(first_io->get_executor());
    std::thread first_thread([&] { first_io->run_for(30s); });
    struct stop_first { // a failed REQUIRE must not leave the thread running
        std::unique_ptr<asio::io_context>& io;
        std::thread& t;
        ~stop_first() {
            if (io) io->stop();
            if (t.joinable()) t.join();
        }
    } stopper{first_io, first_thread};

    auto first = callsavvy::limiter_for_key(first_io->get_executor(), "pk_two_io_contexts", o);
    auto second = callsavvy::limiter_for_key(second_io.get_executor(), "pk_two_io_contexts", o);
    // Each io_context has its own limiter, with its timer there (one shared limiter would run on the first's).
    REQUIRE(first != second);
    REQUIRE(second->get_executor() == second_io.get_executor());

    // The first io_context's calls take the endpoint's whole window ...
    std::atomic<int> first_granted{0};
    for (int i = 0; i < 2; ++i)
        first->async_acquire("listTickets", [&](callsavvy::error_code ec, callsavvy::rate_grant) {
            if (!ec) ++first_granted;
        });
    REQUIRE(eventually([&] { return first_granted == 2; }));
    // ... so the second's wait for the next windows.
    constexpr int waiting = 6;
    std::atomic<int> second_done{0}, second_granted{0};
    for (int i = 0; i < waiting; ++i)
        second->async_acquire("listTickets", [&](callsavvy::error_code ec, callsavvy::rate_grant) {
            second_granted += ec ? 0 : 1;
            ++second_done;
        });
    CHECK(second->stats("listTickets").in_window == 2);

    // The first io_context stops, its limiter goes, and then the io_context itself.
    first_io->stop();
    first_thread.join();
    first.reset();
    first_guard.reset();
    first_io.reset();

    const auto start = std::chrono::steady_clock::now();
    while (second_done < waiting && std::chrono::steady_clock::now() - start < 20s) {
        second_io.restart();
        second_io.run_for(50ms);
    }
    const auto took = std::chrono::steady_clock::now() - start;
    INFO("the second io_context's acquires took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                                                  << " ms");
    CHECK(second_granted == waiting);
    CHECK(took < 10s); // 3 windows of 105 ms; generous for TSan on a loaded machine
    CHECK(second->global_stats().queued == 0);
}

namespace {

// local_bucket_store, with every grant it admits recorded (at the time it was admitted): the truth about
// what the limiters that share it let through.
class recording_store final : public callsavvy::bucket_store {
public:
    explicit recording_store(const callsavvy::rate_limit_options& o) : inner_(o) {}

    std::size_t acquire(std::string_view endpoint, time_point now) override { return inner_.acquire(endpoint, now); }
    void retain(std::size_t id) override { inner_.retain(id); }
    void release(std::size_t id) override { inner_.release(id); }
    time_point next_free(std::size_t id, time_point now) override { return inner_.next_free(id, now); }
    bool try_reserve(std::size_t id, time_point now) override {
        if (!inner_.try_reserve(id, now)) return false;
        const std::lock_guard<std::mutex> l(mu_);
        grants_[id].push_back(now);
        return true;
    }
    void give_back(std::size_t id, time_point at) override {
        inner_.give_back(id, at);
        const std::lock_guard<std::mutex> l(mu_);
        auto& v = grants_[id];
        if (const auto it = std::find(v.begin(), v.end(), at); it != v.end()) v.erase(it);
    }
    void pause(std::size_t id, time_point until) override { inner_.pause(id, until); }
    time_point record_429(std::size_t id, time_point now) override { return inner_.record_429(id, now); }
    callsavvy::bucket_usage usage(std::size_t id, time_point now) override { return inner_.usage(id, now); }
    void sent(std::size_t id, time_point at) override { inner_.sent(id, at); }
    void unused(std::size_t id) override { inner_.unused(id); }

    std::map<std::size_t, std::vector<time_point>> grants() {
        const std::lock_guard<std::mutex> l(mu_);
        return grants_;
    }

private:
    callsavvy::local_bucket_store inner_;
    std::mutex mu_;
    std::map<std::size_t, std::vector<time_point>> grants_;
};

// The most of `t` in any closed span of `w` (the margin keeps grants N apart by more than w).
std::size_t most_within(std::vector<std::chrono::steady_clock::time_point> t, std::chrono::milliseconds w) {
    std::sort(t.begin(), t.end());
    std::size_t best = 0;
    for (std::size_t i = 0; i < t.size(); ++i) {
        std::size_t n = 0;
        for (std::size_t j = i; j < t.size() && t[j] <= t[i] + w; ++j) ++n;
        best = std::max(best, n);
    }
    return best;
}

asio::awaitable<void> acquire_many(callsavvy::rate_limiter& lim, int k, int n, std::atomic<int>& granted) {
    static const std::array<const char*, 2> endpoints{"listLeads", "createLead"};
    for (int i = 0; i < n; ++i) {
        auto [ec, grant] = co_await lim.async_acquire(endpoints[static_cast<std::size_t>(k + i) % endpoints.size()],
                                                      asio::experimental::as_tuple(asio::use_awaitable));
        if (!ec) ++granted;
    }
}

} // namespace

TEST_CASE("limiter: two limiters of one store on two threads never exceed the limits together",
          "[limiter][concurrency]") {
    auto o = limits({3, 40ms}, {5, 40ms}, 2ms);
    auto store = std::make_shared<recording_store>(o);
    std::array<asio::io_context, 2> ios;
    callsavvy::rate_limiter a(ios[0].get_executor(), o, store);
    callsavvy::rate_limiter b(ios[1].get_executor(), a);
    constexpr int coroutines = 3, each = 10;
    std::array<std::atomic<int>, 2> granted{};
    std::vector<std::thread> threads;
    for (std::size_t s = 0; s < 2; ++s) {
        threads.emplace_back([&, s] {
            auto& lim = s == 0 ? a : b;
            for (int k = 0; k < coroutines; ++k)
                asio::co_spawn(ios[s], acquire_many(lim, k, each, granted[s]), asio::detached);
            ios[s].run_for(30s); // returns once every acquire completed
        });
    }
    for (auto& t : threads) t.join();
    CHECK(granted[0] == coroutines * each);
    CHECK(granted[1] == coroutines * each);

    std::vector<std::chrono::steady_clock::time_point> all;
    for (const auto& [id, times] : store->grants()) {
        INFO("bucket " << id);
        if (id == callsavvy::bucket_store::global_bucket) continue;
        CHECK(most_within(times, o.per_endpoint.window) <= o.per_endpoint.max_requests);
        all.insert(all.end(), times.begin(), times.end());
    }
    REQUIRE(all.size() == 2 * coroutines * each);
    CHECK(most_within(all, o.global.window) == o.global.max_requests); // reached, never exceeded
}
