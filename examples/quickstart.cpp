// quickstart — a short tour of callsavvy, fully offline: the in-process mock Callsavvy server and the client
// share one io_context, and one coroutine makes typed calls, reads the answers, walks a paginated list,
// handles a failure both ways (exception and error code) and looks at the rate limiter. It exits non-zero if
// anything differs from what the tour expects, so CI (also under ASan + UBSan) catches a regression.
#include <callsavvy/callsavvy.hpp>
#include <callsavvy/testing/mock_server.hpp>

#include <boost/json/serialize.hpp>
#include <callsavvy/asio.hpp>

#include <chrono>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

namespace api = callsavvy::api;
namespace net = callsavvy::asio;
using namespace std::chrono_literals;

namespace {

// The tour stops at the first surprise: the exception reaches co_spawn's handler and main returns 1.
void expect(bool ok, const std::string& what) {
    if (!ok) throw std::runtime_error("unexpected: " + what);
}

net::awaitable<void> tour(callsavvy::client& cs, callsavvy::testing::mock_server& mock) {
    // 2. A typed named call. The request gets a statement of its own: g++ 12 frees memory it does not own
    // when a designated-initializer temporary sits inside the co_await expression (see README).
    api::create_ticket_request request{
        .subject = "Printer on fire", .message = "Third floor, again.", .sender_email = "sam@example.com"};
    api::create_ticket_response created = co_await cs.async_create_ticket(std::move(request));

    // 3. Typed fields are optional (a server may leave any out); `raw` keeps the whole `data` object.
    expect(created.ticket_id.has_value() && created.status == "open", "createTicket answer");
    std::cout << "createTicket: ticket_id=" << *created.ticket_id << " status=" << *created.status
              << " raw=" << boost::json::serialize(created.raw) << '\n';

    // 4. Four more tickets, then a walk two per page: the pager asks for one page per next() and stops after
    // pagination.total_pages, so 5 tickets take 3 requests.
    for (int i = 2; i <= 5; ++i) {
        api::create_ticket_request more{.subject = "Ticket " + std::to_string(i),
                                        .message = "Created for the pagination walk.",
                                        .sender_email = "sam@example.com"};
        co_await cs.async_create_ticket(std::move(more));
    }
    api::list_tickets_request first{.per_page = 2, .status = "open"};
    auto pages = callsavvy::paginate(cs, api::list_tickets{}, std::move(first));
    int pages_seen = 0;
    std::size_t tickets_seen = 0;
    for (;;) { // not `while (co_await ...)`: see the README's g++ 12 notes
        auto page = co_await pages.next();
        if (!page) break;
        ++pages_seen;
        tickets_seen += page->tickets.size();
        std::cout << "listTickets page " << page->pagination.page.value_or(0) << '/'
                  << page->pagination.total_pages.value_or(0) << ':';
        for (const auto& t : page->tickets) std::cout << ' ' << t.ticket_id.value_or("?");
        std::cout << '\n';
    }
    expect(pages_seen == 3 && tickets_seen == 5 && pages.done(), "pagination walk");

    // 5a. A broken rule (no subject) is caught before anything is sent; the default token throws api_error,
    // whose code compares equal to the portable condition, whatever the precise error.
    const std::size_t sent_before = mock.journal().size();
    api::create_ticket_request invalid{.message = "No subject.", .sender_email = "sam@example.com"};
    bool thrown = false;
    try {
        co_await cs.async_create_ticket(invalid); // a copy: 5b uses the same request again
    } catch (const callsavvy::api_error& e) {
        thrown = e.code() == callsavvy::condition::validation;
        std::cout << "api_error: " << e.code().message() << " (condition::validation: " << std::boolalpha << thrown
                  << ", detail: " << e.diag().detail << ")\n";
    }
    expect(thrown, "api_error with condition::validation");

    // 5b. The same failure without exceptions: as_tuple completes with (error_code, response) and the
    // diagnostics object receives what api_error would have carried.
    callsavvy::diagnostics diag;
    auto [ec, response] =
        co_await cs.async_create_ticket(std::move(invalid), diag, net::experimental::as_tuple(net::use_awaitable));
    std::cout << "as_tuple: ec=" << ec.message()
              << " (condition::validation: " << (ec == callsavvy::condition::validation) << ", detail: " << diag.detail
              << ")\n";
    expect(ec == callsavvy::condition::validation && !response.ticket_id, "error code from as_tuple");
    expect(mock.journal().size() == sent_before, "an invalid request reached the server");

    // 6. The client's limiter (shared by every client of this key) waits before a request could exceed
    // Callsavvy's limits; here it counted the 8 requests sent, far from the 100 a minute allowed.
    const auto& limits = cs.limiter()->options();
    const auto global = cs.limiter()->global_stats();
    const auto per_list = cs.limiter()->stats("listTickets");
    std::cout << "rate limiter: " << global.in_window << '/' << limits.global.max_requests << " requests in the last "
              << limits.global.window.count() / 1000 << " s (listTickets: " << per_list.in_window << '/'
              << limits.per_endpoint.max_requests << "), " << global.queued << " waiting\n";
    expect(global.in_window == mock.journal().size() && global.queued == 0, "limiter counts");
}

} // namespace

int main() {
    // 1. The version this program was built against.
    std::cout << "callsavvy " << callsavvy::version_string << '\n';

    // The io_context first: the mock's and the client's sockets belong to it and must die before it.
    net::io_context io;
    callsavvy::testing::mock_server mock(io.get_executor()); // plain HTTP on an ephemeral loopback port
    callsavvy::client_options options;
    const auto key = callsavvy::testing::sandbox_key(); // the documented sandbox keys, which the mock accepts
    options.keys = {key.public_key, key.private_key};
    options.base_url = mock.base_url();     // http://127.0.0.1:PORT/v1/
    options.proxy.from_environment = false; // a proxy from the environment must not intercept loopback
    options.call_deadline = 5s;
    callsavvy::client cs(io.get_executor(), std::move(options));

    int status = 1;
    bool finished = false;
    net::co_spawn(io, tour(cs, mock), [&](std::exception_ptr e) {
        finished = true;
        try {
            if (e) std::rethrow_exception(e);
            status = 0;
        } catch (const std::exception& x) {
            std::cerr << "quickstart failed: " << x.what() << '\n';
        }
        cs.close(); // with the server stopped, nothing is left to run and io.run_for() returns
        mock.stop();
    });
    io.run_for(10s); // a hang is a failure too
    if (!finished) std::cerr << "quickstart failed: timed out\n";
    if (status == 0) std::cout << "tour complete\n";
    return status;
}
