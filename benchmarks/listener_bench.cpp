// listener_bench — the webhook listener under load (issue 11): one thread runs an io_context with a listener
// whose callSummary handler counts events; wrk (benchmarks/listener/run.sh) POSTs the event over 64
// keep-alive connections and compares the rate with nginx answering the same POSTs with a fixed body.
//   listener_bench [port]      prints "listening <port>", then on SIGINT/SIGTERM "handled <n>"
#include <callsavvy/webhook/listener.hpp>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
    namespace wh = callsavvy::webhook;
    asio::io_context io(1); // one thread: the figure is events per second per core
    wh::listener_options o;
    o.server.port = argc > 1 ? static_cast<std::uint16_t>(std::stoi(argv[1])) : 0;
    o.server.max_connections = 1024;
    wh::listener l(io.get_executor(), o);
    std::uint64_t handled = 0, seconds = 0;
    l.on<wh::call_summary>([&](wh::call_summary e) -> asio::awaitable<void> {
        // What a real handler would touch: the typed fields.
        handled += e.call_duration.value_or(0) > 0 ? 1 : 0;
        seconds += static_cast<std::uint64_t>(e.call_duration.value_or(0));
        co_return;
    });
    l.start();
    std::cout << "listening " << l.port() << std::endl;
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](callsavvy::error_code, int) {
        l.stop();
        io.stop();
    });
    io.run();
    const auto stats = l.statistics();
    std::cout << "handled " << handled << " (ok " << stats.all.ok << ", rejected " << stats.all.rejected
              << ", handler errors " << stats.all.handler_error << ")" << std::endl;
    return stats.all.handler_error == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
