// tests/support/run.hpp — drives a test's io_context with a deadline, so a test body reads top to bottom and a
// hang becomes a failure instead of a stuck CI job. Handlers run on the calling thread. Work that never ends
// by itself (a script_server's accept loop) does not hold these functions up: they return as soon as what
// they wait for has happened, and the leftover work stays queued for a later call or for the server's stop().
#pragma once

#include <callsavvy/config.hpp>

#include "support/asio.hpp"

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace cstest {

namespace asio = callsavvy::asio;

inline constexpr std::chrono::seconds default_test_timeout{20};

// Runs handlers until pred() holds; throws std::runtime_error naming `what` if it does not within `timeout`,
// or if the io_context runs out of work first.
inline void run_until(asio::io_context& io, const std::function<bool()>& pred,
                      std::chrono::steady_clock::duration timeout = default_test_timeout,
                      const std::string& what = "condition") {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    if (io.stopped()) io.restart();
    while (!pred()) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) throw std::runtime_error("cstest::run_until: timed out waiting for " + what);
        if (io.run_one_for(deadline - now) == 0 && io.stopped() && !pred())
            throw std::runtime_error("cstest::run_until: io_context ran out of work before " + what);
    }
}

// Runs handlers that are ready now (completions already queued, I/O the kernel already reports) without
// waiting for anything else, e.g. to let a server notice a close the test just made.
inline void run_ready(asio::io_context& io) {
    if (io.stopped()) io.restart();
    // Bounded: a handler that keeps re-posting itself must not turn this into a hang.
    for (int i = 0; i < 10000 && io.poll() != 0; ++i) {}
}

// Runs the coroutine `main` on io until it completes and returns its result (rethrowing its exception);
// throws std::runtime_error if it is still running after `timeout`. A timed-out coroutine stays suspended in
// io: destroying the io_context (or stopping the servers it waits on) unwinds it.
template <class T>
T run(asio::io_context& io, asio::awaitable<T> main,
      std::chrono::steady_clock::duration timeout = default_test_timeout) {
    // Shared with the completion handler, which outlives this frame when the coroutine times out.
    struct outcome {
        bool done = false;
        std::exception_ptr error;
        std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value;
    };
    auto result = std::make_shared<outcome>();
    if constexpr (std::is_void_v<T>) {
        asio::co_spawn(io, std::move(main), [result](std::exception_ptr e) {
            result->done = true;
            result->error = e;
        });
    } else {
        asio::co_spawn(io, std::move(main), [result](std::exception_ptr e, T v) {
            result->done = true;
            result->error = e;
            if (!e) result->value.emplace(std::move(v));
        });
    }
    run_until(
        io, [&] { return result->done; }, timeout, "the test coroutine to finish");
    if (result->error) std::rethrow_exception(result->error);
    if constexpr (!std::is_void_v<T>) return std::move(*result->value);
}

// Runs one test coroutine, bounded in time, and rethrows what it threw. After it finishes, handlers that are
// already ready still run (run_ready), so servers see what the body's last steps did.
inline void run_test(asio::io_context& io, std::function<asio::awaitable<void>()> body,
                     std::chrono::seconds bound = default_test_timeout) {
    // co_spawn keeps the function object (and so the lambda's captures) alive while the coroutine runs.
    auto main = [body = std::move(body)]() { return body(); };
    auto result = std::make_shared<std::pair<bool, std::exception_ptr>>(false, nullptr);
    asio::co_spawn(io, std::move(main), [result](std::exception_ptr e) {
        result->first = true;
        result->second = e;
    });
    run_until(
        io, [&] { return result->first; }, bound, "the test coroutine to finish");
    run_ready(io);
    if (result->second) std::rethrow_exception(result->second);
}

} // namespace cstest
