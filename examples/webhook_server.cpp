// webhook_server — receiving Callsavvy's webhooks on the application's own io_context: a listener with a
// typed handler for a notification (callSummary) and one for a lookup (callerInformation, answered with a
// typed reply). To show it working offline, the mock's webhook sender plays Callsavvy and delivers one of
// each; then the listener shuts down gracefully. Exits non-zero if anything differs.
#include <callsavvy/callsavvy.hpp>
#include <callsavvy/testing/webhook_sender.hpp>

#include <boost/json/parse.hpp>
#include <callsavvy/asio.hpp>

#include <chrono>
#include <exception>
#include <iostream>
#include <string>

namespace wh = callsavvy::webhook;
namespace net = callsavvy::asio;
using namespace std::chrono_literals;

int main() {
    net::io_context io;
    wh::listener_options o;
    o.server.port = 0;                          // ephemeral; a real deployment names its port
    o.path = "/callsavvy/Q2xhc3NpZmllZCBwYXRo"; // a secret in the path, compared in constant time
    wh::listener hooks(io.get_executor(), o);

    // A notification is acknowledged (200) only once its handler returned: a throw answers 500 and
    // Callsavvy delivers it again.
    int summaries = 0;
    hooks.on<wh::call_summary>([&summaries](wh::call_summary e) -> net::awaitable<void> {
        ++summaries;
        std::cout << "call from " << e.caller_number.value_or("?") << ", " << e.call_duration.value_or(0) << " s\n";
        co_return;
    });
    // A lookup answers with its reply type; past listener_options::lookup_deadline (5 s) the fallback reply
    // goes out instead and the handler is cancelled.
    hooks.on<wh::caller_information>([](wh::caller_information e) -> net::awaitable<wh::caller_information_reply> {
        wh::caller_information_reply r;
        r.caller_name = e.caller_number == "+2348012345678" ? "Ada Okafor" : "";
        r.customer_info = r.caller_name.empty() ? "unknown caller" : "VIP since 2021";
        co_return r;
    });
    hooks.start();
    const std::string url = "http://127.0.0.1:" + std::to_string(hooks.port()) + o.path;
    std::cout << "listening on " << url << '\n';

    // Callsavvy's side, played by the testing kit's sender.
    callsavvy::testing::webhook_sender sender(io.get_executor(), url);
    int status = 1;
    auto deliver = [&]() -> net::awaitable<void> {
        wh::call_summary call;
        call.caller_number = "+2348012345678";
        call.call_duration = 185;
        const auto acked = co_await sender.deliver(call);

        wh::caller_information lookup;
        lookup.caller_number = "+2348012345678";
        const auto answer = co_await sender.deliver(lookup);
        wh::caller_information_reply reply;
        callsavvy::json_mapping::decode_error err;
        const bool decoded = wh::decode_reply(boost::json::parse(answer.body).as_object(), reply, err);
        std::cout << "lookup answered " << answer.status << ": " << reply.caller_name << " (" << reply.customer_info
                  << ")\n";

        // Graceful shutdown: stop accepting, let deliveries under way finish (here: none), close the rest.
        const callsavvy::shutdown_result done = co_await hooks.async_shutdown(1000ms, net::use_awaitable);
        const auto stats = hooks.statistics();
        std::cout << stats.all.ok << " deliveries handled; shut down with " << done.cancelled << " cut short\n";
        if (acked.status == 200 && answer.status == 200 && decoded && reply.caller_name == "Ada Okafor" &&
            summaries == 1 && stats.all.ok == 2 && done.cancelled == 0)
            status = 0;
    };
    net::co_spawn(io, deliver(), [&](std::exception_ptr e) {
        if (e) status = 1;
        hooks.stop(); // also after a failure, so that io.run_for() returns
    });
    io.run_for(10s);
    if (status != 0) std::cerr << "webhook_server: unexpected result\n";
    return status;
}
