// The test helpers under tests/support/ checked on their own, so a failing client test can trust that its
// PKI, its scripted server and its proxy behave as documented.
#include <callsavvy/config.hpp>

#include "support/pki.hpp"
#include "support/run.hpp"
#include "support/script_server.hpp"
#include "support/tinyproxy.hpp"

#include <callsavvy/http/parser.hpp>

#include "support/asio.hpp"
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>

namespace {

namespace asio = callsavvy::asio;
namespace http = callsavvy::http;
using asio::ip::tcp;

struct x509_free {
    void operator()(X509* p) const noexcept { X509_free(p); }
    void operator()(X509_STORE* p) const noexcept { X509_STORE_free(p); }
    void operator()(X509_STORE_CTX* p) const noexcept { X509_STORE_CTX_free(p); }
    void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
    void operator()(BIO* p) const noexcept { BIO_free(p); }
};

std::unique_ptr<X509, x509_free> parse_cert(const std::string& pem) {
    std::unique_ptr<BIO, x509_free> bio{BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))};
    return std::unique_ptr<X509, x509_free>{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)};
}

std::unique_ptr<EVP_PKEY, x509_free> parse_key(const std::string& pem) {
    std::unique_ptr<BIO, x509_free> bio{BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))};
    return std::unique_ptr<EVP_PKEY, x509_free>{PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)};
}

// X509_V_OK or the verification error of `leaf_pem` against a store set up by `setup`.
template <class Setup>
int verify_chain(const std::string& leaf_pem, Setup setup) {
    auto leaf = parse_cert(leaf_pem);
    REQUIRE(leaf);
    std::unique_ptr<X509_STORE, x509_free> store{X509_STORE_new()};
    setup(store.get());
    std::unique_ptr<X509_STORE_CTX, x509_free> ctx{X509_STORE_CTX_new()};
    REQUIRE(X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), nullptr) == 1);
    const int ok = X509_verify_cert(ctx.get());
    const int err = X509_STORE_CTX_get_error(ctx.get());
    return ok == 1 ? X509_V_OK : (err == X509_V_OK ? -1 : err);
}

int verify_against_ca(const std::string& leaf_pem) {
    return verify_chain(leaf_pem, [](X509_STORE* store) {
        auto ca = parse_cert(cstest::test_pki().ca_pem);
        REQUIRE(X509_STORE_add_cert(store, ca.get()) == 1);
    });
}

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string base64(std::string_view s) {
    std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

// Reads one response with callsavvy's parser; `leftover` carries bytes across calls on one connection.
template <class Stream>
asio::awaitable<http::response> read_response(Stream& s, std::string& leftover) {
    http::response_parser parser;
    char buf[4096];
    for (;;) {
        if (!leftover.empty()) {
            callsavvy::error_code ec;
            const std::size_t used = parser.feed(leftover, ec);
            REQUIRE_FALSE(ec);
            leftover.erase(0, used);
            if (parser.done()) co_return parser.release();
        }
        const std::size_t n = co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
        leftover.append(buf, n);
    }
}

// Reads until the end of a response head or EOF, and returns the status code of the first line (proxy
// answers: tinyproxy's error pages end with the connection, not with a Content-Length).
asio::awaitable<int> read_status(tcp::socket& s, std::string& head) {
    char buf[4096];
    for (;;) {
        callsavvy::error_code ec;
        const std::size_t n =
            co_await s.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        head.append(buf, n);
        if (ec || head.find("\r\n\r\n") != std::string::npos) break;
    }
    // "HTTP/1.x NNN reason"
    if (head.size() < 12 || head.compare(0, 5, "HTTP/") != 0) co_return 0;
    co_return std::stoi(head.substr(9, 3));
}

asio::awaitable<void> expect_eof(tcp::socket& s) {
    char buf[256];
    callsavvy::error_code ec;
    const std::size_t n = co_await s.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    CHECK(n == 0);
    CHECK(ec == asio::error::eof);
}

std::shared_ptr<asio::ssl::context> client_tls_context(bool trust_test_ca,
                                                       const cstest::key_pair* client_cert = nullptr) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->set_verify_mode(asio::ssl::verify_peer);
    if (trust_test_ca) ctx->load_verify_file(cstest::test_pki().ca_file.string());
    if (client_cert) {
        ctx->use_certificate_chain(asio::buffer(client_cert->cert_pem));
        ctx->use_private_key(asio::buffer(client_cert->key_pem), asio::ssl::context::pem);
    }
    return ctx;
}

