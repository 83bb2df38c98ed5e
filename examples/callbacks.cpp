// callbacks — the calls without coroutines: completion handlers (lambdas) chained on the io_context's thread,
// then net::use_future from a plain thread that blocks on the answers. Every call completes with
// (error_code, response); nothing throws except future::get(), with the error code. Offline against the
// in-process mock; exits non-zero if anything differs.
#include <callsavvy/callsavvy.hpp>
#include <callsavvy/testing/mock_server.hpp>

#include <callsavvy/asio.hpp>

#include <future>
#include <iostream>
#include <string>
#include <system_error>
#include <thread>

namespace api = callsavvy::api;
namespace net = callsavvy::asio;

int main() {
    net::io_context io;
    callsavvy::testing::mock_server mock(io.get_executor());
    callsavvy::client_options options;
    const auto key = callsavvy::testing::sandbox_key();
    options.keys = {key.public_key, key.private_key};
    options.base_url = mock.base_url();
    options.proxy.from_environment = false;
    callsavvy::client cs(io.get_executor(), std::move(options));

    // One thread runs the io_context (the client, the mock, the handlers); this one is the application's.
    auto guard = net::make_work_guard(io);
    std::thread runner([&io] { io.run(); });
    int failures = 0;

    // 1. Handlers, each starting the next call. Outside a co_await the braced request forms are fine.
    std::promise<void> chain_done;
    net::post(io, [&] {
        cs.async_get_summary({}, [&](callsavvy::error_code ec, api::get_summary_response s) {
            std::cout << "getSummary: " << (ec ? ec.message() : s.business_name.value_or("?")) << '\n';
            failures += ec ? 1 : 0;
            cs.async_create_ticket(
                {.subject = "Callback ticket", .message = "From a handler.", .sender_email = "cb@example.com"},
                [&](callsavvy::error_code ec, api::create_ticket_response t) {
                    std::cout << "createTicket: " << (ec ? ec.message() : t.ticket_id.value_or("?")) << '\n';
                    failures += ec ? 1 : 0;
                    cs.async_list_tickets({.per_page = 10},
                                          [&](callsavvy::error_code ec, api::list_tickets_response page) {
                                              std::cout << "listTickets: " << page.tickets.size() << " ticket(s)\n";
                                              failures += ec || page.tickets.size() != 1 ? 1 : 0;
                                              chain_done.set_value();
                                          });
                });
        });
    });
    chain_done.get_future().wait();

    // 2. From this plain thread: use_future hands back a std::future of the response; the call itself runs on
    // the client's executor (the runner thread). A failure is a callsavvy::system_error out of get().
    std::future<api::create_ticket_response> ticket = cs.async_create_ticket(
        {.subject = "Future ticket", .message = "From a plain thread.", .sender_email = "f@example.com"},
        net::use_future);
    std::future<api::create_ticket_response> invalid =
        cs.async_create_ticket({.message = "No subject.", .sender_email = "f@example.com"}, net::use_future);
    const api::create_ticket_response t = ticket.get(); // blocks this thread only
    std::cout << "use_future createTicket: " << t.ticket_id.value_or("?") << '\n';
    failures += t.ticket_id ? 0 : 1;
    try {
        invalid.get();
        ++failures; // a request without a subject must not succeed
    } catch (const callsavvy::system_error& e) {
        std::cout << "use_future without a subject: " << e.code().message()
                  << " (condition::validation: " << std::boolalpha << (e.code() == callsavvy::condition::validation)
                  << ")\n";
        failures += e.code() == callsavvy::condition::validation ? 0 : 1;
    }

    // close() and stop() on the io_context's thread, as the thread-safety rules say; then the runner returns.
    net::post(io, net::use_future([&] {
                  cs.close();
                  mock.stop();
              }))
        .get();
    guard.reset();
    runner.join();
    failures += mock.collection("tickets").size() == 2 ? 0 : 1;
    if (failures != 0) std::cerr << "callbacks: " << failures << " unexpected result(s)\n";
    return failures == 0 ? 0 : 1;
}
