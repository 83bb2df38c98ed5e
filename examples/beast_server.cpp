// beast_server — callsavvy in a Boost.Beast application, on one boost::asio::io_context. The application's
// own Beast HTTP server answers POST /tickets by making a typed Callsavvy call from inside its request
// handler, and GET /calls with the calls that Callsavvy's webhooks reported to callsavvy's listener on the
// same io_context. Offline: the in-process mock plays the Callsavvy API and the testing kit's sender plays its
// webhooks; a Beast client plays the application's user. Built in the Boost.Asio build only
// (CALLSAVVY_USE_BOOST_ASIO); exits non-zero if anything differs from what it expects.
#include <callsavvy/callsavvy.hpp>
#include <callsavvy/testing/mock_server.hpp>
#include <callsavvy/testing/webhook_sender.hpp>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <exception>
#include <iostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace asio = boost::asio; // in this build callsavvy::asio is boost::asio
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace api = callsavvy::api;
namespace wh = callsavvy::webhook;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

static_assert(std::is_same_v<callsavvy::asio::io_context, asio::io_context>, "callsavvy runs on Boost.Asio here");
static_assert(std::is_same_v<callsavvy::error_code, boost::system::error_code>);

namespace {

constexpr auto nothrow = asio::experimental::as_tuple(asio::use_awaitable);

// What the webhooks told the application; touched only from the io_context's one thread.
struct app_state {
    std::vector<std::string> callers;
};

// Beast's side of one request. A call failure becomes a 502 naming callsavvy's error, not an exception.
asio::awaitable<http::response<http::string_body>> handle(const http::request<http::string_body>& req,
                                                          callsavvy::client& cs, const app_state& state) {
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    if (req.method() == http::verb::post && req.target() == "/tickets") {
        api::create_ticket_request ticket{
            .subject = req.body(), .message = "Raised through the Beast front end.", .sender_email = "ops@example.com"};
        // A boost::system::error_code, comparable with callsavvy's enumerators and conditions.
        auto [ec, created] = co_await cs.async_create_ticket(std::move(ticket), nothrow);
        if (ec) {
            res.result(http::status::bad_gateway);
            res.body() = json::serialize(json::object{{"error", ec.message()}});
        } else {
            res.body() = json::serialize(json::object{{"ticket_id", created.ticket_id.value_or("")}});
        }
    } else if (req.method() == http::verb::get && req.target() == "/calls") {
        json::array callers;
        for (const auto& c : state.callers) callers.emplace_back(c);
        res.body() = json::serialize(callers);
    } else {
        res.result(http::status::not_found);
        res.body() = R"({"error":"no such route"})";
    }
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    co_return res;
}

// One Beast connection: requests until the peer closes.
asio::awaitable<void> session(beast::tcp_stream stream, callsavvy::client& cs, const app_state& state) {
    beast::flat_buffer buffer;
    for (;;) {
        http::request<http::string_body> req;
        stream.expires_after(10s);
        auto [rec, read] = co_await http::async_read(stream, buffer, req, nothrow);
        if (rec) break; // end_of_stream: the peer is done
        const http::response<http::string_body> res = co_await handle(req, cs, state);
        auto [wec, written] = co_await http::async_write(stream, res, nothrow);
        if (wec || !res.keep_alive()) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, callsavvy::client& cs, const app_state& state) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(nothrow);
        if (ec) co_return; // closed at shutdown
        asio::co_spawn(acceptor.get_executor(), session(beast::tcp_stream(std::move(socket)), cs, state),
                       asio::detached);
    }
}

// The application's user: one Beast client request to the application's own server.
asio::awaitable<http::response<http::string_body>> ask(tcp::endpoint to, http::verb verb, std::string target,
                                                       std::string body) {
    beast::tcp_stream stream(co_await asio::this_coro::executor);
    stream.expires_after(10s);
    co_await stream.async_connect(to, asio::use_awaitable);
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.body() = std::move(body);
    req.prepare_payload();
    co_await http::async_write(stream, req, asio::use_awaitable);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    co_await http::async_read(stream, buffer, res, asio::use_awaitable);
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    co_return res;
}

void expect(bool ok, const std::string& what) {
    if (!ok) throw std::runtime_error("unexpected: " + what);
}

} // namespace

int main() {
    asio::io_context io; // the one io_context: Beast, the client, the listener (and the offline stand-ins)

    callsavvy::testing::mock_server mock(io.get_executor());
    callsavvy::client_options options;
    const auto key = callsavvy::testing::sandbox_key();
    options.keys = {key.public_key, key.private_key};
    options.base_url = mock.base_url();
    options.proxy.from_environment = false;
    callsavvy::client cs(io.get_executor(), std::move(options));

    app_state state;
    wh::listener_options lo;
    lo.server.port = 0;
    lo.path = "/callsavvy/QmVhc3QgZnJvbnQgZW5k";
    wh::listener hooks(io.get_executor(), lo);
    hooks.on<wh::call_summary>([&state](wh::call_summary e) -> asio::awaitable<void> {
        state.callers.push_back(e.caller_number.value_or("?"));
        co_return;
    });
    hooks.start();

    tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    const tcp::endpoint front = acceptor.local_endpoint();
    asio::co_spawn(io, accept_loop(acceptor, cs, state), asio::detached);

    callsavvy::testing::webhook_sender sender(io.get_executor(),
                                              "http://127.0.0.1:" + std::to_string(hooks.port()) + lo.path);
    int status = 1;
    auto scenario = [&]() -> asio::awaitable<void> {
        // 1. A typed call, made by Beast's request handler.
        const auto created = co_await ask(front, http::verb::post, "/tickets", "Printer on fire");
        std::cout << "POST /tickets: " << created.result_int() << " " << created.body() << '\n';
        expect(created.result() == http::status::ok, "POST /tickets status");
        const json::object answer = json::parse(created.body()).as_object();
        expect(!answer.at("ticket_id").as_string().empty(), "a ticket id from createTicket");

        // 2. A webhook, received by callsavvy's listener next to the Beast server.
        wh::call_summary call;
        call.caller_number = "+2348012345678";
        call.call_duration = 185;
        const auto acked = co_await sender.deliver(call);
        expect(acked.status == 200, "the webhook acknowledged");

        // 3. What the listener recorded, read back through Beast.
        const auto calls = co_await ask(front, http::verb::get, "/calls", "");
        std::cout << "GET /calls: " << calls.result_int() << " " << calls.body() << '\n';
        expect(calls.result() == http::status::ok && calls.body() == R"(["+2348012345678"])", "GET /calls");
        status = 0;
    };
    asio::co_spawn(io, scenario(), [&](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                std::cerr << "beast_server: " << x.what() << '\n';
            }
            status = 1;
        }
        // Also after a failure, so that io.run_for() returns: everything on the io_context stops.
        boost::system::error_code ignored;
        acceptor.close(ignored);
        hooks.stop();
        cs.close();
        mock.stop();
    });
    io.run_for(30s);
    return status;
}