using tls_stream = asio::ssl::stream<tcp::socket>;

asio::awaitable<void> tls_connect(tls_stream& s, std::uint16_t port, callsavvy::error_code& ec) {
    co_await s.next_layer().async_connect({asio::ip::make_address("127.0.0.1"), port}, asio::use_awaitable);
    // OpenSSL's own host check (not asio's callback), so a mismatch shows as X509_V_ERR_HOSTNAME_MISMATCH.
    SSL_set_tlsext_host_name(s.native_handle(), "localhost");
    SSL_set1_host(s.native_handle(), "localhost");
    co_await s.async_handshake(asio::ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
}

// The usual script: answer every request with its target until the client goes away.
asio::awaitable<void> echo_target(cstest::peer& p) {
    while (auto request = co_await p.read_request())
        co_await p.respond(200, "{\"target\":\"" + request->target + "\"}");
}

} // namespace

// Never co_await inside a Catch2 assertion macro: with g++ 12 the expression throws from inside Catch's
// handler (see the report with this file); await into a local first, then check it.

TEST_CASE("test PKI: the localhost, client and wrong_host leaves chain to the test CA", "[support]") {
    const auto& pki = cstest::test_pki();
    CHECK(verify_against_ca(pki.localhost.cert_pem) == X509_V_OK);
    CHECK(verify_against_ca(pki.wrong_host.cert_pem) == X509_V_OK);
    CHECK(verify_against_ca(pki.client.cert_pem) == X509_V_OK);
}

TEST_CASE("test PKI: self_signed and expired do not verify, for the reason their names give", "[support]") {
    const auto& pki = cstest::test_pki();
    CHECK(verify_against_ca(pki.self_signed.cert_pem) == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
    CHECK(verify_against_ca(pki.expired.cert_pem) == X509_V_ERR_CERT_HAS_EXPIRED);
}

TEST_CASE("test PKI: subject alternative names", "[support]") {
    const auto& pki = cstest::test_pki();
    auto localhost = parse_cert(pki.localhost.cert_pem);
    CHECK(X509_check_host(localhost.get(), "localhost", 0, 0, nullptr) == 1);
    CHECK(X509_check_ip_asc(localhost.get(), "127.0.0.1", 0) == 1);
    CHECK(X509_check_ip_asc(localhost.get(), "::1", 0) == 1);
    CHECK(X509_check_host(localhost.get(), "example.com", 0, 0, nullptr) == 0);

    auto wrong = parse_cert(pki.wrong_host.cert_pem);
    CHECK(X509_check_host(wrong.get(), "localhost", 0, 0, nullptr) == 0);
    CHECK(X509_check_ip_asc(wrong.get(), "127.0.0.1", 0) == 0);
    CHECK(X509_check_host(wrong.get(), "wrong.invalid", 0, 0, nullptr) == 1);

    for (const auto* kp : {&pki.self_signed, &pki.expired}) {
        auto cert = parse_cert(kp->cert_pem);
        CHECK(X509_check_host(cert.get(), "localhost", 0, 0, nullptr) == 1);
    }
}

TEST_CASE("test PKI: every key belongs to its certificate and the files hold the PEM strings", "[support]") {
    const auto& pki = cstest::test_pki();
    CHECK(read_file(pki.ca_file) == pki.ca_pem);
    for (const auto* kp : {&pki.localhost, &pki.wrong_host, &pki.self_signed, &pki.expired, &pki.client}) {
        auto cert = parse_cert(kp->cert_pem);
        auto key = parse_key(kp->key_pem);
        REQUIRE(cert);
        REQUIRE(key);
        CHECK(X509_check_private_key(cert.get(), key.get()) == 1);
        CHECK(read_file(kp->cert_file) == kp->cert_pem);
        CHECK(read_file(kp->key_file) == kp->key_pem);
    }
    auto client = parse_cert(pki.client.cert_pem);
    char cn[64] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(client.get()), NID_commonName, cn, sizeof cn);
    CHECK(std::string(cn) == "callsavvy-test-client");
    CHECK(X509_check_purpose(client.get(), X509_PURPOSE_SSL_CLIENT, 0) == 1);
}

