// beast_server — the webhook receiver a user would write with Boost.Beast and Boost.Asio's C++20 coroutines
// instead of callsavvy's listener, as the listener benchmark's comparison: one thread, keep-alive, each POST
// read whole, its body parsed with boost::json::parse and its "event" field read as a real handler would,
// then answered with a bare 200 (400 for a body that is not a JSON object naming its event).
//   beast_server [port]      prints "listening <port>", then on SIGINT/SIGTERM "handled <n>"
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <utility>

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;

namespace {

std::uint64_t handled = 0;
std::uint64_t rejected = 0;

// Whether the body is an event notification a handler can dispatch: a JSON object with a string "event".
bool accept_event(const std::string& body) {
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(body, ec);
    if (ec || !v.is_object()) return false;
    const auto* event = v.as_object().if_contains("event");
    return event != nullptr && event->is_string() && !event->as_string().empty();
}

asio::awaitable<void> serve(tcp::socket s) {
    s.set_option(tcp::no_delay(true));
    boost::beast::flat_buffer buffer;
    try {
        for (;;) {
            http::request<http::string_body> req;
            co_await http::async_read(s, buffer, req, asio::use_awaitable);
            const bool ok = req.method() == http::verb::post && accept_event(req.body());
            ok ? ++handled : ++rejected;
            http::response<http::empty_body> res{ok ? http::status::ok : http::status::bad_request, req.version()};
            res.keep_alive(req.keep_alive());
            res.prepare_payload();
            co_await http::async_write(s, res, asio::use_awaitable);
            if (!req.keep_alive()) co_return;
        }
    } catch (const std::exception&) {
        // The peer closed or reset the connection: nothing more to answer on it.
    }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor) {
    for (;;) {
        tcp::socket s = co_await acceptor.async_accept(asio::use_awaitable);
        asio::co_spawn(acceptor.get_executor(), serve(std::move(s)), asio::detached);
    }
}

} // namespace

int main(int argc, char** argv) {
    asio::io_context io(1); // one thread: the figure is requests per second per core
    const auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 0);
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    std::cout << "listening " << acceptor.local_endpoint().port() << std::endl;
    asio::co_spawn(io, accept_loop(acceptor), [](const std::exception_ptr&) {});
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code, int) { io.stop(); });
    io.run();
    std::cout << "handled " << handled << " (rejected " << rejected << ")" << std::endl;
    return rejected == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
