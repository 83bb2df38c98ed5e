// beast_client_bench — the client a user would write with Boost.Beast and Boost.Asio's C++20 coroutines
// instead of callsavvy: one thread, --connections coroutines, each with its own keep-alive connection,
// POSTing getSummary and reading the answer into a fresh response in a loop. TLS is verified against --ca,
// with the server's name or IP address checked. See compare_common.hpp for the arguments and output.
#include "compare_common.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <openssl/x509v3.h>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;

namespace {

struct totals {
    std::uint64_t counted = 0;
    std::uint64_t errors = 0;
};

http::request<http::string_body> make_request(const bench::options& o) {
    http::request<http::string_body> req{http::verb::post, o.target, 11};
    req.set(http::field::host, o.host + ":" + o.port);
    for (const auto& [name, value] : bench::request_headers()) req.set(name, value);
    req.body() = std::string(bench::request_body);
    req.keep_alive(true);
    req.prepare_payload();
    return req;
}

template <class Stream>
asio::awaitable<void> exchange_loop(Stream& stream, const bench::options& o, const bench::window& w, totals& t) {
    const auto req = make_request(o);
    boost::beast::flat_buffer buffer;
    for (;;) {
        co_await http::async_write(stream, req, asio::use_awaitable);
        http::response<http::string_body> res;
        co_await http::async_read(stream, buffer, res, asio::use_awaitable);
        const auto now = bench::clock::now();
        if (res.result_int() != 200 || res.body().size() != bench::expected_body_length) {
            if (t.errors++ == 0)
                std::cerr << "beast_client_bench: status " << res.result_int() << ", " << res.body().size()
                          << " body bytes\n";
        } else if (w.counts(now)) {
            ++t.counted;
        }
        if (w.over(now) || !res.keep_alive()) co_return;
    }
}

asio::awaitable<void> session(const bench::options& o, const tcp::resolver::results_type& where,
                              asio::ssl::context* tls, const bench::window& w, totals& t) {
    auto ex = co_await asio::this_coro::executor;
    try {
        if (tls == nullptr) {
            tcp::socket s(ex);
            co_await asio::async_connect(s, where, asio::use_awaitable);
            s.set_option(tcp::no_delay(true));
            co_await exchange_loop(s, o, w, t);
        } else {
            asio::ssl::stream<tcp::socket> s(ex, *tls);
            co_await asio::async_connect(s.next_layer(), where, asio::use_awaitable);
            s.next_layer().set_option(tcp::no_delay(true));
            // The name to check: an IP address is matched against the certificate's IP entries, a host name
            // against its DNS entries (and sent as SNI).
            X509_VERIFY_PARAM* param = SSL_get0_param(s.native_handle());
            boost::system::error_code ec;
            asio::ip::make_address(o.host, ec);
            if (!ec) {
                X509_VERIFY_PARAM_set1_ip_asc(param, o.host.c_str());
            } else {
                X509_VERIFY_PARAM_set1_host(param, o.host.c_str(), 0);
                SSL_set_tlsext_host_name(s.native_handle(), o.host.c_str());
            }
            co_await s.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
            co_await exchange_loop(s, o, w, t);
        }
    } catch (const std::exception& e) {
        if (t.errors++ == 0) std::cerr << "beast_client_bench: " << e.what() << "\n";
    }
}

} // namespace

int main(int argc, char** argv) {
    const bench::options o = bench::parse_options(argc, argv);
    asio::io_context io(1);
    tcp::resolver resolver(io);
    const auto where = resolver.resolve(o.host, o.port);
    asio::ssl::context tls(asio::ssl::context::tls_client);
    if (o.ca.empty()) tls.set_default_verify_paths();
    else
        tls.load_verify_file(o.ca);
    tls.set_verify_mode(asio::ssl::verify_peer);
    const bench::window w(o);
    totals t;
    for (int i = 0; i < o.connections; ++i)
        asio::co_spawn(io, session(o, where, o.tls ? &tls : nullptr, w, t), asio::detached);
    io.run();
    bench::report(t.counted, t.errors, o);
    return t.errors == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