TEST_CASE("test PKI: ca_dir works as an OpenSSL hashed CA directory", "[support]") {
    const auto& pki = cstest::test_pki();
    const int result = verify_chain(pki.localhost.cert_pem, [&](X509_STORE* store) {
        REQUIRE(X509_STORE_load_path(store, pki.ca_dir.c_str()) == 1);
    });
    CHECK(result == X509_V_OK);
}

TEST_CASE("test PKI: one instance per process, also under concurrent use", "[support]") {
    const cstest::pki* a = nullptr;
    const cstest::pki* b = nullptr;
    std::thread t([&] { a = &cstest::test_pki(); });
    b = &cstest::test_pki();
    t.join();
    CHECK(a == b);
}

TEST_CASE("script_server: plain HTTP, pipelined requests, then the client's close ends the script", "[support]") {
    asio::io_context io;
    cstest::script_server server(io.get_executor(), echo_target);
    CHECK(server.base_url() == "http://127.0.0.1:" + std::to_string(server.port()) + "/v1/");

    tcp::socket socket(io);
    auto client = [&]() -> asio::awaitable<void> {
        co_await socket.async_connect({asio::ip::make_address("127.0.0.1"), server.port()}, asio::use_awaitable);
        // Two requests in one write: the second must survive as the peer's leftover bytes.
        co_await asio::async_write(
            socket,
            asio::buffer(std::string_view("GET /v1/a HTTP/1.1\r\nHost: t\r\n\r\n"
                                          "POST /v1/b HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}")),
            asio::use_awaitable);
        std::string leftover;
        const http::response first = co_await read_response(socket, leftover);
        const http::response second = co_await read_response(socket, leftover);
        CHECK(first.status == 200);
        CHECK(first.body == R"({"target":"/v1/a"})");
        CHECK(first.headers.find("Content-Type") == std::optional<std::string_view>("application/json"));
        CHECK(first.keep_alive());
        CHECK(second.body == R"({"target":"/v1/b"})");
        CHECK(leftover.empty());
        socket.shutdown(tcp::socket::shutdown_send);
        co_await expect_eof(socket); // the script saw EOF, returned, and the server closed its side
    };
    cstest::run(io, client());
    cstest::run_until(io, [&] { return server.open_connections() == 0; });
    CHECK(server.connections() == 1);
    CHECK(server.requests() == 2);
    CHECK(server.script_error().empty());
}

TEST_CASE("script_server: raw writes, read_some and an abrupt close", "[support]") {
    asio::io_context io;
    std::string seen;
    cstest::script_server server(io.get_executor(), [&](cstest::peer& p) -> asio::awaitable<void> {
        seen = co_await p.read_some();
        co_await p.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"); // promises more than it sends
        p.close();
    });
    tcp::socket socket(io);
    auto client = [&]() -> asio::awaitable<void> {
        co_await socket.async_connect({asio::ip::make_address("127.0.0.1"), server.port()}, asio::use_awaitable);
        co_await asio::async_write(socket, asio::buffer(std::string_view("ping")), asio::use_awaitable);
        std::string received;
        char buf[256];
        for (;;) {
            callsavvy::error_code ec;
            const std::size_t n =
                co_await socket.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
            received.append(buf, n);
            if (ec) break;
        }
        CHECK(received == "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf");
    };
    cstest::run(io, client());
    CHECK(seen == "ping");
    CHECK(server.requests() == 0);
}

