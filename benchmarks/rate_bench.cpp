// Rate benchmark: a batch of calls across several endpoints against the mock server with short windows
// (default 50 per endpoint and 100 global per 2 s). Reports how much of the allowed rate the client used,
// how many 429s the server sent (target: none) and whether every call completed exactly once.
//   build/<release preset>/benchmarks/rate_bench [calls] [window_ms] [margin_ms]
#include <callsavvy/client.hpp>
#include <callsavvy/testing/mock_server.hpp>

#include <asio/io_context.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

int main(int argc, char** argv) {
    namespace testing = callsavvy::testing;
    const int calls = argc > 1 ? std::atoi(argv[1]) : 2000;
    const auto window = std::chrono::milliseconds(argc > 2 ? std::atoi(argv[2]) : 2000);
    const auto margin = std::chrono::milliseconds(argc > 3 ? std::atoi(argv[3]) : 20);
    constexpr std::size_t per_endpoint = 50;
    constexpr std::size_t global = 100;

    asio::io_context io;
    testing::mock_options mo;
    mo.rate_limits.per_endpoint = per_endpoint;
    mo.rate_limits.global = global;
    mo.rate_limits.window = window;
    mo.rate_limits.mode = testing::window_mode::sliding;
    testing::mock_server mock(io.get_executor(), mo);

    callsavvy::client_options o;
    o.keys = {testing::sandbox_key().public_key, testing::sandbox_key().private_key};
    o.base_url = mock.base_url();
    o.proxy.from_environment = false;
    o.rate_limits.per_endpoint = {per_endpoint, window};
    o.rate_limits.global = {global, window};
    o.rate_limits.safety_margin = margin;
    o.rate_limits.max_waiters = static_cast<std::size_t>(calls) + 1;
    o.call_deadline = std::chrono::hours(1);
    callsavvy::client api(io.get_executor(), o);

    int done = 0;
    int failed = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) {
        const std::string tag = "c" + std::to_string(i);
        auto finish = [&](callsavvy::error_code ec) {
            failed += ec ? 1 : 0;
            if (++done == calls) {
                api.close();
                mock.stop();
            }
        };
        switch (i % 4) {
        case 0: api.async_create_lead({.name = tag, .phone = "+1"}, [finish](auto ec, auto) { finish(ec); }); break;
        case 1:
            api.async_create_contact({.phone = "+2", .first_name = tag}, [finish](auto ec, auto) { finish(ec); });
            break;
        case 2:
            api.async_send_sms({.recipients = {"+3"}, .message = tag}, [finish](auto ec, auto) { finish(ec); });
            break;
        default: api.async_list_leads({.page = 1}, [finish](auto ec, auto) { finish(ec); }); break;
        }
    }
    io.run();
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::size_t too_many = 0, ok = 0;
    for (const auto& e : mock.journal()) {
        too_many += e.status == 429 ? 1 : 0;
        ok += e.status == 200 ? 1 : 0;
    }
    // A batch of n calls needs ceil(n / global) windows at best: the first window's calls leave at once.
    const double windows = std::ceil(static_cast<double>(calls) / global) - 1;
    const double ideal = windows * std::chrono::duration<double>(window).count();
    std::printf("calls %d, failed %d, answered 200: %zu, 429s: %zu\n", calls, failed, ok, too_many);
    std::printf("elapsed %.2f s, ideal %.2f s at %zu per %lld ms: %.1f%% of the allowed rate\n", elapsed, ideal, global,
                static_cast<long long>(window.count()), 100.0 * ideal / elapsed);
    return failed == 0 && too_many == 0 && ok == static_cast<std::size_t>(calls) ? 0 : 1;
}
