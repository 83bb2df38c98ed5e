// detail::watchdog (net/stream.hpp), the one deadline of a connection: it acts once on the last armed
// deadline, re-arming is lazy (a wait under way is kept and extended, or replaced when the new deadline is
// earlier), suspend() stops watching without touching the timer, and disarm() leaves nothing pending. Only an
// io_context and timers: no sockets. Times are checked as lower bounds (a timer never fires early) and through
// run_for() bounds, so a loaded machine cannot fail them.
#include <callsavvy/net/stream.hpp>

#include "support/asio.hpp"
#include <catch2/catch.hpp>

#include <chrono>

using namespace std::chrono_literals;
using callsavvy::detail::watchdog;

namespace {

struct target {
    int cancels = 0;
    int closes = 0;
    void cancel() noexcept { ++cancels; }
    void close() noexcept { ++closes; }
};

} // namespace

TEST_CASE("watchdog: a later deadline replaces an earlier one, and it acts once, as asked", "[watchdog]") {
    asio::io_context io;
    target t;
    watchdog w(io.get_executor(), t);
    const auto start = std::chrono::steady_clock::now();
    w.arm(10ms);
    w.arm(80ms, watchdog::on_expiry::cancel); // lazy: the 10 ms wait is kept and waits again when it ends
    io.run_for(5s);
    CHECK(std::chrono::steady_clock::now() - start >= 80ms);
    CHECK(t.cancels == 1);
    CHECK(t.closes == 0);
    CHECK(w.expired());
    CHECK(io.stopped()); // nothing left pending after acting
}

TEST_CASE("watchdog: an earlier deadline replaces a later wait at once", "[watchdog]") {
    asio::io_context io;
    target t;
    watchdog w(io.get_executor(), t);
    w.arm(1h);
    w.arm(10ms);
    io.run_for(5s); // a watchdog still waiting for the hour would run out this bound
    CHECK(t.closes == 1);
    CHECK(w.expired());
    CHECK(io.stopped());
    w.arm(1h);
    CHECK_FALSE(w.expired()); // arming starts a new phase
    w.disarm();
}

TEST_CASE("watchdog: suspend() watches nothing, and its wait ends by itself", "[watchdog]") {
    asio::io_context io;
    target t;
    watchdog w(io.get_executor(), t);
    w.arm(10ms);
    w.suspend();
    io.run_for(5s);
    CHECK(t.closes + t.cancels == 0);
    CHECK_FALSE(w.expired());
    CHECK(io.stopped());

    // Suspended, then armed again before the old wait ended: only the new deadline counts.
    io.restart();
    const auto start = std::chrono::steady_clock::now();
    w.arm(10ms);
    w.suspend();
    w.arm(60ms);
    io.run_for(5s);
    CHECK(std::chrono::steady_clock::now() - start >= 60ms);
    CHECK(t.closes == 1);
}

TEST_CASE("watchdog: disarm() leaves no wait behind, and a queued expiry after it is a no-op", "[watchdog]") {
    asio::io_context io;
    target t;
    watchdog w(io.get_executor(), t);
    w.arm(1h);
    w.disarm();
    const auto start = std::chrono::steady_clock::now();
    io.run_for(5s);
    CHECK(std::chrono::steady_clock::now() - start < 4s); // returned at once: nothing pending
    CHECK(io.stopped());
    CHECK(t.closes + t.cancels == 0);

    // The deadline passes while the loop is busy elsewhere; disarm() before its completion runs wins.
    io.restart();
    w.arm(1ms);
    const auto busy_until = std::chrono::steady_clock::now() + 20ms;
    while (std::chrono::steady_clock::now() < busy_until) {}
    w.disarm();
    io.run_for(5s);
    CHECK(t.closes + t.cancels == 0);
    CHECK_FALSE(w.expired());
}

TEST_CASE("watchdog: destroyed with a wait under way, its completion touches nothing", "[watchdog]") {
    asio::io_context io;
    target t;
    {
        watchdog w(io.get_executor(), t);
        w.arm(1ms);
        const auto busy_until = std::chrono::steady_clock::now() + 10ms;
        while (std::chrono::steady_clock::now() < busy_until) {}
    }
    io.run_for(5s);
    CHECK(t.closes + t.cancels == 0);
    CHECK(io.stopped());
}