TEST_CASE("script_server: stop() wakes stalled scripts and closes their connections", "[support]") {
    asio::io_context io;
    bool stalling = false;
    bool stall_returned = false;
    cstest::script_server server(io.get_executor(), [&](cstest::peer& p) -> asio::awaitable<void> {
        const auto request = co_await p.read_request();
        REQUIRE(request);
        stalling = true;
        co_await p.stall();
        stall_returned = true;
    });
    tcp::socket socket(io);
    auto send = [&]() -> asio::awaitable<void> {
        co_await socket.async_connect({asio::ip::make_address("127.0.0.1"), server.port()}, asio::use_awaitable);
        co_await asio::async_write(socket, asio::buffer(std::string_view("GET /v1/x HTTP/1.1\r\nHost: t\r\n\r\n")),
                                   asio::use_awaitable);
    };
    cstest::run(io, send());
    cstest::run_until(io, [&] { return stalling; });
    CHECK(server.open_connections() == 1);
    server.stop();
    server.stop(); // idempotent
    cstest::run(io, expect_eof(socket));
    cstest::run_until(io, [&] { return stall_returned; });
    CHECK(server.open_connections() == 0);
    CHECK(server.script_error().empty());
}

TEST_CASE("script_server: a server destroyed after run() returned leaves nothing dangling", "[support]") {
    asio::io_context io;
    tcp::socket socket(io);
    {
        cstest::script_server server(io.get_executor(),
                                     [](cstest::peer& p) -> asio::awaitable<void> { co_await p.stall(); });
        auto connect = [&]() -> asio::awaitable<void> {
            co_await socket.async_connect({asio::ip::make_address("127.0.0.1"), server.port()}, asio::use_awaitable);
        };
        cstest::run(io, connect());
        cstest::run_until(io, [&] { return server.connections() == 1; });
    } // ~script_server with the accept loop and a stalled script still suspended
    cstest::run(io, expect_eof(socket));
}

TEST_CASE("script_server: IPv6 loopback", "[support]") {
    asio::io_context io;
    cstest::server_options options;
    options.address = "::1";
    cstest::script_server server(io.get_executor(), echo_target, options);
    CHECK(server.base_url() == "http://[::1]:" + std::to_string(server.port()) + "/v1/");
    tcp::socket socket(io);
    auto client = [&]() -> asio::awaitable<void> {
        co_await socket.async_connect({asio::ip::make_address("::1"), server.port()}, asio::use_awaitable);
        co_await asio::async_write(socket, asio::buffer(std::string_view("GET /v1/six HTTP/1.1\r\nHost: t\r\n\r\n")),
                                   asio::use_awaitable);
        std::string leftover;
        const http::response r = co_await read_response(socket, leftover);
        CHECK(r.body == R"({"target":"/v1/six"})");
    };
    cstest::run(io, client());
}

