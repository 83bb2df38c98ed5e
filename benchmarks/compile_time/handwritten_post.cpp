// Compile-time benchmark, baseline: the same TLS POST written by hand with Asio, asio::ssl and Boost.JSON
// (resolve, connect, verified handshake, one write, read until the body is complete, parse the envelope).
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ssl.hpp>
#include <boost/json.hpp>

#include <iostream>
#include <string>

asio::awaitable<void> post(asio::ssl::context& ctx) {
    auto ex = co_await asio::this_coro::executor;
    asio::ip::tcp::resolver resolver(ex);
    auto endpoints = co_await resolver.async_resolve("api.callsavvy.com", "443", asio::use_awaitable);
    asio::ssl::stream<asio::ip::tcp::socket> stream(ex, ctx);
    SSL_set_tlsext_host_name(stream.native_handle(), "api.callsavvy.com");
    stream.set_verify_callback(asio::ssl::host_name_verification("api.callsavvy.com"));
    co_await asio::async_connect(stream.next_layer(), endpoints, asio::use_awaitable);
    co_await stream.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
    boost::json::object body{{"subject", "Hello"}, {"message", "Body"}, {"sender_email", "a@example.com"}};
    const std::string payload = boost::json::serialize(body);
    std::string request =
        "POST /v1/createTicket HTTP/1.1\r\nHost: api.callsavvy.com\r\nContent-Type: application/json\r\n"
        "Public-Key: public\r\nPrivate-Key: private\r\nContent-Length: " +
        std::to_string(payload.size()) + "\r\n\r\n" + payload;
    co_await asio::async_write(stream, asio::buffer(request), asio::use_awaitable);
    std::string response;
    auto [ec, n] = co_await asio::async_read_until(stream, asio::dynamic_buffer(response), "\r\n\r\n",
                                                   asio::experimental::as_tuple(asio::use_awaitable));
    const auto head_end = response.find("\r\n\r\n") + 4;
    const auto cl = response.find("Content-Length: ");
    const std::size_t length = cl == std::string::npos ? 0 : std::stoul(response.substr(cl + 16));
    while (response.size() < head_end + length) {
        char buf[4096];
        auto [rec, got] =
            co_await stream.async_read_some(asio::buffer(buf), asio::experimental::as_tuple(asio::use_awaitable));
        if (rec) break;
        response.append(buf, got);
    }
    boost::json::value v = boost::json::parse(response.substr(head_end));
    std::cout << v.at("data").at("ticket_id").as_string() << '\n';
}

int main() {
    asio::io_context io;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_default_verify_paths();
    ctx.set_verify_mode(asio::ssl::verify_peer);
    asio::co_spawn(io, post(ctx), asio::detached);
    io.run();
}
