// Separate compilation: this file is built with CALLSAVVY_SEPARATE_COMPILATION, so it sees only the
// declarations of the client's core, whose definitions come from src.cpp alone. That the program links at
// all proves the split is complete (no definition missing) and single (the core's functions are not inline
// in this mode, so a second copy here would be a duplicate symbol); the calls prove it works.
#include <callsavvy/callsavvy.hpp>
#include <callsavvy/testing/mock_server.hpp>

#include "support/mock_client.hpp"
#include "support/run.hpp"

#include "support/asio.hpp"
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <string>
#include <utility>

#if !defined(CALLSAVVY_SEPARATE_COMPILATION)
#error "tests/separate is the separate-compilation build: CMake defines CALLSAVVY_SEPARATE_COMPILATION for it"
#endif

namespace api = callsavvy::api;
namespace mock = callsavvy::testing;

TEST_CASE("separate compilation: typed and raw calls against the mock", "[separate]") {
    asio::io_context io;
    mock::mock_server server{io.get_executor(), {}};
    callsavvy::client c{io.get_executor(), cstest::mock_client_options(server)};

    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        // Requests are built in statements of their own: g++ 12 mishandles braced temporaries in co_await.
        api::create_ticket_request ticket{
            .subject = "Printer jam", .message = "Tray 2", .sender_email = "ana@example.com"};
        const auto created = co_await c.async_create_ticket(std::move(ticket));
        REQUIRE(created.ticket_id.has_value());

        const api::list_tickets_request all{};
        const auto listed = co_await c.async_list_tickets(all);
        REQUIRE(listed.tickets.size() == 1);
        CHECK(listed.tickets.front().ticket_id == created.ticket_id);
        CHECK(listed.tickets.front().subject == std::optional<std::string>("Printer jam"));

        // An error still arrives with its code through the compiled core.
        api::create_ticket_request invalid{.subject = "", .message = "m", .sender_email = "x@example.com"};
        auto [ec, r] =
            co_await c.async_create_ticket(std::move(invalid), asio::experimental::as_tuple(asio::use_awaitable));
        CHECK(ec == callsavvy::condition::validation);

        const boost::json::object no_params;
        const auto raw = co_await c.async_call("getSummary", no_params);
        CHECK(raw.contains("business_name"));
    });
    c.close();
    CHECK(server.journal().size() == 3); // the invalid request never left the client
}