TEST_CASE("script_server: TLS with a client that verifies against ca_file, and close_notify detection", "[support]") {
    asio::io_context io;
    cstest::server_options options;
    options.tls = true;
    std::vector<bool> close_notify;
    cstest::script_server server(
        io.get_executor(),
        [&](cstest::peer& p) -> asio::awaitable<void> {
            co_await echo_target(p);
            close_notify.push_back(p.tls_close_notify_received());
        },
        options);
    CHECK(server.base_url() == "https://localhost:" + std::to_string(server.port()) + "/v1/");

    auto ctx = client_tls_context(true);
    auto client = [&](bool send_close_notify) -> asio::awaitable<void> {
        tls_stream s(io, *ctx);
        callsavvy::error_code ec;
        co_await tls_connect(s, server.port(), ec);
        REQUIRE_FALSE(ec);
        co_await asio::async_write(s, asio::buffer(std::string_view("GET /v1/tls HTTP/1.1\r\nHost: localhost\r\n\r\n")),
                                   asio::use_awaitable);
        std::string leftover;
        const http::response r = co_await read_response(s, leftover);
        CHECK(r.body == R"({"target":"/v1/tls"})");
        if (send_close_notify) {
            // Completes when the server closes its side (it sends no close_notify back); the result is
            // not what this test is about.
            co_await s.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
        } else {
            s.next_layer().close();
        }
    };
    cstest::run(io, client(true));
    cstest::run_until(io, [&] { return close_notify.size() == 1; });
    cstest::run(io, client(false));
    cstest::run_until(io, [&] { return close_notify.size() == 2; });
    CHECK(close_notify == std::vector<bool>{true, false});
    CHECK(server.requests() == 2);
    CHECK(server.script_error().empty());
}

TEST_CASE("script_server: a client that rejects the certificate ends only its own connection", "[support]") {
    asio::io_context io;
    cstest::server_options options;
    options.tls = true;
    options.cert = &cstest::test_pki().wrong_host;
    cstest::script_server server(io.get_executor(), echo_target, options);

    auto ctx = client_tls_context(true);
    auto client = [&]() -> asio::awaitable<void> {
        tls_stream s(io, *ctx);
        callsavvy::error_code ec;
        co_await tls_connect(s, server.port(), ec);
        CHECK(ec); // host name mismatch: wrong.invalid is not localhost
        CHECK(SSL_get_verify_result(s.native_handle()) == X509_V_ERR_HOSTNAME_MISMATCH);
    };
    cstest::run(io, client());
    cstest::run_until(io, [&] { return server.open_connections() == 0; });
    CHECK(server.connections() == 1);
    CHECK(server.requests() == 0);
    CHECK(server.script_error().empty());
}

