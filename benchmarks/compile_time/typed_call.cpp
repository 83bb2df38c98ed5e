// Compile-time benchmark, library side: one typed call (TLS POST, JSON body, envelope check, typed decode).
#include <callsavvy/client.hpp>

#include <iostream>

int main() {
    asio::io_context io;
    callsavvy::client api(io.get_executor(), {.keys = {"public", "private"}});
    callsavvy::api::create_ticket_request req{.subject = "Hello", .message = "Body", .sender_email = "a@example.com"};
    api.async_create_ticket(std::move(req), [](callsavvy::error_code ec, callsavvy::api::create_ticket_response r) {
        std::cout << ec.message() << ' ' << r.ticket_id.value_or("") << '\n';
    });
    io.run();
}
