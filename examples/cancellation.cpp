// cancellation — stopping calls: a per-call timeout written `call || timer` with Asio's awaitable operators,
// and a cancellation_signal bound to one call. What the call completes with depends on where it was:
//   - still waiting (rate limiter, pool, connect, backoff): any cancellation type stops it, nothing was sent,
//     operation_aborted;
//   - its request on the wire: only terminal cancellation (what `||` emits) stops it; a read-only call then
//     completes with operation_aborted, a state-changing one with error::outcome_unknown (the server may have
//     acted on it: check before doing it again); a weaker one (total, partial) is kept and the call finishes.
// Offline against the in-process mock, which holds answers back on demand; exits non-zero if anything differs.
#include <callsavvy/callsavvy.hpp>
#include <callsavvy/testing/mock_server.hpp>

#include <callsavvy/asio.hpp>

#include <functional>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>

namespace api = callsavvy::api;
namespace net = callsavvy::asio;
using namespace std::chrono_literals;
using namespace net::experimental::awaitable_operators;
using callsavvy::testing::fault;
using net::experimental::as_tuple;

namespace {

void expect(bool ok, const std::string& what) {
    if (!ok) throw std::runtime_error("unexpected: " + what);
}

// Awaits a call made with as_tuple and keeps its error code, so that it is known even when the call loses a race.
template <class Call>
net::awaitable<void> keep_code(Call call, callsavvy::error_code& out) {
    auto [ec, response] = co_await std::move(call);
    out = ec;
}

net::awaitable<void> timeout(std::chrono::milliseconds d) {
    const net::any_io_executor ex = co_await net::this_coro::executor; // alone: g++ 12, see the README
    net::steady_timer t(ex, d);
    co_await t.async_wait(net::use_awaitable);
}

// Polls a condition: good enough for an example that waits for the mock to see a request.
net::awaitable<void> until(std::function<bool()> done) {
    const net::any_io_executor ex = co_await net::this_coro::executor;
    net::steady_timer t(ex);
    while (!done()) {
        t.expires_after(5ms);
        co_await t.async_wait(net::use_awaitable);
    }
}

net::awaitable<void> tour(callsavvy::client& cs, callsavvy::testing::mock_server& mock) {
    // 1. A per-call timeout: the mock holds getSummary's answer 2 s, the timer wins after 200 ms, `||` cancels
    // the call (terminal). getSummary is read-only: operation_aborted (a retry would be safe).
    mock.inject(fault{.what = fault::kind::delay, .resource = "getSummary", .delay = 2000ms});
    // The operands in statements of their own, as every request: see the README's g++ 12 notes.
    callsavvy::error_code summary_ec;
    api::get_summary_request no_params;
    auto summary_call = keep_code(cs.async_get_summary(no_params, as_tuple(net::use_awaitable)), summary_ec);
    auto summary_timer = timeout(200ms);
    const auto summary = co_await (std::move(summary_call) || std::move(summary_timer));
    std::cout << "getSummary || 200 ms timer: " << (summary.index() == 1 ? "timed out" : "answered")
              << ", the call: " << summary_ec.message() << '\n';
    expect(summary.index() == 1 && summary_ec == net::error::operation_aborted, "a timed-out read-only call");

    // 2. The same timeout on createTicket, which changes state: its whole request had left, so nobody knows
    // whether the ticket exists. Here it does: the mock created it before holding the answer back.
    mock.inject(fault{.what = fault::kind::delay, .resource = "createTicket", .delay = 2000ms});
    api::create_ticket_request ticket{.subject = "Late", .message = "Held back.", .sender_email = "a@example.com"};
    callsavvy::error_code ticket_ec;
    auto ticket_call = keep_code(cs.async_create_ticket(std::move(ticket), as_tuple(net::use_awaitable)), ticket_ec);
    auto ticket_timer = timeout(200ms);
    const auto created = co_await (std::move(ticket_call) || std::move(ticket_timer));
    std::cout << "createTicket || 200 ms timer: the call: " << ticket_ec.message()
              << " (condition::outcome_unknown: " << std::boolalpha
              << (ticket_ec == callsavvy::condition::outcome_unknown)
              << "); tickets stored: " << mock.collection("tickets").size() << '\n';
    expect(created.index() == 1 && ticket_ec == callsavvy::error::outcome_unknown, "a timed-out state-changing call");

    // 3. A cancellation_signal of the caller's, bound to a call whose handler records its code (so that this
    // coroutine goes on and emits). Waiting in the rate limiter (one listDepartments a minute here), the call
    // stops at any cancellation type, and nothing is sent.
    net::cancellation_signal signal;
    std::optional<callsavvy::error_code> second, lead_ec;
    api::list_departments_request page;
    co_await cs.async_list_departments(page); // takes the minute's one slot
    cs.async_list_departments(
        page, net::bind_cancellation_slot(signal.slot(), [&](callsavvy::error_code ec, auto) { second = ec; }));
    co_await until([&] { return cs.limiter()->stats("listDepartments").queued == 1; });
    signal.emit(net::cancellation_type::total);
    co_await until([&] { return second.has_value(); });
    std::cout << "listDepartments waiting for the rate limit, cancelled (total): " << second->message()
              << " (requests sent: " << mock.count("listDepartments") << ")\n";
    expect(*second == net::error::operation_aborted && mock.count("listDepartments") == 1, "cancelled in the limiter");

    // 4. The same while a createLead request is on the wire: `total` is not terminal, so it is only kept (the
    // call will not be sent again) and the answer still arrives.
    mock.inject(fault{.what = fault::kind::delay, .resource = "createLead", .delay = 300ms});
    api::create_lead_request lead;
    lead.name = "Ada";
    lead.phone = "+2348012345678";
    cs.async_create_lead(
        lead, net::bind_cancellation_slot(signal.slot(), [&](callsavvy::error_code ec, auto) { lead_ec = ec; }));
    co_await until([&] { return mock.count("createLead") == 1; });
    signal.emit(net::cancellation_type::total);
    co_await until([&] { return lead_ec.has_value(); });
    std::cout << "createLead on the wire, cancelled (total): " << (*lead_ec ? lead_ec->message() : "answered") << '\n';
    expect(!*lead_ec && mock.collection("leads").size() == 1, "a weaker cancellation on the wire");
}

} // namespace

int main() {
    net::io_context io;
    callsavvy::testing::mock_server mock(io.get_executor());
    callsavvy::client_options options;
    const auto key = callsavvy::testing::sandbox_key();
    options.keys = {key.public_key, key.private_key};
    options.base_url = mock.base_url();
    options.proxy.from_environment = false;
    options.rate_limits.per_endpoint = {1, 60s}; // so that a second call to one endpoint waits
    callsavvy::client cs(io.get_executor(), std::move(options));

    int status = 1;
    net::co_spawn(io, tour(cs, mock), [&](std::exception_ptr e) {
        try {
            if (e) std::rethrow_exception(e);
            status = 0;
        } catch (const std::exception& x) {
            std::cerr << "cancellation failed: " << x.what() << '\n';
        }
        cs.close();
        mock.stop();
    });
    io.run_for(20s);
    return status;
}