TEST_CASE("script_server: mutual TLS accepts the test client certificate and refuses its absence", "[support]") {
    asio::io_context io;
    cstest::server_options options;
    options.tls = true;
    options.require_client_cert = true;
    std::string client_cn;
    cstest::script_server server(
        io.get_executor(),
        [&](cstest::peer& p) -> asio::awaitable<void> {
            if (X509* cert = SSL_get0_peer_certificate(p.tls_stream()->native_handle())) {
                char cn[64] = {};
                X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
                client_cn = cn;
            }
            co_await echo_target(p);
        },
        options);

    auto with_cert = client_tls_context(true, &cstest::test_pki().client);
    auto without_cert = client_tls_context(true);
    auto client = [&](asio::ssl::context& ctx) -> asio::awaitable<callsavvy::error_code> {
        tls_stream s(io, ctx);
        callsavvy::error_code ec;
        co_await tls_connect(s, server.port(), ec);
        if (ec) co_return ec;
        // With TLS 1.3 the client's handshake completes before the server has judged its certificate; the
        // refusal arrives as an alert on the first read.
        co_await asio::async_write(s, asio::buffer(std::string_view("GET /v1/m HTTP/1.1\r\nHost: localhost\r\n\r\n")),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return ec;
        char buf[512];
        co_await s.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        co_return ec;
    };
    CHECK_FALSE(cstest::run(io, client(*with_cert)));
    CHECK(client_cn == "callsavvy-test-client");
    CHECK(cstest::run(io, client(*without_cert)));
    cstest::run_until(io, [&] { return server.open_connections() == 0; });
    CHECK(server.requests() == 1);
    CHECK(server.script_error().empty());
}

TEST_CASE("tinyproxy: CONNECT through it reaches the script server; bad or missing credentials do not",
          "[support][proxy]") {
    asio::io_context io;
    cstest::script_server server(io.get_executor(), echo_target);
    cstest::tinyproxy_process proxy(server.port(), std::pair<std::string, std::string>{"alice", "s3cret"});
    CHECK(proxy.url() == "http://alice:s3cret@127.0.0.1:" + std::to_string(proxy.port()));

    const std::string authority = "127.0.0.1:" + std::to_string(server.port());
    auto connect_with = [&](std::string credentials, std::string& head) -> asio::awaitable<int> {
        tcp::socket s(io);
        co_await s.async_connect({asio::ip::make_address("127.0.0.1"), proxy.port()}, asio::use_awaitable);
        std::string request = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
        if (!credentials.empty()) request += "Proxy-Authorization: Basic " + base64(credentials) + "\r\n";
        request += "\r\n";
        co_await asio::async_write(s, asio::buffer(request), asio::use_awaitable);
        const int status = co_await read_status(s, head);
        if (status == 200) {
            // The tunnel: plain HTTP to the script server through the proxy.
            co_await asio::async_write(s,
                                       asio::buffer(std::string_view("GET /v1/via-proxy HTTP/1.1\r\nHost: t\r\n\r\n")),
                                       asio::use_awaitable);
            std::string leftover = head.substr(head.find("\r\n\r\n") + 4);
            const http::response r = co_await read_response(s, leftover);
            CHECK(r.body == R"({"target":"/v1/via-proxy"})");
        }
        co_return status;
    };

    std::string head;
    CHECK(cstest::run(io, connect_with("alice:s3cret", head)) == 200);
    CHECK(server.requests() == 1);

    head.clear();
    CHECK(cstest::run(io, connect_with("", head)) == 407);
    CHECK(head.find("Proxy-Authenticate: Basic") != std::string::npos);

    // tinyproxy 1.11 answers present-but-wrong credentials with 401 (and WWW-Authenticate), not 407.
    head.clear();
    CHECK(cstest::run(io, connect_with("alice:wrong", head)) == 401);
    CHECK(server.connections() == 1);
}

TEST_CASE("tinyproxy: CONNECT to a port other than ConnectPort is refused with 403", "[support][proxy]") {
    asio::io_context io;
    cstest::script_server allowed(io.get_executor(), echo_target);
    cstest::script_server other(io.get_executor(), echo_target);
    cstest::tinyproxy_process proxy(allowed.port());
    CHECK(proxy.url() == "http://127.0.0.1:" + std::to_string(proxy.port()));

    auto connect_to = [&](std::uint16_t port) -> asio::awaitable<int> {
        tcp::socket s(io);
        co_await s.async_connect({asio::ip::make_address("127.0.0.1"), proxy.port()}, asio::use_awaitable);
        const std::string authority = "127.0.0.1:" + std::to_string(port);
        co_await asio::async_write(
            s, asio::buffer("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n"),
            asio::use_awaitable);
        std::string head;
        co_return co_await read_status(s, head);
    };
    CHECK(cstest::run(io, connect_to(other.port())) == 403);
    CHECK(other.connections() == 0);
    CHECK(cstest::run(io, connect_to(allowed.port())) == 200);
    cstest::run_until(io, [&] { return allowed.connections() == 1; });
}

TEST_CASE("tinyproxy: a missing binary is reported, not hung on", "[support][proxy]") {
    struct env_guard {
        std::optional<std::string> saved;
        env_guard() {
            if (const char* v = std::getenv("CSTEST_TINYPROXY")) saved = v;
            ::setenv("CSTEST_TINYPROXY", "/nonexistent/tinyproxy", 1);
        }
        ~env_guard() {
            if (saved) ::setenv("CSTEST_TINYPROXY", saved->c_str(), 1);
            else
                ::unsetenv("CSTEST_TINYPROXY");
        }
    } guard;
    CHECK_THROWS_WITH(cstest::tinyproxy_process(1), Catch::Contains("not found"));
}
