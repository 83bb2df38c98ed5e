// HTTPS through a real HTTP CONNECT proxy (Debian's tinyproxy on loopback, allowing CONNECT only to the test
// server's port), with Basic proxy credentials.
#include <callsavvy/client.hpp>

#include "support/pki.hpp"
#include "support/run.hpp"
#include "support/script_server.hpp"
#include "support/tinyproxy.hpp"

#include "support/asio.hpp"
#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

asio::awaitable<void> answer_all(cstest::peer& p) {
    while (auto req = co_await p.read_request()) {
        json::object data;
        data["target"] = req->target;
        data["saw_proxy_authorization"] = req->headers.find("Proxy-Authorization").has_value();
        co_await p.respond(200, callsavvy::make_success_envelope("getSummary", data));
    }
}

callsavvy::client_options via(const cstest::script_server& s, std::string proxy_url) {
    callsavvy::client_options o;
    o.keys = {"TEST-pub", "TEST-priv"};
    o.base_url = s.base_url();
    o.tls.ca_file = cstest::test_pki().ca_file.string();
    o.proxy.url = std::move(proxy_url);
    o.attempt_timeout = 5s;
    o.retry.backoff_base = 1ms;
    o.rate_limits.enabled = false;
    return o;
}

constexpr auto as_tuple = asio::experimental::as_tuple(asio::use_awaitable);

} // namespace

TEST_CASE("HTTPS through tinyproxy with Basic proxy credentials", "[client][proxy]") {
    asio::io_context io;
    cstest::script_server server(io.get_executor(), answer_all, {.tls = true});
    cstest::tinyproxy_process proxy(server.port(), std::make_pair(std::string("proxyuser"), std::string("s3cret")));
    callsavvy::client c(io.get_executor(), via(server, proxy.url()));
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 3; ++i) {
            auto data = co_await c.async_call("getSummary", {});
            CHECK(data.at("target") == "/v1/getSummary");
            // The credentials are for the proxy only: they never travel inside the tunnel.
            CHECK(data.at("saw_proxy_authorization") == false);
        }
        CHECK(c.open_connections() == 1); // the tunnel is kept alive and reused
        c.close();
    });
    CHECK(server.connections() == 1);
}

TEST_CASE("proxy refusals are reported as proxy failures naming the status", "[client][proxy]") {
    asio::io_context io;
    cstest::script_server server(io.get_executor(), answer_all, {.tls = true});
    cstest::tinyproxy_process proxy(server.port(), std::make_pair(std::string("proxyuser"), std::string("s3cret")));
    const std::string base = "http://127.0.0.1:" + std::to_string(proxy.port());
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        callsavvy::diagnostics d;
        callsavvy::client no_credentials(io.get_executor(), via(server, base));
        auto [ec, data] = co_await no_credentials.async_call("getSummary", {}, d, as_tuple);
        CHECK(ec == callsavvy::error::proxy_failed);
        CHECK(ec == callsavvy::condition::transport);
        CHECK(d.detail.find("407") != std::string::npos);
        CHECK(d.detail.find("authentication required") != std::string::npos);

        callsavvy::client wrong(io.get_executor(),
                                via(server, "http://proxyuser:wrong@127.0.0.1:" + std::to_string(proxy.port())));
        auto [ec2, data2] = co_await wrong.async_call("getSummary", {}, d, as_tuple);
        CHECK(ec2 == callsavvy::error::proxy_failed);
        CHECK(d.detail.find("credentials rejected") != std::string::npos);
        CHECK(d.detail.find("wrong") == std::string::npos); // the password never appears

        // CONNECT to a port the proxy does not allow.
        auto o = via(server, proxy.url());
        o.base_url = "https://localhost:1/v1/";
        callsavvy::client elsewhere(io.get_executor(), o);
        auto [ec3, data3] = co_await elsewhere.async_call("getSummary", {}, d, as_tuple);
        CHECK(ec3 == callsavvy::error::proxy_failed);
        CHECK(d.detail.find("403") != std::string::npos);
        no_credentials.close();
        wrong.close();
        elsewhere.close();
    });
    CHECK(server.connections() == 0);
}
